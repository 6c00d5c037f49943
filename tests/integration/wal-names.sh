#!/bin/sh
# What a local store serves under a name it was not given: a segment copied
# to another timeline's name, a .backup file as a .history file, a segment
# whose first page is of a later timeline than its name, and a stray 1 GiB
# file in the WAL folder, fetched within 64 MiB of address space.  Each must
# stop recovery (exit above 125) with a one-line message, never read as the
# file asked for, nor as "not found".

. "${top_srcdir:-.}/tests/lib/integration.sh"

# pgkeep as postgres in directory $1, within $2 KiB of address space.
pgkeep_limited() {
	local dir=$1 kib=$2
	shift 2
	as_pg sh -c 'cd "$1" && ulimit -v "$2" && shift 2 && exec "$@"' sh "$dir" "$kib" \
		"$PGKEEP" --config "$PGKEEP_CONF" "$@"
}

# put_le32 FILE OFFSET VALUE: overwrite four bytes, little-endian (the page
# header is in the server's byte order, ours).
put_le32() {
	python3 - "$@" <<'EOF'
import struct, sys
path, off, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(off)
    f.write(struct.pack("<I", val))
EOF
}

pgkeep_conf
repo_is_local || { echo "1..0 # SKIP the repository is not local"; exit 0; }
ok "pgkeep init creates the repository" pgkeep_init
pg_init "$T/pg1"
R=$TEST_REPO_PATH
seg1=000000010000000000000001
t_mkdir "$T/w" "$T/restore" "$T/restore/pg_wal"
ok "the first segment is archived" pgkeep_run wal-push "$PGDATA/pg_wal/$seg1"
run pgkeep_limited "$T/restore" 1048576 wal-fetch "$seg1" "pg_wal/$seg1"
ok "... and fetched back byte-identical" cmp -s "$PGDATA/pg_wal/$seg1" "$T/restore/pg_wal/$seg1"

# ---------------------------------------------------------------- names

seg2=000000020000000000000001
cp -p "$R/wal/00000001/$seg1" "$T/seg1.obj"
mkdir -p "$R/wal/00000002"
cp -p "$T/seg1.obj" "$R/wal/00000002/$seg2"
chown -R postgres "$R/wal"
run pgkeep_limited "$T/restore" 1048576 wal-fetch "$seg2" "pg_wal/$seg2"
cmp_ok "$rc" -gt 125 "timeline 1's segment under timeline 2's name stops recovery ($rc)"
like "$err" "wal/00000002/$seg2 is damaged or was stored under another name" "... naming the object"
is "$(printf '%s\n' "$err" | wc -l)" "1" "... in one line"
ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/$seg2" ]

backup=000000010000000000000001.00000028.backup
cat >"$T/w/$backup" <<EOF
START WAL LOCATION: 0/1000028 (file 000000010000000000000001)
STOP WAL LOCATION: 0/1000100 (file 000000010000000000000001)
CHECKPOINT LOCATION: 0/1000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-07 22:00:00 UTC
LABEL: names
START TIMELINE: 1
STOP TIME: 2026-12-07 22:00:01 UTC
STOP TIMELINE: 1
EOF
printf '1\t0/3000000\tno recovery target specified\n' >"$T/w/00000002.history"
chown postgres "$T/w/$backup" "$T/w/00000002.history"
ok "a .backup file is archived" pgkeep_run wal-push "$T/w/$backup"
ok "a .history file is archived" pgkeep_run wal-push "$T/w/00000002.history"
cp -p "$R/wal/00000001/$backup" "$R/wal/history/00000003.history"
run pgkeep_limited "$T/restore" 1048576 wal-fetch 00000003.history pg_wal/RECOVERYHISTORY
cmp_ok "$rc" -gt 125 "a .backup file served as a .history file stops recovery ($rc)"
like "$err" "wal/history/00000003.history is damaged or was stored under another name" \
	"... naming the object"
ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/RECOVERYHISTORY" ]
cp -p "$R/wal/history/00000002.history" "$R/wal/history/00000004.history"
run pgkeep_limited "$T/restore" 1048576 wal-fetch 00000004.history pg_wal/RECOVERYHISTORY
cmp_ok "$rc" -gt 125 "so does one timeline's history served as another's ($rc)"
run pgkeep_limited "$T/restore" 1048576 wal-fetch 00000002.history pg_wal/RECOVERYHISTORY
ok "the history file under its own name still fetches" \
	cmp -s "$T/w/00000002.history" "$T/restore/pg_wal/RECOVERYHISTORY"

# ---------------------------------------------------------------- timeline

# A segment whose pages say timeline 2, stored under a timeline 1 name (its
# address is right): the name's timeline cannot be older than its pages'.
seg5=000000010000000000000005
cp "$PGDATA/pg_wal/$seg1" "$T/w/$seg5"
put_le32 "$T/w/$seg5" 4 2
put_le32 "$T/w/$seg5" 8 $((5 * 16 * 1024 * 1024))
chown postgres "$T/w/$seg5"
ok "a segment with a later timeline in its page header is archived" pgkeep_run wal-push "$T/w/$seg5"
run pgkeep_limited "$T/restore" 1048576 wal-fetch "$seg5" "pg_wal/$seg5"
cmp_ok "$rc" -gt 125 "wal-fetch refuses it ($rc)"
like "$err" "holds a segment of timeline 2, not of timeline 1" "... saying which timelines"
ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/$seg5" ]

# ---------------------------------------------------------------- size

# The normal path fits in 64 MiB of address space: a 16 MiB segment costs
# its stored and its opened copy.
limit=65536
seg6=000000010000000000000006
cp "$PGDATA/pg_wal/$seg1" "$T/w/$seg6"
put_le32 "$T/w/$seg6" 8 $((6 * 16 * 1024 * 1024))
# Past the first page, bytes zstd cannot shrink: stored as they are.
dd if=/dev/urandom of="$T/w/$seg6" bs=8192 seek=1 count=2047 conv=notrunc status=none
chown postgres "$T/w/$seg6"
ok "a segment that does not compress is archived" pgkeep_run wal-push "$T/w/$seg6"
run pgkeep_limited "$T/restore" $limit wal-fetch "$seg6" "pg_wal/$seg6"
is "$rc" "0" "it is fetched within $((limit / 1024)) MiB of address space: $err"
ok "... byte-identical" cmp -s "$T/w/$seg6" "$T/restore/pg_wal/$seg6"

stray=000000010000000000000009
truncate -s 1G "$R/wal/00000001/$stray"
chown postgres "$R/wal/00000001/$stray"
run pgkeep_limited "$T/restore" $limit wal-fetch "$stray" "pg_wal/$stray"
cmp_ok "$rc" -gt 125 "a stray 1 GiB file in the WAL folder stops recovery ($rc)"
ok "... without an abort" [ "$rc" -ne 134 ]
like "$err" "wal/00000001/$stray is not a pgkeep object" "... saying what it is: $err"
is "$(printf '%s\n' "$err" | wc -l)" "1" "... in one line"
ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/$stray" ]

# A pgkeep header that claims 1 GiB of plaintext, stored uncompressed, and
# the 1 GiB behind it: read until memory runs out, then refused cleanly.
stray=00000001000000000000000A
dd if="$T/seg1.obj" of="$R/wal/00000001/$stray" bs=40 count=1 status=none
python3 - "$R/wal/00000001/$stray" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(9)
    f.write(b"\0")                          # compression: none
    f.seek(32)
    f.write((1 << 30).to_bytes(8, "big"))   # plaintext length: 1 GiB
EOF
truncate -s $((1024 * 1024 * 1024 + 56)) "$R/wal/00000001/$stray"
chown postgres "$R/wal/00000001/$stray"
run pgkeep_limited "$T/restore" $limit wal-fetch "$stray" "pg_wal/$stray"
cmp_ok "$rc" -gt 125 "a 1 GiB object with a plausible header stops recovery ($rc)"
ok "... without an abort" [ "$rc" -ne 134 ]
like "$err" "wal/00000001/$stray" "... naming it: $err"
is "$(printf '%s\n' "$err" | wc -l)" "1" "... in one line"

# More than any WAL segment can be: refused from its header alone.
python3 - "$R/wal/00000001/$stray" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(32)
    f.write(((1 << 30) + 1).to_bytes(8, "big"))
EOF
run pgkeep_limited "$T/restore" $limit wal-fetch "$stray" "pg_wal/$stray"
cmp_ok "$rc" -gt 125 "a header claiming more than 1 GiB of WAL stops recovery ($rc)"
like "$err" "claims 1073741825 bytes, more than a WAL object holds" "... from the header: $err"

done_testing

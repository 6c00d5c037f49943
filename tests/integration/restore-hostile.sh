#!/bin/sh
# restore of crafted base backups: a stand-in for the server's stream (the
# test-only PGKEEP_TEST_BASEBACKUP_PROGRAM) runs the real pg_basebackup and
# rewrites its tar, as a database superuser planting files in PGDATA could.  Links out of the data directory,
# links at the recovery files' temporary names, a "./" member with mode 0777
# and 0777 files never write outside --pgdata, a tablespace_map naming a
# tablespace not in the backup is refused, and what is restored has
# PostgreSQL's modes (directories 0700, files 0600) and still recovers.
# The server's backup_manifest in the tar is checked by restore: a data
# file with one byte changed, one left out, one the manifest does not list
# are refused, naming the file.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pg_init "$T/pg"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "init" pgkeep_init
pg_start
psql_q "create table t as select g from generate_series(1, 1000) g" ||
	bail_out "create table failed"

# What a write through a link would reach: files postgres may write.
t_mkdir "$T/outside"
as_pg sh -c 'printf "precious\n" >"$1/authorized_keys"; printf "precious\n" >"$1/victim"' \
	sh "$T/outside"
outside_state() {
	(cd "$T/outside" && ls -A && stat -c '%n %s %a %y' . * && cat authorized_keys victim)
}
before=$(outside_state)

BIN=$T/bin
t_mkdir "$BIN"
# The tar filter: member modes to 0777, or members injected after
# backup_label (which must stay first: backup reads the label from it).
cat >"$BIN/craft.py" <<'EOF'
import io, sys, tarfile

case, outside = sys.argv[1], sys.argv[2]

def link(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
    return ti, None

def node(name, kind, body=b""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode = kind, 0o777
    if kind == tarfile.REGTYPE:
        ti.size = len(body)
        return ti, io.BytesIO(body)
    return ti, None

inject = {
    "modes": [],
    "dotslash": [node("./", tarfile.DIRTYPE)],
    "tmplink": [link(".postgresql.auto.conf.pgkeep-tmp", outside + "/authorized_keys"),
                link(".recovery.signal.pgkeep-tmp", outside + "/victim")],
    "escape": [link("escape", "../outside"),
               node("escape/planted", tarfile.REGTYPE, b"planted\n")],
    "tblspc": [link("pg_tblspc/16999", outside)],
    "through": [link("pg_wal", "base")],
    "tblspcmap": [],
    "flip": [], "drop": [],
    "unlisted": [node("base/1/99999", tarfile.REGTYPE, b"not in the manifest\n")],
}[case]

# The first relation file of a page or more: its bytes changed, or it left out.
def victim(ti):
    parts = ti.name.split("/")
    return (ti.isreg() and ti.size >= 8192 and len(parts) == 3 and parts[0] == "base"
            and parts[1].isdigit() and parts[2].isdigit())

src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
dst = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.GNU_FORMAT)
first = True
tampered = None
for ti in src:
    data = src.extractfile(ti) if ti.isreg() else None
    if case in ("flip", "drop") and not tampered and victim(ti):
        tampered = ti.name
        if case == "drop":
            continue
        body = bytearray(data.read())
        body[4000] ^= 0x55
        data = io.BytesIO(bytes(body))
    if case == "modes":
        ti.mode = 0o777
    if case == "tblspcmap" and ti.name == "tablespace_map":
        body = ("16999 %s\n" % outside).encode()
        ti.size, data = len(body), io.BytesIO(body)
    dst.addfile(ti, data)
    if first:
        for extra, body in inject:
            dst.addfile(extra, body)
        first = False
dst.close()
if tampered:
    import os
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tampered"), "w") as f:
        f.write(tampered + "\n")
EOF
cat >"$BIN/pg_basebackup" <<EOF
#!/bin/bash
set -o pipefail
"$PG_BINDIR/pg_basebackup" "\$@" | /usr/bin/python3 "$BIN/craft.py" "\$(<"$T/craft")" "$T/outside"
EOF
chmod 755 "$BIN/pg_basebackup"
chown -R postgres:postgres "$BIN"

# crafted_backup CASE: a base backup whose tar the filter rewrote.
crafted_backup() {
	printf '%s\n' "$1" >"$T/craft"
	chmod 644 "$T/craft"
	as_pg env PGKEEP_TEST_BASEBACKUP_PROGRAM="$BIN/pg_basebackup" "$PGKEEP" \
		--config "$PGKEEP_CONF" backup --type=base \
		>"$T/backup.$1.log" 2>&1 ||
		bail_out "crafted backup $1 failed: $(cat "$T/backup.$1.log")"
}

# refused CASE MESSAGE DESC: restore of that backup fails, saying MESSAGE,
# writing nothing outside, leaving the directory 0700.
refused() {
	crafted_backup "$1"
	run pgkeep_run restore latest --pgdata "$T/r-$1"
	cmp_ok "$rc" -ne 0 "$3: refused"
	like "$err" "$2" "$3: the message says why"
	is "$(outside_state)" "$before" "$3: nothing outside --pgdata changed"
	is "$(find "$T" -maxdepth 2 -name planted | wc -l)" 0 "$3: nothing planted anywhere"
	is "$(stat -c %a "$T/r-$1")" 700 "$3: the data directory is 0700"
}

refused tmplink "symbolic link .postgresql.auto.conf.pgkeep-tmp" \
	"links at the recovery files' temporary names"
refused escape "symbolic link escape -> \.\./outside" "a link climbing out of the data directory"
refused tblspc "pg_tblspc/16999 -> .* leads outside" "a tablespace link to an absolute path"
refused tblspcmap "tablespace_map names a tablespace the backup does not hold: '16999 " \
	"a tablespace_map linking a tablespace the backup does not hold to outside"
refused dotslash "unsafe path '\./'" "a ./ member with mode 0777"
refused through "cannot (extract into|create directory) pg_wal" \
	"a member under a link PostgreSQL could make"
ok "nothing was extracted through the pg_wal link" test ! -e "$T/r-through/base/archive_status"

# The server's manifest, which pg_basebackup puts in the tar, is checked by
# restore itself: a file whose bytes changed, a file left out and a file
# the server never sent are refused, naming the file.
refused flip "file base/[0-9]+/[0-9]+ in backup [^ ]+: checksum mismatch \(manifest says [0-9a-f]{8}, found [0-9a-f]{8}\)" \
	"a data file with one byte changed"
like "$err" "file $(cat "$BIN/tampered") in backup" "... naming the file changed"
ok "... and PostgreSQL cannot start it (pg_control withheld)" [ ! -e "$T/r-flip/global/pg_control" ]
refused drop "file $(cat "$BIN/tampered") in backup [^ ]+: missing" "a data file left out"
refused unlisted "file base/1/99999 in backup [^ ]+: present, but not in the server's manifest" \
	"a file the server's manifest does not list"

# Loose modes: restored with PostgreSQL's, and the cluster recovers.
crafted_backup modes
run pgkeep_run restore latest --pgdata "$T/r-modes" --archive-mode off
is "$rc" 0 "a backup whose members are all 0777 restores"
[ "$rc" -eq 0 ] || diag "$err"
is "$(find "$T/r-modes" -type f ! -perm 600 | head -3)" "" "every file is 0600"
is "$(find "$T/r-modes" -type d ! -perm 700 | head -3)" "" "every directory is 0700"
is "$(find "$T/r-modes" -type l | head -3)" "" "and there is no link"
ok "the server's manifest came in the tar (pg_basebackup -D - puts it there), and passed" \
	[ -f "$T/r-modes/backup_manifest" ]
is "$(outside_state)" "$before" "nothing outside --pgdata changed"

pg_stop
t_clusters="$t_clusters $T/r-modes"
ok "the restored cluster starts and recovers" \
	as_pg "$PG_BINDIR/pg_ctl" -D "$T/r-modes" -l "$T/r-modes.log" -w -t 120 start
is "$(as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$PGPORT" -d postgres \
	-c "select count(*) from t")" 1000 "and holds the backup's rows"

done_testing

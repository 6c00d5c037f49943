#!/bin/sh
# WAL archiving end to end: a real PostgreSQL 15 cluster archives through
# `pgkeep wal-push`, and every archived file comes back byte-identical
# through `pgkeep wal-fetch`; then the refusals: different content under a
# stored name, a segment of another cluster, corruption, a wrong passphrase.
# Store-agnostic: PGKEEP_TEST_STORE picks the store (tests/lib/stores.sh).

. "${top_srcdir:-.}/tests/lib/integration.sh"

NSEG=50

now_ms() { date +%s%3N; }

# pgkeep as postgres from directory $1 (relative %p paths, as PostgreSQL runs us).
pgkeep_in() {
	local dir=$1
	shift
	(cd "$dir" && pgkeep_run "$@")
}

pgkeep_conf
ok "pgkeep init creates the repository" pgkeep_init

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"wal_keep_size = '2GB'" \
	"max_wal_size = '4GB'"
pg_start
PG1=$PGDATA

# ---------------------------------------------------------------- archiving

t0=$(now_ms)
as_pg "$PG_BINDIR/pgbench" -i -q -s 1 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "create table filler(id int, note text)" || bail_out "create table failed"
i=1
while [ $i -le $NSEG ]; do
	echo "insert into filler select g, md5(g::text) from generate_series(1, 2000) g;"
	echo "select pg_switch_wal();"
	if [ $i -eq $((NSEG / 2)) ]; then
		# A backup history file (.backup) is archived too.
		echo "select pg_backup_start('wal-test', true);"
		echo "select lsn from pg_backup_stop(false);"
	fi
	i=$((i + 1))
done | psql_q >/dev/null || bail_out "generating WAL failed"
psql_q "insert into filler values (0, 'last')"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
diag "last switched segment: $last"

# PostgreSQL archives in order: wait for the last one.
wait_archived "$last"
archived=$(psql_q "select last_archived_wal from pg_stat_archiver")
t1=$(now_ms)
is "$archived" "$last" "the archiver reached the last switched segment"
is "$(psql_q "select failed_count from pg_stat_archiver")" "0" \
	"pg_stat_archiver reports no failed archive_command"

done_list=$(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/\.done$//p' | sort)
nseg=$(printf '%s\n' "$done_list" | grep -c '^[0-9A-F]\{24\}$')
nbackup=$(printf '%s\n' "$done_list" | grep -c '\.backup$')
cmp_ok "$nseg" -ge "$NSEG" "at least $NSEG segments archived ($nseg)"
cmp_ok "$nbackup" -ge 1 "a .backup history file was archived"
diag "archived $nseg segments in $((t1 - t0)) ms (including generating the WAL)"

# ---------------------------------------------------------------- fetching back

t_mkdir "$T/restore/pg_wal"
bad=0
t2=$(now_ms)
for name in $done_list; do
	run pgkeep_in "$T/restore" wal-fetch "$name" "pg_wal/$name"
	if [ $rc -ne 0 ] || ! cmp -s "$PG1/pg_wal/$name" "$T/restore/pg_wal/$name"; then
		bad=$((bad + 1))
		diag "$name: wal-fetch exit $rc, $err"
	fi
done
t3=$(now_ms)
is "$bad" "0" "every archived file fetched back byte-identical ($(printf '%s\n' "$done_list" | wc -l) files)"
diag "fetched them in $((t3 - t2)) ms"
is "$(ls -a "$T/restore/pg_wal" | grep -c 'pgkeep-')" "0" "wal-fetch leaves no temporary files"
seg1=$(printf '%s\n' "$done_list" | grep '^[0-9A-F]\{24\}$' | sed -n 3p)
is "$(stat -c %a "$T/restore/pg_wal/$seg1")" "600" "a fetched file is private (0600)"

# restore_command's %p is not %f, and %r is accepted.
run pgkeep_in "$T/restore" wal-fetch "$seg1" pg_wal/RECOVERYXLOG "$seg1"
is "$rc" "0" "wal-fetch NAME PATH RESTARTNAME (%f %p %r) works"
ok "... and writes the segment to PATH" cmp -s "$PG1/pg_wal/$seg1" "$T/restore/pg_wal/RECOVERYXLOG"
run pgkeep_in "$T/restore" wal-fetch "$seg1" pg_wal/RECOVERYXLOG 000000000000000000000000
is "$rc" "0" "%r of timeline 0 (no restart point yet) is accepted"

# ---------------------------------------------------------------- re-push

seg2=$(printf '%s\n' "$done_list" | grep '^[0-9A-F]\{24\}$' | sed -n 5p)
key2=wal/$(printf '%.8s' "$seg2")/$seg2
run pgkeep_in "$PG1" -v wal-push "pg_wal/$seg2"
is "$rc" "0" "re-pushing an identical segment succeeds"
like "$err" "already archived" "... and says it was already archived"

t_mkdir "$T/other"
cp "$PG1/pg_wal/$seg2" "$T/other/$seg2"
# Change one byte well past the page header, so only the content differs.
printf 'X' | dd of="$T/other/$seg2" bs=1 seek=8388608 conv=notrunc status=none
chown postgres "$T/other/$seg2"
run pgkeep_in "$T/other" wal-push "$seg2"
ok "re-pushing different content under a stored name fails" [ "$rc" -ne 0 ]
cmp_ok "$rc" -le 125 "... with a status PostgreSQL retries (<= 125)"
like "$err" "object $key2 exists with different content" "... naming the object"
run pgkeep_in "$T/restore" wal-fetch "$seg2" "pg_wal/check-$seg2"
ok "... and the stored object is unchanged" cmp -s "$PG1/pg_wal/$seg2" "$T/restore/pg_wal/check-$seg2"

# A segment's bytes under another segment's name: the page address tells.
wrongname=00000001000000FF00000001
cp "$PG1/pg_wal/$seg2" "$T/other/$wrongname"
chown postgres "$T/other/$wrongname"
run pgkeep_in "$T/other" wal-push "$wrongname"
ok "a segment whose first page belongs to another segment is refused" [ "$rc" -ne 0 ]
like "$err" "not the segment its name says" "... with a clear message"
run pgkeep_in "$T/restore" wal-fetch "$wrongname" "pg_wal/$wrongname"
is "$rc" "1" "... and nothing was stored under that name"

# .partial: what a promoted standby archives for the old timeline's last segment.
cp "$PG1/pg_wal/$seg2" "$T/other/$seg2.partial"
chown postgres "$T/other/$seg2.partial"
run pgkeep_in "$T/other" wal-push "$seg2.partial"
is "$rc" "0" "a .partial segment is archived"
run pgkeep_in "$T/restore" wal-fetch "$seg2.partial" "pg_wal/$seg2.partial"
ok "... and fetched byte-identical" cmp -s "$T/other/$seg2.partial" "$T/restore/pg_wal/$seg2.partial"

cp "$PG1/pg_wal/$seg2" "$T/other/RECOVERYXLOG"
chown postgres "$T/other/RECOVERYXLOG"
run pgkeep_in "$T/other" wal-push RECOVERYXLOG
ok "a file that is not named like WAL is refused" [ "$rc" -ne 0 ]
like "$err" "not a WAL segment" "... with a clear message"

# ---------------------------------------------------------------- not found

missing=00000001000000FF000000FE
# Traced for sleeps: an answer delayed by a retry or a back-off sleeps, and
# that is counted, not timed (a clock would measure the machine's load).
# LeakSanitizer cannot run under ptrace: a sanitizer build skips only the
# leak check for this traced call.
ta=$(now_ms)
run env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=nanosleep,clock_nanosleep -o "$T/sleeps" \
	sh -c 'cd "$1" && shift && exec runuser -u postgres -- "$@"' sh "$T/restore" \
	"$PGKEEP" --config "$PGKEEP_CONF" wal-fetch "$missing" pg_wal/RECOVERYXLOG
tb=$(now_ms)
is "$rc" "1" "wal-fetch of a segment not in the archive exits exactly 1"
# A test store on plain HTTP (allow_insecure = yes) is warned about on every
# open; that line is expected, and nothing else.
is "$(printf '%s\n' "$err" | grep -v '^pgkeep: wal-fetch: warning: \(s3\|b2\): .* is plain HTTP: ')" "" "... quietly"
is "$(grep -c 'sleep(' "$T/sleeps")" "0" "... at once, without a retry or a pause ($((tb - ta)) ms)"
run pgkeep_in "$T/restore" wal-fetch 0000000A.history pg_wal/RECOVERYHISTORY
is "$rc" "1" "a missing .history file exits 1 too"
run pgkeep_in "$T/restore" wal-fetch RECOVERYXLOG pg_wal/x
cmp_ok "$rc" -gt 125 "wal-fetch of a name that is not WAL exits above 125"
run pgkeep_in "$T/restore" wal-fetch "$seg1"
cmp_ok "$rc" -gt 125 "wal-fetch with a missing argument exits above 125"

# The repository's path or prefix moved aside (a disk not mounted, a prefix
# holding no repository): not the end of the archive, whatever the store.
sed 's/^\(path\|prefix\) = \(.*\)$/\1 = \2-none/' "$PGKEEP_CONF" |
	as_pg sh -c 'umask 077; cat >"$1"' sh "$T/none.conf"
if cmp -s "$PGKEEP_CONF" "$T/none.conf"; then
	fail "the repository has a path or prefix to move aside"
else
	run as_pg sh -c 'cd "$1" && "$2" --config "$3" wal-fetch "$4" pg_wal/none' sh \
		"$T/restore" "$PGKEEP" "$T/none.conf" "$seg1"
	cmp_ok "$rc" -gt 125 "wal-fetch from a path or prefix with no repository exits above 125"
	like "$err" "repository test" "... naming the repository"
	is "$(printf '%s\n' "$err" |
		grep -v '^pgkeep: wal-fetch: warning: \(s3\|b2\): .* is plain HTTP: ' | wc -l)" 1 \
		"... in one line (besides a test store's plain-HTTP warning)"
	ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/none" ]
fi

# ---------------------------------------------------------------- history files

t_mkdir "$T/hist"
printf '1\t0/9000000\tno recovery target specified\n' >"$T/hist/00000002.history"
chown postgres "$T/hist/00000002.history"
run pgkeep_in "$T/hist" wal-push 00000002.history
is "$rc" "0" "a .history file is archived"
run pgkeep_in "$T/restore" wal-fetch 00000002.history pg_wal/RECOVERYHISTORY
is "$rc" "0" "... and fetched"
ok "... byte-identical" cmp -s "$T/hist/00000002.history" "$T/restore/pg_wal/RECOVERYHISTORY"
run pgkeep_in "$T/hist" wal-push 00000002.history
is "$rc" "0" "re-pushing the same .history file succeeds"
printf '1\t0/A000000\tno recovery target specified\n' >"$T/hist/00000002.history"
run pgkeep_in "$T/hist" wal-push 00000002.history
ok "a different .history file under a stored name is refused" [ "$rc" -ne 0 ]
like "$err" "wal/history/00000002.history exists with different content" "... naming the object"

# ---------------------------------------------------------------- another cluster

# initdb writes the first segment; it carries the new cluster's identifier.
pg_init "$T/pg2"
pg_use "$PG1"
sysid1=$(pg_sysid "$PG1")
sysid2=$(pg_sysid "$T/pg2")
first=000000010000000000000001
run pgkeep_in "$T/pg2" wal-push "pg_wal/$first"
ok "a segment of another cluster is refused" [ "$rc" -ne 0 ]
like "$err" "$sysid2" "... naming its system identifier ($sysid2)"
like "$err" "$sysid1" "... and the repository's ($sysid1)"
run pgkeep_in "$T/restore" wal-fetch "$first" "pg_wal/check-$first"
ok "... and the stored segment of that name is still the first cluster's" \
	cmp -s "$PG1/pg_wal/$first" "$T/restore/pg_wal/check-$first"

# ---------------------------------------------------------------- damage

seg3=$(printf '%s\n' "$done_list" | grep '^[0-9A-F]\{24\}$' | sed -n 7p)
key3=wal/$(printf '%.8s' "$seg3")/$seg3
if repo_corrupt_object "$key3"; then
	run pgkeep_in "$T/restore" wal-fetch "$seg3" "pg_wal/damaged"
	cmp_ok "$rc" -gt 125 "wal-fetch of a corrupted object exits above 125 ($rc)"
	like "$err" "$key3" "... naming the object"
	ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/damaged" ]
	run pgkeep_in "$PG1" wal-push "pg_wal/$seg3"
	ok "re-pushing over a corrupted object fails rather than trusting it" [ "$rc" -ne 0 ]
elif repo_is_local; then
	fail "corrupting $key3 in the local repository"
else
	diag "corruption checks skipped: repo_corrupt_object cannot reach this store"
fi

# ---------------------------------------------------------------- wrong passphrase

as_pg sh -c 'umask 077; echo "not the passphrase" >"$1"' sh "$T/wrongpass"
pgkeep_conf "$T/wrong.conf" "$T/wrongpass"
run as_pg "$PGKEEP" --config "$T/wrong.conf" wal-fetch "$seg1" "$T/restore/pg_wal/wrong"
cmp_ok "$rc" -gt 125 "wal-fetch with a wrong passphrase exits above 125 ($rc)"
like "$err" "$seg1" "... naming the object"
ok "... and writes nothing" [ ! -e "$T/restore/pg_wal/wrong" ]
run as_pg "$PGKEEP" --config "$T/wrong.conf" wal-fetch "$missing" "$T/restore/pg_wal/wrong"
cmp_ok "$rc" -gt 125 "with a wrong passphrase even a missing segment is not 'not found'"
run as_pg "$PGKEEP" --config "$T/wrong.conf" wal-push "$PG1/pg_wal/$seg1"
ok "wal-push with a wrong passphrase fails" [ "$rc" -ne 0 ]

is "$(psql_q "select failed_count from pg_stat_archiver")" "0" \
	"the running cluster's archiving never failed"

done_testing

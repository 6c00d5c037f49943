#!/bin/sh
# A recovery target a fraction of a second after a base backup ended: the
# backup records its stop to the microsecond, so restore chooses it and
# PostgreSQL recovers to the target, bringing back the rows committed up to
# it (the last one just after the backup) and not the one after it.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_start
PG1=$PGDATA
psql_q "create table t(id int primary key)" || bail_out "create table failed"
psql_q "insert into t values (1)" || bail_out "insert failed"

# One session kept open, so that a row is committed within milliseconds
# of a backup's end: `sql LINE` sends it and waits for its one output line.
mkfifo "$T/sql.fifo" && chown postgres "$T/sql.fifo" || bail_out "mkfifo failed"
: >"$T/sql.out" && chown postgres "$T/sql.out"
as_pg "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" -d postgres \
	<"$T/sql.fifo" >>"$T/sql.out" 2>&1 &
exec 3>"$T/sql.fifo"
nsql=0
# Polled every 10 ms (wait_until's 200 would push the commit away from the
# backup's end); the bound, at least five minutes, only stops a hang.
sql() {
	local i=0
	nsql=$((nsql + 1))
	printf '%s\n' "$1" >&3
	while [ "$(wc -l <"$T/sql.out")" -lt $nsql ]; do
		i=$((i + 1))
		[ $i -lt 30000 ] || bail_out "no answer to: $1"
		sleep 0.01
	done
	tail -n 1 "$T/sql.out"
}

# Backup, then at once a row and the target just after its commit.  Old
# code rounded the stop up to the next second and truncated the target: it
# chose an older backup (or none) whenever the commit fell in the second the
# backup ended in.  The backup is repeated (at most 8 times, each started so
# that it should end early in a second) until that is so, with the
# command's end far enough into its second that the stop was surely in it.
k=1 same=no took=0
while [ $k -le 8 ] && [ $same = no ]; do
	k=$((k + 1))
	sleep "$(python3 -c 'import sys, time; print((0.7 - (time.time() + float(sys.argv[1]))) % 1)' "$took")"
	start=$(date +%s.%N)
	run pgkeep_run backup --type=base
	end=$(date +%s.%N)
	[ "$rc" -eq 0 ] || { diag "$err"; bail_out "backup $k failed"; }
	target=$(sql "insert into t values ($k) returning clock_timestamp();")
	commit=$(sql "select extract(epoch from clock_timestamp());")
	target=$(sql "select clock_timestamp();")
	took=$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$start" "$end")
	B=$(printf '%s\n' "$out" | head -n 1)
	same=$(python3 - "$end" "$commit" <<'EOF2'
import sys
end, t = float(sys.argv[1]), float(sys.argv[2])
print("yes" if int(end) == int(t) and end % 1 >= 0.45 else "no")
EOF2
)
	diag "backup $B ended at $end, row $k committed by $commit, target $target: in that second: $same"
done
exec 3>&-
psql_q "select pg_sleep(0.05)" >/dev/null
psql_q "insert into t values (100)" || bail_out "insert failed"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
wait_archived "$last" || bail_out "WAL $last not archived"

run pgkeep_run info --json
printf '%s\n' "$out" >"$T/info.json"
run pgkeep_run restore latest --pgdata "$T/r1" --target-time "$target" --archive-mode=off
is "$rc" "0" "restore latest --target-time, a fraction of a second after the backup, succeeds"
[ "$rc" -eq 0 ] || diag "$err"
like "$out" "restored backup $B" "... choosing the backup that had just ended"

if [ "$rc" -eq 0 ]; then
	pg_start_restored "$T/r1"
	is "$(psql_q "select string_agg(id::text, ',' order by id) from t")" "$(seq -s, 1 $k)" \
		"the restored cluster has the row committed just after the backup, not the later one"
else
	fail "the restored cluster has the row committed just after the backup, not the later one"
fi

# A target before the backup's exact end still chooses no backup.
pg_use "$PG1"
run pgkeep_run restore latest --pgdata "$T/r2" --target-time "$(python3 - "$T/info.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))["backups"][0]
print(b["start_time"].replace("T", " "))
EOF
)"
ok "a target at the backup's start is refused" [ "$rc" -ne 0 ]
like "$err" "no base backup that finished before" "... saying why"

done_testing

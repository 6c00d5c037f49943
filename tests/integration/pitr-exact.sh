#!/bin/sh
# A recovery target a fraction of a second after a base backup ended: the
# backup records its stop to the microsecond, so restore chooses it and
# PostgreSQL recovers to the target, bringing back the row committed just
# after the backup and not the one after the target.

. "${top_srcdir:-.}/tests/integration/lib.sh"

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_start
PG1=$PGDATA
psql_q "create table t(id int primary key)" || bail_out "create table failed"
psql_q "insert into t values (1)" || bail_out "insert failed"

run pgkeep_run backup --type=base
is "$rc" "0" "pgkeep backup --type=base succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)

# At once: row 2, the target just after its commit, row 3 a moment later.
got=$(psql_q <<'EOF'
insert into t values (2);
select clock_timestamp();
\o /dev/null
select pg_sleep(0.05);
\o
insert into t values (3);
EOF
) || bail_out "inserting rows failed"
target=$(printf '%s\n' "$got" | tail -n 1)
diag "backup $B1, target $target"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
deadline=$(( $(date +%s) + 120 ))
while [ "$(psql_q "select coalesce(left(last_archived_wal, 24) >= '$last', false) from pg_stat_archiver")" != t ]; do
	[ "$(date +%s)" -lt "$deadline" ] || bail_out "WAL $last not archived"
	sleep 0.2
done

# The manifest keeps the exact stop, before the target and in microseconds.
run pgkeep_run info --json
printf '%s\n' "$out" >"$T/info.json"
run pgkeep_run restore latest --pgdata "$T/r1" --target-time "$target" --archive-mode=off
is "$rc" "0" "restore latest --target-time, a fraction of a second after the backup, succeeds"
[ "$rc" -eq 0 ] || diag "$err"
like "$out" "restored backup $B1" "... choosing the backup that had just ended"

if [ "$rc" -eq 0 ]; then
	port=$(free_port) || bail_out "no free port"
	printf '%s\n' "$port" >"$T/r1.port"
	at_exit "runuser -u postgres -- '$PG_BINDIR/pg_ctl' -D '$T/r1' -m immediate -w stop"
	as_pg "$PG_BINDIR/pg_ctl" -D "$T/r1" -l "$T/r1.log" -o "-p $port" -w -t 120 start >/dev/null ||
		diag "$(tail -n 20 "$T/r1.log")"
	pg_use "$T/r1"
	i=0
	while [ "$(psql_q "select pg_is_in_recovery()" 2>/dev/null)" != f ] && [ $i -lt 600 ]; do
		i=$((i + 1))
		sleep 0.2
	done
	is "$(psql_q "select string_agg(id::text, ',' order by id) from t")" "1,2" \
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

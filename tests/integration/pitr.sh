#!/bin/sh
# Point-in-time restore, exactly: rows are committed one per transaction
# with the time recorded after each commit; a base backup is taken in the
# middle; restores to a time, an LSN and a named restore point between two
# commits bring back exactly the rows committed up to the target, in a
# PostgreSQL started on the restored directory.  Then the refusals: a
# non-empty directory, a target before every backup, a damaged chunk.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# The ids of table t in the current cluster, comma-separated.
rows() {
	psql_q "select coalesce(string_agg(id::text, ',' order by id), '') from t"
}

seq_list() {
	seq -s, "$1" "$2"
}

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_start
PG1=$PGDATA

psql_q "create table t(id int primary key, note text)" || bail_out "create table failed"

# insert_rows FROM TO: one committed transaction per row; after each commit
# print "id|time after the commit|insert LSN after the commit".
insert_rows() {
	local i=$1
	while [ "$i" -le "$2" ]; do
		echo "insert into t values ($i, 'row $i');"
		echo "select $i, clock_timestamp(), pg_current_wal_insert_lsn();"
		echo "\\o /dev/null"
		echo "select pg_sleep(0.1);"
		echo "\\o"
		i=$((i + 1))
	done | psql_q
}

insert_rows 1 5 >/dev/null || bail_out "inserting rows failed"

t0=$(date +%s%3N)
run pgkeep_run backup --type=base
t1=$(date +%s%3N)
is "$rc" "0" "pgkeep backup --type=base succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)
like "$B1" '^[0-9]{8}T[0-9]{6}Z-base$' "it prints the backup id first ($B1)"
like "$(printf '%s\n' "$out" | sed -n 2p)" 'newly stored' "... and a summary line"
diag "base backup took $((t1 - t0)) ms"

run pgkeep_run list
like "$out" "$B1 +base" "pgkeep list shows the backup"
run pgkeep_run info --json
is "$rc" "0" "pgkeep info --json succeeds"
printf '%s\n' "$out" >"$T/info.json"
check_info=$(python3 - "$T/info.json" "$B1" <<'EOF'
import json, re, sys
info = json.load(open(sys.argv[1]))
b = [x for x in info["backups"] if x["id"] == sys.argv[2]][0]
ok = (info["repository"] == "test" and b["type"] == "base" and b["timeline"] == 1
      and re.match(r"^[0-9A-F]+/[0-9A-F]+$", b["start_lsn"])
      and b["size"] > 0 and b["stored_size"] > 0
      and b["start_time"].endswith("Z") and b["stop_time"] >= b["start_time"]
      and info["wal"]["count"] >= 1 and info["wal"]["first"] <= b["wal_start"]
      and b["wal_start"] <= b["wal_stop"])
print("ok" if ok else "bad: %r" % (info,))
EOF
)
is "$check_info" "ok" "info --json describes the backup and the WAL range"

# The chosen backup must have stopped before every target (recorded stop
# times are whole seconds, rounded up).
sleep 1.2

insert_rows 6 9 >"$T/rows1" || bail_out "inserting rows failed"
insert_rows 10 10 >"$T/rows2" || bail_out "inserting rows failed"
lsn10=$(psql_q "select pg_current_wal_insert_lsn()")
insert_rows 11 12 >"$T/rows3" || bail_out "inserting rows failed"
psql_q "select pg_create_restore_point('pgkeep-test-point')" >/dev/null
insert_rows 13 20 >"$T/rows4" || bail_out "inserting rows failed"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
ok "the WAL up to the last row is archived" wait_archived "$last"

# Target: after the commit of row 8, before row 9.
t8=$(sed -n 's/^8|\([^|]*\)|.*/\1/p' "$T/rows1")
diag "target time: $t8, target LSN: $lsn10"

# ---------------------------------------------------------------- --target-time

run pgkeep_run restore latest --pgdata "$T/r1" --target-time "$t8" --archive-mode=off
is "$rc" "0" "restore latest --target-time succeeds"
[ "$rc" -eq 0 ] || diag "$err"
like "$out" "restored backup $B1" "... choosing the base backup $B1"
ok "recovery.signal is written" [ -f "$T/r1/recovery.signal" ]
like "$(cat "$T/r1/postgresql.auto.conf")" "restore_command = '.*wal-fetch %f %p'" \
	"restore_command calls pgkeep wal-fetch"
like "$(grep recovery_target_time "$T/r1/postgresql.auto.conf")" "\\+00'\$" \
	"the target time is written in UTC"
is "$(stat -c '%a %U' "$T/r1")" "700 postgres" "the data directory is 0700, owned by the restoring user"
ok "pg_verifybackup accepts the restored files" \
	verify_manifest "$T/r1"
ok "PostgreSQL starts on the restored directory and recovery ends" pg_start_restored "$T/r1"
is "$(rows)" "$(seq_list 1 8)" "--target-time: exactly the rows committed up to the target"

# ---------------------------------------------------------------- --target-lsn

pg_use "$PG1"
run pgkeep_run restore "$B1" --pgdata "$T/r2" --target-lsn "$lsn10" --archive-mode=off
is "$rc" "0" "restore ID --target-lsn succeeds"
[ "$rc" -eq 0 ] || diag "$err"
ok "PostgreSQL starts on it" pg_start_restored "$T/r2"
is "$(rows)" "$(seq_list 1 10)" "--target-lsn: exactly the rows committed before the LSN"

# ---------------------------------------------------------------- --target-name

pg_use "$PG1"
run pgkeep_run restore latest --pgdata "$T/r3" --target-name pgkeep-test-point --archive-mode=off
is "$rc" "0" "restore --target-name succeeds"
[ "$rc" -eq 0 ] || diag "$err"
ok "PostgreSQL starts on it" pg_start_restored "$T/r3"
is "$(rows)" "$(seq_list 1 12)" "--target-name: exactly the rows before the restore point"

# ---------------------------------------------------------------- refusals

pg_use "$PG1"
run pgkeep_run restore latest --pgdata "$T/r1" --target-immediate
ok "restoring into a non-empty directory is refused" [ "$rc" -ne 0 ]
like "$err" "not empty" "... saying why"

early=$(psql_q "select (now() - interval '1 day')::text")
run pgkeep_run restore latest --pgdata "$T/r4" --target-time "$early"
ok "a target time before every backup is refused" [ "$rc" -ne 0 ]
like "$err" "no base backup that finished before" "... saying why"

run pgkeep_run restore latest --pgdata "$T/r4" --target-time "$t8" --target-lsn "$lsn10"
ok "two targets are refused" [ "$rc" -ne 0 ]

if repo_is_local; then
	chunk=$(cd "$TEST_REPO_PATH" && find chunks -type f | sort | head -n 1)
	repo_corrupt_object "$chunk"
	run pgkeep_run restore "$B1" --pgdata "$T/r5"
	ok "a damaged chunk stops the restore" [ "$rc" -ne 0 ]
	like "$err" "$B1" "... naming the backup"
	like "$err" "$(basename "$chunk")" "... and the chunk"
	ok "... and the directory cannot be started (no global/pg_control)" \
		[ ! -e "$T/r5/global/pg_control" ]
else
	diag "damaged-chunk check skipped: the repository is not local"
fi

done_testing

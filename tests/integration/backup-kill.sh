#!/bin/sh
# A base backup killed with SIGKILL while the server streams it leaves no
# backup behind: no manifest, nothing in list or info, the server's backup
# ended; the next backup succeeds, the repository verifies, and the new backup
# restores into a cluster that starts with every row.  Last, a backup whose
# WAL cannot be archived gives up after archive_timeout instead of hanging.

. "${top_srcdir:-.}/tests/lib/integration.sh"

SCALE=30

# How many backups the repository holds (pgkeep's own view, any store).
manifests() {
	pgkeep_run info --json | python3 -c 'import json, sys
print(len(json.load(sys.stdin)["backups"]))'
}

pg_init "$T/pg1"
PG1=$T/pg1
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '2GB'"
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s "$SCALE" -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "checkpoint" >/dev/null

# ---------------------------------------------------------------- kill mid-stream

# In a subshell, whose stderr swallows the shell's "Killed" report.
(as_pg sh -c 'echo $$ >"$1"; exec "$2" --config "$3" backup --type=base >"$4" 2>&1' \
	sh "$T/backup.pid" "$PGKEEP" "$PGKEEP_CONF" "$T/backup.log") 2>/dev/null &
waiter=$!
# Mid-stream: the server is sending files (it reports progress).
streaming() {
	[ "$(psql_q "select count(*) from pg_stat_progress_basebackup where phase = 'streaming database files' and backup_streamed > 20 * 1024 * 1024" 2>/dev/null)" = 1 ]
}
wait_until 300 streaming
pid=$(cat "$T/backup.pid")
streamed=$(psql_q "select backup_streamed from pg_stat_progress_basebackup")
ok "the backup is streaming (${streamed:-0} bytes sent) when pgkeep is killed" \
	[ -n "$streamed" ]
kill -KILL "$pid"
wait "$waiter"
ok "pgkeep is gone" sh -c "! kill -0 $pid 2>/dev/null"

no_server_backup() {
	[ "$(psql_q "select count(*) from pg_stat_progress_basebackup")" = 0 ]
}
wait_until 300 no_server_backup
is "$(psql_q "select count(*) from pg_stat_progress_basebackup")" "0" \
	"the server's backup ended (its replication connection closed with pgkeep)"
is "$(manifests)" "0" "no manifest: the killed backup does not exist"
run pgkeep_run list
is "$rc" "0" "pgkeep list succeeds"
is "$out" "" "... and lists nothing"
if repo_is_local; then
	is "$(ls "$TEST_REPO_PATH/backups" 2>/dev/null | wc -l)" "0" "no object under backups/"
	nchunks=$(find "$TEST_REPO_PATH/chunks" -type f 2>/dev/null | wc -l)
	diag "the killed backup left $nchunks chunks (garbage for expire, shared by the next backup)"
fi

# ---------------------------------------------------------------- the next one works

run pgkeep_run backup --type=base
is "$rc" "0" "the next backup succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B=$(printf '%s\n' "$out" | head -n 1)
diag "$(printf '%s\n' "$out" | sed -n 2p)"
is "$(manifests)" "1" "one backup exists"
run pgkeep_run verify
is "$rc" "0" "pgkeep verify accepts the repository"
[ "$rc" -eq 0 ] || diag "$out" "$err"

psql_q "create table after_backup as select 42 as answer" || bail_out "create table failed"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
wait_archived "$last"

run pgkeep_run restore "$B" --pgdata "$T/r1" --archive-mode=off
is "$rc" "0" "it restores"
[ "$rc" -eq 0 ] || diag "$err"
ok "PostgreSQL starts on the restored directory and recovery ends" pg_start_restored "$T/r1"
is "$(psql_q "select count(*) from pgbench_accounts")" "$((SCALE * 100000))" \
	"every pgbench account is there"
is "$(psql_q "select answer from after_backup")" "42" \
	"and the table created after the backup (replayed from the archive)"

# ---------------------------------------------------------------- archiving broken

pg_use "$PG1"
pg_set archive_command /bin/false || bail_out "cannot set archive_command"
as_pg sed -i '/^\[global\]$/a archive_timeout = 6' "$PGKEEP_CONF"
t0=$(date +%s)
run pgkeep_run backup --type=base
t1=$(date +%s)
ok "a backup whose WAL is not archived fails" [ "$rc" -ne 0 ]
like "$err" "archive_command" "... pointing at archive_command"
# The time taken is mostly the backup's own, whatever the machine's speed:
# the message tells which deadline ended the wait.
like "$err" "did not reach repository test within 6 s" \
	"... after archive_timeout, not never (in $((t1 - t0)) s)"
is "$(manifests)" "1" "... and leaves no backup"
wait_until 300 no_server_backup
is "$(psql_q "select count(*) from pg_stat_progress_basebackup")" "0" \
	"... nor a backup running on the server"

pg_set archive_command "" || bail_out "cannot set archive_command"
run pgkeep_run backup --type=base
ok "with archive_command empty, a base backup is refused" [ "$rc" -ne 0 ]
like "$err" "archive_command is empty" "... saying so"

done_testing

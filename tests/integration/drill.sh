#!/bin/sh
# pgkeep drill: on a good repository it restores the newest base backup,
# recovers it on a scratch cluster, checks every database (and amcheck) and
# passes; on every server version the suite runs (PGKEEP_TEST_PG_SERVER_BINDIR);
# with a WAL segment the recovery needs removed, it fails and names
# the segment.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# A server build outside Debian's layout: drill's pg_ctl is the one it
# brings (PG_BINDIR links it), as an operator would set PGKEEP_PG_BINDIR.
[ -z "${PGKEEP_TEST_PG_SERVER_BINDIR:-}" ] || export PGKEEP_PG_BINDIR="$PG_BINDIR"

pg_init "$T/pg"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "init" pgkeep_init
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s 2 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "create database second" || bail_out "create database failed"
out=$(pgkeep_run backup --type=base 2>&1) || { diag "$out"; bail_out "backup failed"; }
as_pg "$PG_BINDIR/pgbench" -n -t 200 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1
for i in 1 2 3; do
	psql_q "create table after_$i as select g from generate_series(1, 10000) g"
	psql_q "select pg_switch_wal()" >/dev/null
done
archive_current_wal || bail_out "the switched WAL segment was not archived"

out=$(pgkeep_run drill --dir "$T" --timeout 600 2>&1)
rc=$?
is "$rc" 0 "drill passes on a good repository"
diag "$out"
like "$out" "recovered in [0-9.]+ s" "it prints the measured recovery time"
like "$out" "3 database\(s\) answered" "every database answered (postgres, template1, second)"
is "$(find "$T" -maxdepth 1 -name 'pgkeep-drill.*' | wc -l)" 0 "the scratch copy is removed"

# Remove a segment between the backup's start and the newest one (not the
# newest itself: without it recovery simply ends a little earlier).
start=$(pgkeep_run info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][-1]["wal_start"])')
victim=$(find "$TEST_REPO_PATH/wal" -type f -name '0000000*' ! -name '*.*' | sed 's|.*/||' |
	awk -v s="$start" '$1 "" > s ""' | sort | sed -n 2p)
[ -n "$victim" ] || bail_out "no segment after $start to remove"
rm -f "$TEST_REPO_PATH/wal/$(printf '%s' "$victim" | cut -c1-8)/$victim"
out=$(pgkeep_run drill --dir "$T" --timeout 600 2>&1)
rc=$?
cmp_ok "$rc" -ne 0 "drill fails when a needed WAL segment is gone"
like "$out" "$victim" "and names the missing segment"
diag "$out"

done_testing

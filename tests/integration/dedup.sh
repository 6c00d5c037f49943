#!/bin/sh
# Deduplication across base backups: after a base backup of a pgbench
# database (scale 20), about 1% of the accounts change (a contiguous range
# of aid, as a batch job or a busy customer would), and a second base backup
# stores less than a quarter of what the first one stored.  WAL archived
# meanwhile is reported but not counted: it is not the backup's data.

. "${top_srcdir:-.}/tests/lib/integration.sh"

SCALE=20

# Bytes the repository holds for backups (chunks and manifests).
backup_bytes() {
	(cd "$TEST_REPO_PATH" && du -sb --apparent-size chunks backups 2>/dev/null) |
		awk '{ s += $1 } END { print s + 0 }'
}

wal_bytes() {
	(cd "$TEST_REPO_PATH" && du -sb --apparent-size wal 2>/dev/null) | awk '{ print $1 + 0 }'
}

stored_of() {
	python3 -c 'import json, sys
info = json.load(open(sys.argv[1]))
print([b for b in info["backups"] if b["id"] == sys.argv[2]][0][sys.argv[3]])' "$@"
}

pg_init "$T/pg1"
pgkeep_conf
repo_is_local || { printf '1..0 # SKIP dedup is measured on a local repository\n'; exit 0; }
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '2GB'" "checkpoint_timeout = '30min'"
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s "$SCALE" -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
accounts=$(psql_q "select count(*) from pgbench_accounts")
diag "pgbench scale $SCALE: $accounts accounts, database $(psql_q "select pg_size_pretty(pg_database_size('postgres'))")"

before1=$(backup_bytes)
run pgkeep_run backup --type=base
is "$rc" "0" "first base backup succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)
diag "$(printf '%s\n' "$out" | sed -n 2p)"
after1=$(backup_bytes)
wal1=$(wal_bytes)

# 1% of the rows, one contiguous range of aid.
n=$((accounts / 100))
psql_q "update pgbench_accounts set abalance = abalance + 7, filler = 'changed'
	where aid between 1000 and $((1000 + n - 1))" || bail_out "update failed"
is "$(psql_q "select count(*) from pgbench_accounts where filler = 'changed'")" "$n" \
	"$n rows (1%) changed"

run pgkeep_run backup --type=base
is "$rc" "0" "second base backup succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B2=$(printf '%s\n' "$out" | head -n 1)
diag "$(printf '%s\n' "$out" | sed -n 2p)"
after2=$(backup_bytes)
wal2=$(wal_bytes)

pgkeep_run info --json >"$T/info.json"
size1=$(stored_of "$T/info.json" "$B1" size)
stored1=$(stored_of "$T/info.json" "$B1" stored_size)
size2=$(stored_of "$T/info.json" "$B2" size)
stored2=$(stored_of "$T/info.json" "$B2" stored_size)
growth1=$((after1 - before1))
growth2=$((after2 - after1))
diag "first backup:  $size1 bytes read, $stored1 stored; repository +$growth1 bytes"
diag "second backup: $size2 bytes read, $stored2 stored; repository +$growth2 bytes" \
	"($((growth2 * 100 / growth1))% of the first)"
diag "WAL archived between the two backups: $((wal2 - wal1)) bytes (not counted)"

cmp_ok "$growth1" -gt 0 "the first backup stored data"
cmp_ok "$((growth2 * 4))" -lt "$growth1" \
	"the repository grew by less than 25% of the first backup for the second"
cmp_ok "$((stored2 * 4))" -lt "$stored1" "... and the manifest says so too"
cmp_ok "$size2" -ge "$size1" "while the second backup is a full backup of the same size or more"

done_testing

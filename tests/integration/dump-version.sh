#!/bin/sh
# A dump backup takes the newest installed pg_dump at least as new as the
# server (Debian: /usr/lib/postgresql/N/bin).  With none, it stops before
# doing anything, in one line naming the package to install.  Run with
# PGKEEP_TEST_PG_SERVER_BINDIR naming a 16, 17 or 18 server and only
# Debian's 15 client installed, that is the case; against 15 the dump works.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start
psql_q "create table t(id int); insert into t select generate_series(1, 100)" ||
	bail_out "create table failed"
major=$(psql_q "show server_version_num")
major=$((major / 10000))
diag "server major version $major"

# What pgkeep should find: the newest Debian client directory >= major.
client=""
for d in /usr/lib/postgresql/*/bin; do
	v=$(basename "$(dirname "$d")")
	[ -x "$d/pg_dump" ] && [ "$v" -ge "$major" ] &&
		{ [ -z "$client" ] || [ "$v" -gt "$client" ]; } && client=$v
done

run pgkeep_run backup --type=dump
if [ -n "$client" ]; then
	is "$rc" 0 "a dump of the $major server with pg_dump $client installed succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
	is "$(pgkeep_run list | grep -c ' dump ')" 1 "... and is recorded"
	run pgkeep_run restore "$(printf '%s\n' "$out" | head -n 1)" --output -
	cmp_ok "$(printf '%s' "$out" | wc -c)" -gt 0 "... and reads back"
else
	cmp_ok "$rc" -ne 0 "a dump of the $major server with no pg_dump $major or newer fails"
	is "$err" "pgkeep: backup: error: PostgreSQL $major server needs pg_dump $major or newer; install postgresql-client-$major" \
		"... in one line naming the package to install"
	is "$(pgkeep_run list | grep -c ' dump ')" 0 "... and records no backup"
	run pgkeep_run backup --type=dump --all
	like "$err" "needs pg_dumpall $major or newer; install postgresql-client-$major" \
		"--all names pg_dumpall"
	# The base backup needs no client program at all.
	run pgkeep_run backup --type=base
	is "$rc" 0 "while a base backup of the same server succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
fi

done_testing

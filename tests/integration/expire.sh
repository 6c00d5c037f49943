#!/bin/sh
# Retention end to end on a real cluster: six base backups with WAL between
# them, `expire` with keep_last = 2, then what must hold: exactly the two
# newest remain, chunks only the expired ones used are gone, WAL before the
# older survivor is gone, and both survivors restore to a point in time.
# Then the hard cases: expire killed with SIGKILL mid-run and run again, a
# corrupted chunk found by verify --read-data, a pinned backup outliving
# keep_last = 1, and `check` on a cluster whose archive_command is wrong.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# Switch WAL and wait until PostgreSQL has archived the switched segment.

# A config for the same repository with extra lines in its section.
conf_with() {
	local file=$1
	shift
	PGKEEP_TEST_REPO_CONF="plugin = local\npath = $T/repo$(printf '\\n%s' "$@")" \
		pgkeep_conf "$file"
}

pg_init "$T/pg"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"wal_keep_size = '1GB'"
pgkeep_conf
ok "init" pgkeep_init
[ -n "$TEST_REPO_PATH" ] || bail_out "this test needs the local repository"
pg_start

psql_q "create table shared_data as select g as id, md5(g::text) as v from generate_series(1, 200000) g" ||
	bail_out "create table failed"
psql_q "create table t(id serial primary key, batch int, v text)" || bail_out "create t failed"

ids=""
# after_N: rows in t and a time after backup N committed, for PITR checks.
i=1
while [ $i -le 6 ]; do
	# Data unique to this backup: fresh random rows.
	psql_q "create table only_$i as select g, md5(random()::text) || md5(random()::text) as v from generate_series(1, 30000) g" ||
		bail_out "insert failed"
	out=$(pgkeep_run backup --type=base 2>&1) || { diag "$out"; bail_out "backup $i failed"; }
	id=$(pgkeep_run info --json | pyjson 'print(sorted(d["backups"], key=lambda b: b["start_time"])[-1]["id"])')
	ids="$ids $id"
	psql_q "insert into t(batch, v) select $i, 'after backup $i' from generate_series(1, $i)"
	sleep 1.1
	eval "after_$i=\$(psql_q \"select now()\")"
	eval "count_$i=\$(psql_q \"select count(*) from t\")"
	psql_q "select pg_switch_wal()" >/dev/null
	sleep 1.1
	i=$((i + 1))
done
set -- $ids
is "$#" 6 "six base backups taken"
# A commit after the last target, archived, so recovery can stop at each target.
psql_q "insert into t(batch, v) values (99, 'later')"
archive_current_wal || bail_out "the switched WAL segment was not archived"

chunks_before=$(find "$T/repo/chunks" -type f | sort)
n_before=$(printf '%s\n' "$chunks_before" | grep -c .)

# ---------------------------------------------------------------- keep_last = 2

conf_with "$T/keep2.conf" "keep_last = 2"
out=$(as_pg "$PGKEEP" --config "$T/keep2.conf" expire --dry-run 2>&1)
like "$out" "would remove 4 backup" "dry run announces four removals"
is "$(pgkeep_run info --json | pyjson 'print(len(d["backups"]))')" 6 "dry run removes nothing"

out=$(as_pg "$PGKEEP" --config "$T/keep2.conf" expire --grace 0 2>&1)
rc=$?
is "$rc" 0 "expire keep_last=2 succeeds"
diag "$out"
like "$out" "remove +$1 " "the oldest is removed, with a reason"
like "$out" "keep +$6 .*last" "the newest is kept by keep_last"

remaining=$(pgkeep_run info --json | pyjson 'print(" ".join(sorted(b["id"] for b in d["backups"])))')
is "$remaining" "$5 $6" "exactly the two newest remain"

chunks_after=$(find "$T/repo/chunks" -type f | sort)
n_after=$(printf '%s\n' "$chunks_after" | grep -c .)
cmp_ok "$n_after" -lt "$n_before" "chunks of expired backups are gone ($n_before -> $n_after)"
extra=$(printf '%s\n' "$chunks_after" | grep -vxF "$chunks_before" | grep -c .)
is "$extra" 0 "expire wrote no chunk"

vj=$(pgkeep_run verify --json)
is "$(printf '%s' "$vj" | pyjson 'print(d["ok"])')" True "verify passes after expire"
is "$(printf '%s' "$vj" | pyjson 'print(d["unreferenced_chunks"])')" 0 "no chunk left that nothing refers to"
ok "verify --read-data passes: shared chunks stayed" pgkeep_run verify --read-data

# WAL before the start of backup 5 is gone, from there on it is all there.
start5=$(pgkeep_run info --json | pyjson "print([b['wal_start'] for b in d['backups'] if b['id'] == '$5'][0])")
older=$(find "$T/repo/wal" -type f ! -name '*.history' | sed 's|.*/||' | cut -c9-24 |
	awk -v s="$(printf '%s' "$start5" | cut -c9-24)" '$1 < s' | wc -l)
is "$older" 0 "no WAL older than $start5 remains"
ok "WAL from $start5 on is kept" test -f "$T/repo/wal/$(printf '%s' "$start5" | cut -c1-8)/$start5"

# Both survivors restore to a point in time just after each of them.
restore_check() { # ID TARGET-TIME WANT-COUNT DIR
	local id=$1 target=$2 want=$3 dir=$4 port got
	pgkeep_run restore "$id" --pgdata "$dir" --target-time "$target" >/dev/null 2>"$T/restore.err" ||
		{ diag "$(cat "$T/restore.err")"; return 1; }
	port=$(free_port)
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -l "$dir.log" -w -t 300 \
		-o "-p $port -c archive_mode=off -c unix_socket_directories=$SOCKDIR -c listen_addresses=''" start >/dev/null ||
		{ diag "$(tail -n 5 "$dir.log")"; return 1; }
	# Recovery ends with promotion; wait until the server accepts writes.
	wait_recovered "$port"
	got=$(as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$port" -d postgres -c 'select count(*) from t')
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
	[ "$got" = "$want" ] || { diag "restored $got rows, want $want"; return 1; }
}
ok "backup 5 restores to just after it ($count_5 rows)" restore_check "$5" "$after_5" "$count_5" "$T/r5"
ok "backup 6 restores to just after it ($count_6 rows)" restore_check "$6" "$after_6" "$count_6" "$T/r6"

# ---------------------------------------------------------------- killed mid-run

# Three more backups, then keep_last = 1 through a store that answers slowly,
# so that the kills land inside expire; after each kill it runs again.
for i in 7 8 9; do
	psql_q "create table only_$i as select g, md5(random()::text) as v from generate_series(1, 30000) g"
	pgkeep_run backup --type=base >/dev/null 2>&1 || bail_out "backup $i failed"
done
psql_q "select pg_switch_wal()" >/dev/null
PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $T/repo\ndelay_ms = 40\nkeep_last = 1" \
	pgkeep_conf "$T/slow.conf"
objects() { find "$T/repo/backups" "$T/repo/chunks" "$T/repo/wal" -type f | wc -l; }
kills=0
for round in 1 2 3 4; do
	before=$(objects)
	as_pg "$PGKEEP" --config "$T/slow.conf" expire --grace 0 >/dev/null 2>&1 &
	pid=$!
	# Kill it once it has removed a few objects: in the middle of its work.
	while kill -0 "$pid" 2>/dev/null && [ "$(objects)" -gt $((before - 3)) ]; do
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		# pgkeep itself (runuser's child), not just the shell around it.
		pkill -KILL -f -- "--config $T/slow.conf expire"
		kills=$((kills + 1))
	fi
	wait "$pid" 2>/dev/null
	while pgrep -f -- "--config $T/slow.conf expire" >/dev/null; do sleep 0.05; done
	ok "after kill round $round ($before objects before, $(objects) after): verify --read-data passes" \
		pgkeep_run verify --read-data
done
cmp_ok "$kills" -ge 2 "expire was killed mid-run ($kills times)"
conf_with "$T/keep1.conf" "keep_last = 1"
ok "expire run again to the end" as_pg "$PGKEEP" --config "$T/keep1.conf" expire --grace 0
is "$(pgkeep_run info --json | pyjson 'print(len(d["backups"]))')" 1 "one backup remains"
ok "verify --read-data passes after the interrupted expires" pgkeep_run verify --read-data

# ---------------------------------------------------------------- corruption

last=$(pgkeep_run info --json | pyjson 'print(d["backups"][0]["id"])')
victim=$(find "$T/repo/chunks" -type f | head -n 1)
cp -p "$victim" "$T/victim.copy"
repo_corrupt_object "${victim#$T/repo/}"
out=$(pgkeep_run verify --read-data 2>&1)
rc=$?
cmp_ok "$rc" -ne 0 "verify --read-data fails on a corrupted chunk"
like "$out" "$last" "and names the backup that needs it"
cp -p "$T/victim.copy" "$victim"
ok "verify passes again once the chunk is repaired" pgkeep_run verify --read-data

# ---------------------------------------------------------------- pins

psql_q "insert into t(batch, v) values (100, 'before pinned backup')"
pgkeep_run backup --type=base >/dev/null 2>&1 || bail_out "backup for pin failed"
pinned=$(pgkeep_run info --json | pyjson 'print(sorted(d["backups"], key=lambda b: b["start_time"])[-1]["id"])')
ok "pin $pinned" pgkeep_run pin "$pinned" --note "before a risky migration"
psql_q "insert into t(batch, v) values (101, 'after pinned backup')"
sleep 1.1
pin_time=$(psql_q "select now()")
pin_count=$(psql_q "select count(*) from t")
sleep 1.1
psql_q "create table only_10 as select g from generate_series(1, 1000) g"
pgkeep_run backup --type=base >/dev/null 2>&1 || bail_out "backup after pin failed"
archive_current_wal || bail_out "the switched WAL segment was not archived"
ok "expire keep_last = 1" as_pg "$PGKEEP" --config "$T/keep1.conf" expire --grace 0
left=$(pgkeep_run info --json | pyjson 'print(" ".join(b["id"] for b in d["backups"]))')
like "$left" "$pinned" "the pinned backup survives keep_last = 1"
is "$(printf '%s\n' $left | wc -l)" 2 "the pinned and the newest remain"
ok "the pinned backup still restores to a point in time" restore_check "$pinned" "$pin_time" "$pin_count" "$T/rpin"
ok "unpin" pgkeep_run unpin "$pinned"
ok "expire after unpin" as_pg "$PGKEEP" --config "$T/keep1.conf" expire --grace 0
is "$(pgkeep_run info --json | pyjson 'print(len(d["backups"]))')" 1 "unpinned, it goes"

# ---------------------------------------------------------------- check

out=$(pgkeep_run check --timeout 300 2>&1)
rc=$?
is "$rc" 0 "check passes on a good set-up"
[ "$rc" = 0 ] || diag "$out"
pg_set archive_command true || bail_out "cannot set archive_command"
out=$(pgkeep_run check --timeout 5 2>&1)
rc=$?
cmp_ok "$rc" -ne 0 "check fails when archive_command does not call pgkeep"
like "$out" "archive_command +FAILED" "and says which item failed"
like "$out" "wal-push %p" "and what to set it to"

done_testing

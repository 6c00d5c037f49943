#!/bin/sh
# Crash consistency: pgkeep is killed with SIGKILL at seeded random moments
# during wal-push, base and dump backups, restore and expire (at least 50
# kills).  A moment is a number of store calls begun, counted by the fault
# plugin, so that the kills land inside the work however fast or loaded the
# machine is; its delay_ms keeps each call open long enough to be caught.  After each kill the same command is run
# again and must succeed; the repositories must pass verify --read-data; and
# nothing acknowledged (a command that exited 0) may be missing.
#
#   CRASH_SEED=N   replay a run (the seed is printed first)

. "${top_srcdir:-.}/tests/lib/integration.sh"

seed=${CRASH_SEED:-$(($(od -An -tu4 -N4 /dev/urandom) % 2147483647))}
diag "seed $seed (CRASH_SEED=$seed to replay)"
rng=$seed
DELAY_MS=40
kills=0

# Park-Miller step; leaves a number in [lo, hi] in R.
rand() {
	rng=$(((rng * 48271) % 2147483647))
	R=$(($1 + rng % ($2 - $1 + 1)))
}

# Run a command with its report out of the TAP stream.
quiet() {
	"$@" >/dev/null
}

# The store calls the slow configs' fault plugin has counted so far (empty
# while it rewrites the file: read as none yet).
calls_made() {
	local c
	c=$(cat "$T/calls" 2>/dev/null)
	echo "${c:-0}"
}

# attempt CONF MIN MAX ARGS...: run pgkeep ARGS as postgres and SIGKILL it
# once it has begun a random number of store calls in [MIN, MAX].  Sets
# killed (1 when the kill landed while it ran) and rc; its output is in
# $T/out and $T/err.  Both waits poll every 10 ms; their bounds (minutes)
# only stop a hang.
attempt() {
	local conf=$1 lo=$2 hi=$3 pid n=0 waiter target
	shift 3
	rm -f "$T/pid"
	rand "$lo" "$hi"
	target=$(($(calls_made) + R))
	(as_pg sh -c 'echo $$ >"$1"; b=$2 c=$3; shift 3; exec "$b" --config "$c" "$@"' sh "$T/pid" "$PGKEEP" "$conf" \
		"$@" >"$T/out" 2>"$T/err") 2>/dev/null &
	waiter=$!
	# Polled every 10 ms, the pause below starting when pgkeep does; the
	# bound, at least five minutes, only stops a hang.
	while [ ! -s "$T/pid" ] && [ $n -lt 30000 ]; do
		sleep 0.01
		n=$((n + 1))
	done
	pid=$(cat "$T/pid")
	n=0
	while [ "$(calls_made)" -lt "$target" ] && kill -0 "$pid" 2>/dev/null && [ $n -lt 30000 ]; do
		sleep 0.01
		n=$((n + 1))
	done
	killed=0
	if kill -KILL "$pid" 2>/dev/null; then
		killed=1
	fi
	# wal-push hands segments to a background pusher of its own session,
	# started from the same command line: it dies at the same moment.
	pkill -KILL -f -- "--config $conf " 2>/dev/null
	wait "$waiter"
	rc=$?
	# Killed just as it exited on its own: that run counts as finished.
	if [ "$killed" -eq 1 ] && [ "$rc" -ne 137 ]; then
		killed=0
	fi
	[ "$killed" -eq 0 ] || kills=$((kills + 1))
}

# again CONF ARGS...: the interrupted command once more, to the end.
again() {
	local conf=$1
	shift
	as_pg "$PGKEEP" --config "$conf" "$@" >"$T/out" 2>"$T/err"
}

backup_ids() {
	pgkeep_run info --json | python3 -c 'import json, sys
for b in json.load(sys.stdin)["backups"]:
    print(b["id"])' | sort
}

# Every acknowledged backup in $T/acked is still listed.
acked_backups_present() {
	local missing
	backup_ids >"$T/have"
	missing=$(sort "$T/acked" | comm -23 - "$T/have")
	[ -z "$missing" ] || { diag "missing: $missing"; return 1; }
}

verify_all() {
	pgkeep_run verify --read-data >"$T/verify.out" 2>&1 ||
		{ diag "$(tail -n 5 "$T/verify.out")"; return 1; }
}

# --------------------------------------------------------------- set-up

pg_init "$T/pg"
t_mkdir "$T/walsrc"
pgkeep_conf
pgkeep_init || bail_out "pgkeep init failed"
# Every archived segment is also kept aside, for the wal-push phase.
pg_conf "archive_command = 'cp %p $T/walsrc/%f && \"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '1GB'"
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s 2 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "create table ledger(n int primary key, note text)" || bail_out "create table"
# fail_at beyond reach: the plugin fails nothing, but counts every call.
COUNT="fail_at = 4000000000\nfail_state = $T/calls"
PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $TEST_REPO_PATH\ndelay_ms = $DELAY_MS\n$COUNT" \
	pgkeep_conf "$T/slow.conf"
chown postgres "$T/slow.conf"
: >"$T/acked"
ledger=0
add_rows() {
	ledger=$((ledger + $1))
	psql_q "insert into ledger select g, md5(g::text) from generate_series($((ledger - $1 + 1)), $ledger) g" ||
		bail_out "insert failed"
}

# --------------------------------------------------------------- wal-push

# A second repository takes the segments, pushed one by one by the test.
W=$T/wrepo
PGKEEP_TEST_REPO_CONF="plugin = local\npath = $W" pgkeep_conf "$T/wfast.conf"
PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $W\ndelay_ms = $DELAY_MS\n$COUNT" pgkeep_conf "$T/wslow.conf"
as_pg "$PGKEEP" --config "$T/wfast.conf" init --kdf-n 1024 >/dev/null 2>&1 ||
	bail_out "init of the WAL repository failed"
i=0
while [ $i -lt 26 ]; do
	add_rows 500
	psql_q "select pg_switch_wal()" >/dev/null
	i=$((i + 1))
done
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
wait_archived "$last" || bail_out "archiving did not reach $last"

wal_kills=0
: >"$T/acked-wal"
bad=0
for seg in $(ls "$T/walsrc" | grep -E '^[0-9A-F]{24}$' | sort); do
	# A push makes only a few store calls: killed at its first or second.
	attempt "$T/wslow.conf" 1 2 wal-push "$T/walsrc/$seg"
	if [ "$killed" -eq 1 ]; then
		wal_kills=$((wal_kills + 1))
		again "$T/wfast.conf" wal-push "$T/walsrc/$seg" ||
			{ bad=$((bad + 1)); diag "wal-push $seg after a kill: $(cat "$T/err")"; continue; }
	elif [ "$rc" -ne 0 ]; then
		bad=$((bad + 1))
		diag "wal-push $seg failed without a kill: $(cat "$T/err")"
		continue
	fi
	echo "$seg" >>"$T/acked-wal"
done
is "$bad" 0 "every wal-push, killed ($wal_kills times) or not, succeeds when run again"
cmp_ok "$wal_kills" -ge 18 "wal-push was killed mid-run at least 18 times ($wal_kills)"
ok "the WAL repository passes verify --read-data" \
	quiet as_pg "$PGKEEP" --config "$T/wfast.conf" verify --read-data
t_mkdir "$T/fetched"
lost=0
for seg in $(cat "$T/acked-wal"); do
	if ! as_pg "$PGKEEP" --config "$T/wfast.conf" wal-fetch "$seg" "$T/fetched/$seg" 2>>"$T/fetch.err" ||
		! cmp -s "$T/fetched/$seg" "$T/walsrc/$seg"; then
		lost=$((lost + 1))
	fi
	rm -f "$T/fetched/$seg"
done
is "$lost" 0 "all $(wc -l <"$T/acked-wal") acknowledged segments come back byte for byte"

# --------------------------------------------------------------- backups

# backup_round TYPE WANT_KILLS MIN_CALLS MAX_CALLS
backup_round() {
	local type=$1 want=$2 lo=$3 hi=$4 got=0 tries=0 fails=0
	while [ $got -lt "$want" ] && [ $tries -lt $((want * 3)) ]; do
		tries=$((tries + 1))
		add_rows 200
		attempt "$T/slow.conf" "$lo" "$hi" backup --type="$type"
		if [ "$killed" -eq 1 ]; then
			got=$((got + 1))
			again "$PGKEEP_CONF" backup --type="$type" ||
				{ fails=$((fails + 1)); diag "$type backup after a kill: $(cat "$T/err")"; }
		elif [ "$rc" -ne 0 ]; then
			fails=$((fails + 1))
			diag "$type backup failed without a kill: $(cat "$T/err")"
		fi
		[ "$rc" -ne 0 ] && [ "$killed" -eq 0 ] || head -n 1 "$T/out" >>"$T/acked"
		verify_all || fails=$((fails + 1))
	done
	is "$fails" 0 "$type backup: every run after a kill succeeds and verify --read-data passes"
	cmp_ok "$got" -ge "$want" "$type backup was killed mid-run $got times"
}
backup_round base 8 2 40
backup_round dump 8 2 20
ok "every acknowledged backup is still there ($(wc -l <"$T/acked"))" acked_backups_present
ok "no backup is left half-made: every listed backup verifies" verify_all

# --------------------------------------------------------------- restore

got=0
tries=0
fails=0
add_rows 100
last_rows=$ledger
psql_q "select pg_switch_wal()" >/dev/null
while [ $got -lt 8 ] && [ $tries -lt 24 ]; do
	tries=$((tries + 1))
	[ -z "${dir:-}" ] || rm -rf "$dir"
	dir=$T/restore$tries
	attempt "$T/slow.conf" 2 20 restore latest --pgdata "$dir" --force
	[ "$killed" -eq 1 ] || continue
	got=$((got + 1))
	if ! again "$PGKEEP_CONF" restore latest --pgdata "$dir" --force; then
		fails=$((fails + 1))
		diag "restore after a kill: $(cat "$T/err")"
	fi
done
is "$fails" 0 "restore: the same command after a kill succeeds"
cmp_ok "$got" -ge 8 "restore was killed mid-run $got times"
# The last restored directory starts and holds the data.
port=$(free_port)
chown -R postgres:postgres "$dir"
as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -l "$T/restored.log" -w -t 300 \
	-o "-p $port -c archive_mode=off -c unix_socket_directories=$SOCKDIR" start >/dev/null 2>&1
# pg_ctl -w returns at consistency; the archive is replayed to its end after.
wait_recovered "$port"
rows=$(as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$port" -d postgres \
	-c "select count(*) from ledger" 2>/dev/null)
as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1
is "$rows" "$last_rows" "the cluster restored after the kills recovers every ledger row"

# --------------------------------------------------------------- expire

PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $TEST_REPO_PATH\ndelay_ms = $DELAY_MS\nkeep_last = 2\n$COUNT" \
	pgkeep_conf "$T/slow-keep.conf"
PGKEEP_TEST_REPO_CONF="plugin = local\npath = $TEST_REPO_PATH\nkeep_last = 2" \
	pgkeep_conf "$T/keep.conf"
got=0
tries=0
fails=0
while [ $got -lt 6 ] && [ $tries -lt 18 ]; do
	tries=$((tries + 1))
	add_rows 100
	again "$PGKEEP_CONF" backup --type=dump || { fails=$((fails + 1)); continue; }
	head -n 1 "$T/out" >>"$T/acked"
	attempt "$T/slow-keep.conf" 1 15 expire --grace 0
	[ "$killed" -eq 1 ] || continue
	got=$((got + 1))
	again "$T/keep.conf" expire --grace 0 ||
		{ fails=$((fails + 1)); diag "expire after a kill: $(cat "$T/err")"; }
	verify_all || fails=$((fails + 1))
done
is "$fails" 0 "expire: the same command after a kill succeeds, verify --read-data passes"
cmp_ok "$got" -ge 6 "expire was killed mid-run $got times"
ok "expire run to the end" quiet as_pg "$PGKEEP" --config "$T/keep.conf" expire --grace 0
# What retention keeps of the acknowledged backups: the newest two of each type.
# $T/acked is in the order the backups ran, one after another; an id made
# in the same second as an earlier one carries a suffix (-dump-2).
{ grep -E -- '-base(-[0-9]+)?$' "$T/acked" | tail -n 2
  grep -E -- '-dump(-[0-9]+)?$' "$T/acked" | tail -n 2; } | sort >"$T/kept"
is "$(backup_ids | tr '\n' ' ')" "$(tr '\n' ' ' <"$T/kept")" \
	"the two newest acknowledged backups of each type are the ones kept"
ok "the repository passes verify --read-data at the end" verify_all

cmp_ok "$kills" -ge 50 "at least 50 kills in all"
diag "kills survived: $kills (seed $seed)"
done_testing

#!/bin/sh
# Point-in-time restores checked against a ledger, seeded.  While pgbench
# runs alongside, one session commits ledger rows 1, 2, 3 ... each in its
# own transaction and records, right after each commit, the WAL position
# and the wall clock.  Three base backups are taken along the way.  Then 10
# random targets (time or LSN, taken from the ledger) are restored with
# `pgkeep restore latest --target-...` into new directories, started on free
# ports, and each must hold exactly rows 1..i: every row committed at or
# before the target, none after.
#
#   PITR_SEED=N   replay a run (the seed is printed first)

. "${top_srcdir:-.}/tests/lib/integration.sh"

seed=${PITR_SEED:-$(($(od -An -tu4 -N4 /dev/urandom) % 2147483647))}
diag "seed $seed (PITR_SEED=$seed to replay)"
rng=$seed
TARGETS=10
PHASE_ROWS=300

rand() {
	rng=$(((rng * 48271) % 2147483647))
	R=$(($1 + rng % ($2 - $1 + 1)))
}

pg_init "$T/pg"
pgkeep_conf
pgkeep_init || bail_out "pgkeep init failed"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '1GB'" "timezone = 'UTC'"
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s 1 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "create table ledger(seq int primary key, at timestamptz not null default clock_timestamp())"

# pgbench alongside, at a bounded rate, so the ledger's commits interleave
# with other transactions in the WAL.
(as_pg sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$T/pgbench.pid" "$PG_BINDIR/pgbench" -n -c 2 \
	-R 150 -T 900 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1) &
bench=$!
at_exit "kill \$(cat $T/pgbench.pid); wait $bench"

# ledger_phase FIRST LAST: commit rows FIRST..LAST, one per transaction;
# after each commit record "seq|lsn|time" in $T/ledger.
ledger_phase() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		for (i = a; i <= b; i++) {
			printf "insert into ledger(seq) values (%d);\n", i
			printf "select %d, pg_current_wal_lsn(), clock_timestamp();\n", i
		}
	}' | psql_q >>"$T/ledger" || bail_out "ledger rows $1..$2 failed"
}

: >"$T/ledger"
row=0
backups=0
first_target=0
for phase in 1 2 3 4; do
	ledger_phase $((row + 1)) $((row + PHASE_ROWS))
	row=$((row + PHASE_ROWS))
	[ $phase -lt 4 ] || break
	pgkeep_run backup --type=base >/dev/null 2>"$T/err" || bail_out "backup failed: $(cat "$T/err")"
	backups=$((backups + 1))
	# Targets come after the first backup has finished, by a clear margin.
	if [ $phase -eq 1 ]; then
		sleep 1.1
		first_target=$((row + 1))
	fi
done
psql_q "select pg_switch_wal()" >/dev/null
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
wait_archived "$last" || bail_out "archiving did not reach $last"
is "$(wc -l <"$T/ledger" | tr -d ' ')" "$row" "the ledger recorded $row commits"
is "$backups" 3 "three base backups taken along the way"

# restored_rows DIR: start a restored cluster on a free port, wait for the end
# of recovery, print "count|max" of the ledger, stop it.
restored_rows() {
	local dir=$1 port
	port=$(free_port)
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -l "$dir.log" -w -t 300 \
		-o "-p $port -c unix_socket_directories=$SOCKDIR" start >/dev/null 2>&1 ||
		{ diag "start failed: $(tail -n 5 "$dir.log")"; return 1; }
	wait_recovered "$port"
	as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$port" -d postgres \
		-c "select count(*) || '|' || coalesce(max(seq), 0) from ledger"
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1
}

k=0
good=0
while [ $k -lt $TARGETS ]; do
	k=$((k + 1))
	rand "$first_target" "$row"
	i=$R
	line=$(sed -n "${i}p" "$T/ledger")
	lsn=$(echo "$line" | cut -d'|' -f2)
	at=$(echo "$line" | cut -d'|' -f3)
	rand 0 1
	if [ "$R" -eq 0 ]; then
		kind=time
		value=$at
	else
		kind=lsn
		value=$lsn
	fi
	dir=$T/r$k
	if ! pgkeep_run restore latest --pgdata "$dir" --target-"$kind" "$value" \
		--target-action promote --archive-mode off >/dev/null 2>"$T/err"; then
		fail "target $k ($kind $value, row $i): restore failed: $(cat "$T/err")"
		continue
	fi
	got=$(restored_rows "$dir")
	if is "$got" "$i|$i" "target $k: --target-$kind '$value' holds exactly rows 1..$i"; then
		good=$((good + 1))
	fi
	rm -rf "$dir" "$dir.log"
done
is "$good" "$TARGETS" "all $TARGETS random targets restored exactly"
diag "targets restored: $good (seed $seed)"
done_testing

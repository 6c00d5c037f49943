#!/bin/sh
# The look-ahead WAL push and the recovery prefetch on a busy cluster:
# pgbench runs while segments are switched as fast as PostgreSQL will,
# then a backlog is let go at once; later calls find their segment in the
# spool, every segment is stored byte-identical, the spool stays bounded;
# a base backup restored with prefetch on recovers to the end of the
# archive, serving segments from the prefetch spool.

. "${top_srcdir:-.}/tests/lib/integration.sh"

AHEAD=8
FETCH_AHEAD=4
PUSH_BOUND=$((2 * AHEAD + 16))	# what wal-push promises for its spool

spool_hits() {
	grep -c "archived.*(spool record" "$PG1.log"
}

t_mkdir "$T/spool" "$T/check"
pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"wal_keep_size = '4GB'" "max_wal_size = '4GB'"
pgkeep_conf
# lib.sh already points spool_dir at $T/spool.
as_pg sed -i "/^\[global\]/a wal_push_ahead = $AHEAD\\
wal_fetch_ahead = $FETCH_AHEAD\\
log_level = debug" "$PGKEEP_CONF" || bail_out "cannot edit $PGKEEP_CONF"
# The same without prefetch, to read the repository itself.
as_pg sh -c 'sed "s/^wal_fetch_ahead = .*/wal_fetch_ahead = 0/" "$1" >"$2"' sh \
	"$PGKEEP_CONF" "$T/noprefetch.conf"
ok "pgkeep init" pgkeep_init
pg_start
PG1=$PGDATA

as_pg "$PG_BINDIR/pgbench" -i -q -s 2 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
run pgkeep_run backup --type=base
is "$rc" "0" "a base backup to recover from"
[ "$rc" -eq 0 ] || diag "$err"

# Sample the push spool's size all along.
(
	while :; do
		ls "$T/spool"/push-*/ 2>/dev/null | wc -l
		sleep 0.05
	done
) >"$T/samples" &
sampler=$!
at_exit "kill $sampler"

# ---------------------------------------------------------------- busy

as_pg "$PG_BINDIR/pgbench" -n -c 2 -T 8 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 &
bench=$!
# Sixty segments whatever the machine's speed: on a loaded machine a psql
# call can take half a second, and a switch loop bounded by pgbench's 8
# seconds made too few segments for the count checked below.  Each switch
# follows a row of its own, since a switch in a segment with nothing
# written since the last one is a no-op once pgbench has finished.
i=0
while [ $i -lt 60 ]; do
	psql_q "insert into pgbench_history values (1, 1, 1, $i, now()); select pg_switch_wal()" \
		>/dev/null
	sleep 0.1
	i=$((i + 1))
done
wait $bench
diag "$i switches under pgbench"

# ---------------------------------------------------------------- backlog

# An empty archive_command holds the .ready files back; then all at once.
# pg_set returns once the archiver has been told, so every file of the
# backlog is held, however slowly the machine goes.
ARCHIVE_COMMAND="\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p"
pg_set archive_command "" || bail_out "cannot empty archive_command"
before=$(spool_hits)
for i in $(seq 1 30); do
	echo "insert into pgbench_history select 1, 1, 1, g, now() from generate_series(1, 3000) g;"
	echo "select pg_switch_wal();"
done | psql_q >/dev/null || bail_out "generating the backlog failed"
nready=$(ls "$PG1/pg_wal/archive_status" | grep -c '\.ready$')
cmp_ok "$nready" -ge 30 "a backlog of $nready ready files"
pg_set archive_command "$ARCHIVE_COMMAND" || bail_out "cannot restore archive_command"
rows=$(psql_q "select count(*) from pgbench_history")
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
t0=$(date +%s%3N)
ok "the archiver catches up to $last" wait_archived "$last"
t1=$(date +%s%3N)
diag "backlog archived in $((t1 - t0)) ms"
kill $sampler 2>/dev/null

hits=$(spool_hits)
cmp_ok "$hits" -gt 0 "calls found their segment in the spool ($hits in all)"
cmp_ok "$((hits - before))" -ge 15 "... most of the backlog ($((hits - before)) of $nready)"
is "$(psql_q "select failed_count from pg_stat_archiver")" "0" "no archive_command failed"
max=$(sort -n "$T/samples" | tail -n 1)
cmp_ok "$max" -le "$PUSH_BOUND" "the push spool never held more than $PUSH_BOUND records (at most $max)"
ok "no status file was renamed by pgkeep (.ready files are PostgreSQL's)" \
	[ "$(ls "$PG1/pg_wal/archive_status" | grep -vc '\.\(ready\|done\)$')" -eq 0 ]

# The background pusher leaves once nothing is ready, and says what it did.
pusher_gone() {
	local lock
	for lock in "$T/spool"/push-*/pusher-*.lock; do
		flock -n "$lock" true || return 1
	done
}
ok "the background pusher has left (lock free)" wait_until 300 pusher_gone
stats=$(cat "$T/spool"/push-*/pusher.stats 2>/dev/null)
cmp_ok "$(printf '%s\n' "$stats" | awk '$1 == "pushed" { print $2 }')" -gt 0 \
	"pusher.stats: it pushed segments"
is "$(printf '%s\n' "$stats" | awk '$1 == "failed" { print $2 }')" 0 "pusher.stats: none failed"
cmp_ok "$(printf '%s\n' "$stats" | awk '$1 == "max_rss_kib" { print $2 }')" -le 65536 \
	"pusher.stats: its peak memory stayed within 64 MiB"

# ---------------------------------------------------------------- the repository

bad=0 n=0
for s in $(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
	n=$((n + 1))
	(cd "$T/check" && as_pg "$PGKEEP" --config "$T/noprefetch.conf" wal-fetch "$s" seg) 2>/dev/null
	if [ $? -ne 0 ] || ! cmp -s "$PG1/pg_wal/$s" "$T/check/seg"; then
		bad=$((bad + 1))
		diag "$s differs or is missing"
	fi
done
cmp_ok "$n" -ge 60 "$n segments archived"
is "$bad" "0" "every one is in the repository, byte-identical"

# ---------------------------------------------------------------- recovery

run pgkeep_run restore latest --pgdata "$T/r1" --archive-mode=off
is "$rc" "0" "restore of the base backup (recovery to the end of the archive)"
[ "$rc" -eq 0 ] || diag "$err"
pg_start_restored "$T/r1"
is "$(psql_q "select pg_is_in_recovery()")" "f" "recovery ends"
is "$(psql_q "select count(*) from pgbench_history")" "$rows" \
	"... at the end of the archive: every row of the last transactions is there"
served=$(grep -c "from the prefetch spool" "$T/r1.log")
fetched=$(grep -c "restored wal/" "$T/r1.log")
cmp_ok "$served" -gt 0 "recovery used prefetched segments ($served of $fetched)"
cmp_ok "$(ls "$T/spool"/fetch-*/ | wc -l)" -le $((FETCH_AHEAD + 2)) \
	"the prefetch spool stays within the look-ahead"

done_testing

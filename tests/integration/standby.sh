#!/bin/sh
# A base backup taken from a hot standby: the primary archives with pgkeep
# wal-push, a streaming standby is made from a pgkeep backup of it, and a
# backup of the standby waits until the primary's archive holds the WAL it
# needs.  Restored and recovered to a point after its end, every row
# written on the primary up to that point is there and none after it.  When
# the primary's archive never gets the segment, the backup gives up after
# standby_wal_timeout, naming the segment, and no backup is recorded.  Then
# the standby is promoted with its archiver unable to push history files: a
# backup on the new timeline stores the history file from the server.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# start_at DIR: start a cluster made outside pg_init on its own port.
start_at() {
	local dir=$1 port
	port=$(free_port) || bail_out "no free port"
	printf '%s\n' "$port" >"$dir.port"
	t_clusters="$t_clusters $dir"
	printf 'port = %s\n' "$port" >>"$dir/postgresql.conf"
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -l "$dir.log" -w -t 120 start >/dev/null ||
		{ diag "$(tail -n 20 "$dir.log")"; return 1; }
	pg_use "$dir"
}

# wait_sql SQL WANT: until SQL in the current cluster answers WANT (120 s).
wait_sql() {
	local i=0
	while [ "$(psql_q "$1" 2>/dev/null)" != "$2" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || return 1
		sleep 0.2
	done
}

# With nothing written since the last switch, pg_switch_wal() would name
# the segment just begun, which is archived only once it is switched too.
# standby_conf FILE TIMEOUT: a config whose conninfo names the standby.
standby_conf() {
	pgkeep_conf "$1"
	as_pg sed -i "/^\[global\]/a standby_wal_timeout = $2" "$1"
}

# backup_while_primary_writes CONF: a base backup of the standby in the
# background, the primary switching WAL each second meanwhile (its archive
# gets the segments the backup waits for); sets rc, out, err.
backup_while_primary_writes() {
	as_pg "$PGKEEP" --config "$1" -v backup --type=base >"$T/sb.out" 2>"$T/sb.err" &
	bpid=$!
	pg_use "$PRIMARY"
	while kill -0 "$bpid" 2>/dev/null; do
		psql_q "insert into pulse default values; select pg_switch_wal()" >/dev/null
		sleep 1
	done
	wait "$bpid"
	rc=$?
	out=$(cat "$T/sb.out")
	err=$(cat "$T/sb.err")
}

ledger() {
	psql_q "select count(*) || ':' || coalesce(min(id), 0) || '-' || coalesce(max(id), 0) || ':' ||
		coalesce(sum(id), 0) || ':' || md5(coalesce(string_agg(id || note, ',' order by id), ''))
		from ledger"
}

pg_init "$T/primary"
PRIMARY=$PGDATA
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start
psql_q "create table ledger(id int primary key, note text); create table pulse(id serial)" ||
	bail_out "create table failed"
psql_q "insert into ledger select g, 'before ' || g from generate_series(1, 100) g" ||
	bail_out "insert failed"

# ---------------------------------------------------------------- the standby

run pgkeep_run backup --type=base
is "$rc" 0 "a base backup of the primary"
[ "$rc" -eq 0 ] || diag "$err"
ok "its WAL is archived" archive_current_wal
run pgkeep_run restore latest --pgdata "$T/standby" --archive-mode=off
is "$rc" 0 "restored into the standby's directory"
[ "$rc" -eq 0 ] || diag "$err"
as_pg rm -f "$T/standby/recovery.signal"
as_pg touch "$T/standby/standby.signal"
as_pg sh -c 'printf "%s\n" "$1" >>"$2"' sh \
	"primary_conninfo = 'host=$SOCKDIR port=$(cat "$PRIMARY.port") user=postgres'" \
	"$T/standby/postgresql.conf"
ok "the standby starts" start_at "$T/standby"
STANDBY=$PGDATA
is "$(psql_q "select pg_is_in_recovery()")" t "... in recovery"
pg_use "$PRIMARY"
ok "... and streams from the primary" \
	wait_sql "select count(*) from pg_stat_replication where state = 'streaming'" 1
psql_q "insert into ledger select g, 'streamed ' || g from generate_series(101, 200) g"
lsn=$(psql_q "select pg_current_wal_lsn()")
pg_use "$STANDBY"
ok "the standby replays the primary's rows" \
	wait_sql "select pg_last_wal_replay_lsn() >= '$lsn'" t

# ---------------------------------------------------------------- a backup of the standby

standby_conf "$T/standby.conf" 120
backup_while_primary_writes "$T/standby.conf"
is "$rc" 0 "a base backup of the hot standby succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B=$(printf '%s\n' "$out" | head -n 1)
run pgkeep_run info --json
printf '%s\n' "$out" >"$T/info.json"
is "$(python3 - "$T/info.json" "$B" <<'EOF'
import json, sys
b = [b for b in json.load(open(sys.argv[1]))["backups"] if b["id"] == sys.argv[2]][0]
print(b["from_standby"], b["timeline"])
EOF
)" "True 1" "info shows it came from a standby, on timeline 1"
run pgkeep_run info
like "$out" "newest base: +$B \(finished .*, from a standby\)" "info's text says so too"

# Rows on the primary after the backup ended, one per transaction, and a
# target in their middle.
pg_use "$PRIMARY"
for i in $(seq 201 210); do
	psql_q "insert into ledger values ($i, 'after $i')"
done
want=$(ledger)
target=$(psql_q "select clock_timestamp()")
psql_q "select pg_sleep(0.05)" >/dev/null
for i in $(seq 211 215); do
	psql_q "insert into ledger values ($i, 'too late $i')"
done
ok "the WAL after the target is archived" archive_current_wal

run pgkeep_run restore "$B" --pgdata "$T/r1" --target-time "$target" --archive-mode=off
is "$rc" 0 "the standby's backup restores with a target after its end"
[ "$rc" -eq 0 ] || diag "$err"
ok "... without standby.signal: it recovers, it does not follow the primary" \
	[ ! -e "$T/r1/standby.signal" ]
ok "the restored cluster starts" start_at "$T/r1"
ok "... and recovery ends at the target" wait_sql "select pg_is_in_recovery()" f
is "$(ledger)" "$want" "every row up to the target is there, exact, and none after it"
is "$(psql_q "select max(id) from ledger")" 210 "... the last one written after the backup"
pg_stop

# ---------------------------------------------------------------- the archive never gets it

# The primary's archiver fails from now on: the segment the backup needs
# never reaches the repository.  A reload reaches the archiver some time
# after it returns: only once the archiver has failed on a segment switched
# now is every later segment surely kept out of the archive.
pg_use "$PRIMARY"
failed0=$(psql_q "select failed_count from pg_stat_archiver")
pg_conf "archive_command = 'false'"
psql_q "select pg_reload_conf()" >/dev/null
# (each look that finds it still archiving switches once more, so that the
# archiver has a new segment to fail on once the reload reaches it)
archiver_failing() {
	[ "$(psql_q "select failed_count from pg_stat_archiver")" -gt "$failed0" ] && return 0
	psql_q "insert into pulse default values; select pg_switch_wal()" >/dev/null
	return 1
}
ok "the primary's archiver now fails" wait_until 120 archiver_failing
pg_use "$STANDBY"
standby_conf "$T/standby-short.conf" 3
nbefore=$(pgkeep_run list 2>/dev/null | grep -c ' base ')
backup_while_primary_writes "$T/standby-short.conf"
cmp_ok "$rc" -ne 0 "without the primary archiving, the standby's backup fails"
like "$err" "WAL segment [0-9A-F]{24} needed by backup [^ ]+ \(taken from a standby\) did not reach repository test within 3 s \(standby_wal_timeout\)" \
	"... naming the segment, the repository and the timeout"
seg=$(printf '%s\n' "$err" | sed -n 's/.*WAL segment \([0-9A-F]\{24\}\) needed by.*/\1/p')
like "$err" "waiting for WAL segment $seg from the primary's archive \(repository test, standby_wal_timeout 3 s\)" \
	"while waiting, it said which segment it waited for from the primary's archive"
is "$(printf '%s\n' "$err" | grep -c 'error:')" 1 "... in one error line"
is "$(pgkeep_run list 2>/dev/null | grep -c ' base ')" "$nbefore" "... and no backup is recorded"

# ---------------------------------------------------------------- a new timeline

# The standby is promoted; its archiver stores segments but loses the
# history file (it reports success without storing it), so only the
# backup can put it in the repository.
pg_use "$STANDBY"
as_pg sed -i '/^archive_mode/d' "$STANDBY/postgresql.auto.conf"
pg_conf "archive_mode = on" \
	"archive_command = 'case %f in *.history) exit 0;; esac; \"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_stop && pg_start || bail_out "cannot restart the standby"
psql_q "select pg_promote()" >/dev/null
ok "the promoted standby leaves recovery" wait_sql "select pg_is_in_recovery()" f
is "$(psql_q "select left(pg_walfile_name(pg_current_wal_lsn()), 8)")" 00000002 "... on timeline 2"
psql_q "insert into ledger values (1000, 'timeline 2')"
pgkeep_conf "$T/promoted.conf"
run as_pg "$PGKEEP" --config "$T/promoted.conf" wal-fetch 00000002.history "$T/h0"
cmp_ok "$rc" -ne 0 "the archive lacks 00000002.history"
run as_pg "$PGKEEP" --config "$T/promoted.conf" backup --type=base
is "$rc" 0 "a base backup on timeline 2"
[ "$rc" -eq 0 ] || diag "$err"
B2=$(printf '%s\n' "$out" | head -n 1)
t_mkdir "$T/h"
run as_pg "$PGKEEP" --config "$T/promoted.conf" wal-fetch 00000002.history "$T/h/00000002.history"
is "$rc" 0 "the backup stored 00000002.history in the repository"
ok "... the server's own file" cmp "$T/h/00000002.history" "$STANDBY/pg_wal/00000002.history"
psql_q "insert into ledger values (1001, 'after the timeline 2 backup')"
ok "the WAL on timeline 2 is archived" archive_current_wal
pg_stop
run pgkeep_run restore "$B2" --pgdata "$T/r2" --archive-mode=off
is "$rc" 0 "the timeline 2 backup restores"
[ "$rc" -eq 0 ] || diag "$err"
ok "the restored cluster starts" start_at "$T/r2"
ok "... and recovers to the end of the archive" wait_sql "select pg_is_in_recovery()" f
is "$(psql_q "select string_agg(id::text, ',' order by id) from ledger where id >= 1000")" \
	"1000,1001" "the rows of timeline 2 are there"
pg_stop

done_testing

#!/bin/sh
# WAL to two repositories at once (archive_repos = a, b), both through the
# fault plugin (a local store that can be made to fail every call): WAL
# lands in both; with b down wal-push fails, naming b, and PostgreSQL counts
# failures; once b is back the archive catches up with nothing missing in
# either; wal-fetch falls back to b when a lacks a segment, and exits 128,
# never 1, when one repository fails and the other lacks the segment.

. "${top_srcdir:-.}/tests/lib/integration.sh"

down_opts() {
	[ "$1" = down ] && printf 'fail_at = 1\nfail_every = 1\nfail_code = io\n'
	return 0
}

# write_conf STATE_A STATE_B: "up" or "down"; replaced atomically, since
# the archiver may read it at any moment.
write_conf() {
	as_pg sh -c 'umask 077; cat >"$1.new" && mv "$1.new" "$1"' sh "$PGKEEP_CONF" <<EOF
[global]
repo = a
archive_repos = a, b
passphrase_file = $T/passphrase
plugin_dir = $PGKEEP_TEST_PLUGIN_DIR
spool_dir = $T/spool
wal_fetch_ahead = 0

[repo:a]
plugin = fault
path = $T/ra
$(down_opts "$1")

[repo:b]
plugin = fault
path = $T/rb
$(down_opts "$2")
EOF
}

obj() { # REPODIR NAME: the object file of a segment in a local store
	printf '%s/wal/%.8s/%s' "$1" "$2" "$2"
}

switch_segments() { # N: N segments with some rows each; prints the last name
	local i=0
	while [ $i -lt "$1" ]; do
		echo "insert into filler select g, md5(g::text) from generate_series(1, 2000) g;"
		echo "select pg_switch_wal();"
		i=$((i + 1))
	done | psql_q >/dev/null || bail_out "generating WAL failed"
	psql_q "insert into filler values (0, 'last')"
	psql_q "select pg_walfile_name(pg_switch_wal())"
}

# Segments PostgreSQL has archived, missing from the store in REPODIR.
missing_in() {
	local n=0 s
	for s in $(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
		[ -f "$(obj "$1" "$s")" ] || { n=$((n + 1)); diag "$s is missing in $1"; }
	done
	echo $n
}

t_mkdir "$T/spool" "$T/restore"
pgkeep_conf	# the passphrase file
write_conf up up
ok "init repository a" pgkeep_run --repo a init --kdf-n 1024
ok "init repository b" pgkeep_run --repo b init --kdf-n 1024

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"wal_keep_size = '1GB'"
pg_start
PG1=$PGDATA
psql_q "create table filler(id int, note text)" || bail_out "create table failed"

# ---------------------------------------------------------------- both up

last=$(switch_segments 12)
ok "the archiver reaches the last switched segment ($last)" wait_archived "$last"
is "$(psql_q "select failed_count from pg_stat_archiver")" "0" "no archive_command failed"
is "$(missing_in "$T/ra")" "0" "every archived segment is in repository a"
is "$(missing_in "$T/rb")" "0" "every archived segment is in repository b"
bad=0
for s in $(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
	for r in a b; do
		run sh -c "cd '$T/restore' && runuser -u postgres -- '$PGKEEP' --config '$PGKEEP_CONF' --repo $r wal-fetch $s pg_check"
		if [ $rc -ne 0 ] || ! cmp -s "$PG1/pg_wal/$s" "$T/restore/pg_check"; then
			bad=$((bad + 1))
			diag "$s from $r: exit $rc, $err"
		fi
	done
done
is "$bad" "0" "each segment reads back byte-identical from a and from b"

# ---------------------------------------------------------------- b down

write_conf up down
failed0=$(psql_q "select failed_count from pg_stat_archiver")
stuck=$(switch_segments 3)
archive_failed() { [ "$(psql_q "select failed_count from pg_stat_archiver")" != "$failed0" ]; }
wait_until 300 archive_failed
cmp_ok "$(psql_q "select failed_count from pg_stat_archiver")" -gt "$failed0" \
	"with b down, pg_stat_archiver counts failed archive_command runs"
ok "... and the archiver does not get past the segments b lacks" \
	[ "$(psql_q "select coalesce(left(last_archived_wal, 24) < '$stuck', true) from pg_stat_archiver")" = t ]
like "$(grep 'wal-push' "$PG1.log" | tail -n 20)" "repository b" \
	"the error in PostgreSQL's log names repository b"

ready=$(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.ready$/\1/p' | sort | head -n 1)
run sh -c "cd '$PG1' && runuser -u postgres -- '$PGKEEP' --config '$PGKEEP_CONF' wal-push pg_wal/$ready"
ok "wal-push of a ready segment with b down fails ($rc)" [ "$rc" -ne 0 ]
cmp_ok "$rc" -le 125 "... with a status PostgreSQL retries"
like "$err" "repository b" "... naming repository b"
ok "... yet it reached repository a" [ -f "$(obj "$T/ra" "$ready")" ]
ok "... and not b" [ ! -f "$(obj "$T/rb" "$ready")" ]
is "$(ls "$T/spool"/push-*/ 2>/dev/null | grep -c "^$ready\.")" "0" \
	"nothing stored in only one repository is recorded in the spool"

# ---------------------------------------------------------------- b back

write_conf up up
# A new segment wakes the archiver, which waits a minute after failures.
last=$(switch_segments 2)
ok "with b back, the archiver catches up to $last" wait_archived "$last"
is "$(missing_in "$T/ra")" "0" "nothing archived is missing in repository a"
is "$(missing_in "$T/rb")" "0" "nothing archived is missing in repository b"

# ---------------------------------------------------------------- wal-fetch

fetch() { # NAME: run wal-fetch in $T/restore into pg_out
	rm -f "$T/restore/pg_out"
	run sh -c "cd '$T/restore' && runuser -u postgres -- '$PGKEEP' --config '$PGKEEP_CONF' wal-fetch $1 pg_out"
}

set -- $(cd "$PG1/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | sort)
s1=$3 s2=$4 s3=$5
rm -f "$(obj "$T/ra" "$s1")"
fetch "$s1"
is "$rc" "0" "wal-fetch falls back to b when a lacks the segment"
ok "... byte-identical" cmp -s "$PG1/pg_wal/$s1" "$T/restore/pg_out"

write_conf up down
fetch "$s1"
is "$rc" "128" "a lacks it and b fails: exit 128, never 'not found'"
like "$err" "repository b" "... naming repository b"
ok "... and writes nothing" [ ! -e "$T/restore/pg_out" ]
fetch "$s2"
is "$rc" "0" "with b down, a segment a holds is still served"

write_conf down up
rm -f "$(obj "$T/rb" "$s3")"
fetch "$s3"
is "$rc" "128" "a fails and b lacks it: exit 128"
like "$err" "repository a" "... naming repository a"
fetch "$s2"
is "$rc" "0" "a fails and b holds it: served from b"
ok "... byte-identical" cmp -s "$PG1/pg_wal/$s2" "$T/restore/pg_out"

write_conf up up
fetch 00000001000000FF000000FE
is "$rc" "1" "absent from both: exit 1"
is "$err" "" "... quietly"
run sh -c "cd '$T/restore' && runuser -u postgres -- '$PGKEEP' --config '$PGKEEP_CONF' --repo a wal-fetch $s1 pg_out"
is "$rc" "1" "--repo a: only a is asked (it lacks $s1)"

done_testing

#!/bin/sh
# Monitoring: info --json carries the age of the newest base backup and dump,
# the newest archived WAL segment and its age, and the archive lag behind
# the server (which grows while archive_command fails and returns to 0 once
# it works); `pgkeep metrics` writes the same in Prometheus text format that
# a strict parser accepts, to a file replaced atomically, and still writes
# what it can (exiting non-zero) when a repository cannot be opened.

. "${top_srcdir:-.}/tests/lib/integration.sh"

PROMCHECK="${top_srcdir:-.}/tests/integration/promcheck.py"

# promcheck FILE: the strict parser; its report goes out of the TAP stream.
promcheck() {
	python3 "$PROMCHECK" "$1" >&2
}

# jget EXPR: evaluate EXPR on info --json (as `j`); None prints as null.
jget() {
	pgkeep_run info --json | python3 -c 'import json, sys
j = json.load(sys.stdin)
v = eval(sys.argv[1])
print("null" if v is None else v)' "$1"
}

# metric FILE SERIES: the value of one series (name{labels} exactly).
metric() {
	awk -v s="$2" '$1 == s { print $2 }' "$1"
}

archive_cmd="'\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_init "$T/pg1"
pg_conf "archive_command = $archive_cmd"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start

# ---------------------------------------------------------------- an empty repository

is "$(jget 'j["newest_base_age_s"]')" "null" "no base backup yet: newest_base_age_s is null"
is "$(jget 'j["newest_dump_age_s"]')" "null" "no dump yet: newest_dump_age_s is null"

# ---------------------------------------------------------------- after a base backup and a dump

psql_q "create table t (id int, v text); insert into t select g, md5(g::text) from generate_series(1, 50000) g" ||
	bail_out "cannot fill the database"
pgkeep_run backup --type=base >"$T/base.out" 2>&1 || { diag "$(cat "$T/base.out")"; bail_out "base backup failed"; }
BASE=$(head -n 1 "$T/base.out")
pgkeep_run backup --type=dump >"$T/dump.out" 2>&1 || { diag "$(cat "$T/dump.out")"; bail_out "dump failed"; }
DUMP=$(head -n 1 "$T/dump.out")
psql_q "insert into t values (0, 'switch'); select pg_switch_wal()" >/dev/null

age=$(jget 'j["newest_base_age_s"]')
like "$age" "^[0-9]+$" "newest_base_age_s is a number of seconds"
cmp_ok "$age" -le 120 "the newest base backup is seconds old"
age=$(jget 'j["newest_dump_age_s"]')
like "$age" "^[0-9]+$" "newest_dump_age_s is a number of seconds"
cmp_ok "$age" -le 120 "the newest dump is seconds old"

# Wait for the switched segment to be archived, then the archive is caught up.
for i in $(seq 1 60); do
	[ "$(jget 'j["wal"]["archive_lag_segments"]')" = "0" ] && break
	sleep 0.5
done
is "$(jget 'j["wal"]["newest"]')" "$(jget 'j["wal"]["last"]')" "wal.newest names the newest archived segment"
like "$(jget 'j["wal"]["newest"]')" "^[0-9A-F]{24}$" "wal.newest is a segment name"
age=$(jget 'j["wal"]["newest_age_s"]')
like "$age" "^[0-9]+$" "wal.newest_age_s is a number of seconds"
cmp_ok "$age" -le 120 "the newest segment was stored seconds ago"
is "$(jget 'j["wal"]["archive_lag_segments"]')" "0" "a working archive_command leaves no lag"
is "$(jget 'j["wal"]["archive_lag_s"]')" "0" "and no lag in seconds"

# ---------------------------------------------------------------- a stale segment of a higher timeline

# A test restore promoted onto timeline 2 days ago and archived one segment
# here; the cluster is still on timeline 1.  Its name sorts last, but it must
# neither hide the live segments nor raise the lag (through the rest of the
# test too: the failing archive_command, and the server down).
if repo_is_local; then
	live=$(jget 'j["wal"]["newest"]')
	stale=$TEST_REPO_PATH/wal/00000002/000000020000000000000001
	t_mkdir "$TEST_REPO_PATH/wal/00000002"
	cp "$TEST_REPO_PATH/wal/00000001/$live" "$stale" && chown postgres "$stale" &&
		touch -d '3 days ago' "$stale"
	is "$(jget 'j["wal"]["last"]')" 000000020000000000000001 \
		"a stale timeline 2 segment is the highest name in the repository"
	is "$(jget 'j["wal"]["newest"]')" "$live" "... but wal.newest is still the live timeline's ($live)"
	is "$(jget 'j["wal"]["archive_lag_segments"]')" "0" "... and there is no lag"
	cmp_ok "$(jget 'j["wal"]["newest_age_s"]')" -le 120 "... and the newest segment is seconds old"
	pgkeep_run metrics >"$T/stale.prom"
	is "$(metric "$T/stale.prom" 'pgkeep_wal_archive_lag_segments{repository="test"}')" "0" \
		"pgkeep metrics: no lag either"
	cmp_ok "$(metric "$T/stale.prom" 'pgkeep_wal_newest_age_seconds{repository="test"}')" -le 120 \
		"pgkeep metrics: the newest segment is seconds old"
else
	diag "the stale timeline checks need the local repository"
fi

# ---------------------------------------------------------------- a failing archive_command

pg_conf "archive_command = 'false'"
psql_q "select pg_reload_conf()" >/dev/null
wait_until 300 pg_setting_is archive_command false || bail_out "archive_command = false not taken"
sleep 1
for i in 1 2 3; do
	psql_q "insert into t select g, 'more' from generate_series(1, 1000) g; select pg_switch_wal()" >/dev/null
done
sleep 2
lag=$(jget 'j["wal"]["archive_lag_segments"]')
cmp_ok "$lag" -ge 3 "three switched segments not archived: archive_lag_segments >= 3"
lag_s=$(jget 'j["wal"]["archive_lag_s"]')
like "$lag_s" "^[0-9]+$" "archive_lag_s is the archiver's silence in seconds"
cmp_ok "$lag_s" -ge 2 "the archiver has been silent for seconds"

M=$T/textfile
t_mkdir "$M"
pgkeep_run metrics --output "$M/pgkeep.prom"
is "$?" "0" "pgkeep metrics --output succeeds"
ok "the strict Prometheus parser accepts the file" promcheck "$M/pgkeep.prom"
cmp_ok "$(metric "$M/pgkeep.prom" 'pgkeep_wal_archive_lag_segments{repository="test"}')" -ge 3 \
	"pgkeep_wal_archive_lag_segments shows the lag"
# The shipped dashboard and alert rules use only metrics written here: this
# output has a sample of every family (backups of both types, a server that
# is up, WAL and a lag).
ok "every metric the Grafana dashboard and the alert rules use has a sample" \
	python3 "${top_srcdir:-.}/tests/integration/promnames.py" "$M/pgkeep.prom" \
	"${top_srcdir:-.}/contrib/grafana/pgkeep.json" \
	"${top_srcdir:-.}/contrib/prometheus/pgkeep-rules.yml"

pg_conf "archive_command = $archive_cmd"
psql_q "select pg_reload_conf()" >/dev/null
no_lag() { [ "$(jget 'j["wal"]["archive_lag_segments"]')" = "0" ]; }
wait_until 300 no_lag
is "$(jget 'j["wal"]["archive_lag_segments"]')" "0" "once archive_command works again the lag returns to 0"

# ---------------------------------------------------------------- metrics

echo "not metrics" >"$M/pgkeep.prom"
inode=$(stat -c %i "$M/pgkeep.prom")
pgkeep_run metrics --output "$M/pgkeep.prom"
is "$?" "0" "pgkeep metrics --output replaces an existing file"
new_inode=$(stat -c %i "$M/pgkeep.prom")
cmp_ok "$new_inode" -ne "$inode" "the file is replaced by rename, not rewritten in place"
is "$(ls -A "$M")" "pgkeep.prom" "no temporary file is left beside it"
is "$(stat -c %a "$M/pgkeep.prom")" "644" "the file is readable by a collector running as another user"
if out=$(python3 "$PROMCHECK" "$M/pgkeep.prom"); then
	pass "the strict Prometheus parser accepts the metrics ($out)"
else
	fail "the strict Prometheus parser accepts the metrics"
	diag "$out"
fi
P=$M/pgkeep.prom
is "$(metric "$P" 'pgkeep_repository_up{repository="test"}')" "1" "pgkeep_repository_up is 1"
is "$(metric "$P" 'pgkeep_backup_count{repository="test",type="base"}')" "1" "one base backup counted"
is "$(metric "$P" 'pgkeep_backup_count{repository="test",type="dump"}')" "1" "one dump counted"
is "$(metric "$P" 'pgkeep_backup_newest_size_bytes{repository="test",type="base"}')" \
	"$(jget "[b for b in j['backups'] if b['id'] == '$BASE'][0]['size']")" \
	"pgkeep_backup_newest_size_bytes is the newest base backup's size"
cmp_ok "$(metric "$P" 'pgkeep_backup_newest_age_seconds{repository="test",type="dump"}')" -le 300 \
	"pgkeep_backup_newest_age_seconds of the dump is minutes at most"
cmp_ok "$(metric "$P" 'pgkeep_wal_newest_age_seconds{repository="test"}')" -le 300 \
	"pgkeep_wal_newest_age_seconds is minutes at most"
is "$(metric "$P" 'pgkeep_wal_archive_lag_segments{repository="test"}')" "0" \
	"pgkeep_wal_archive_lag_segments is 0 when caught up"
is "$(metric "$P" 'pgkeep_server_up')" "1" "pgkeep_server_up is 1"
stamp=$(metric "$P" 'pgkeep_metrics_timestamp_seconds')
cmp_ok "$(( $(date +%s) - stamp ))" -le 60 "pgkeep_metrics_timestamp_seconds is now"
ok "every family has HELP and TYPE gauge" sh -c \
	'[ "$(grep -c "^# HELP pgkeep_" "$1")" -eq "$(grep -c "^# TYPE pgkeep_[a-z_]* gauge$" "$1")" ]' sh "$P"

pgkeep_run metrics >"$T/stdout.prom"
is "$?" "0" "pgkeep metrics writes to stdout without --output"
ok "the parser accepts stdout's metrics too" promcheck "$T/stdout.prom"

pgkeep_run metrics --output "$T/no-such-dir/pgkeep.prom" 2>"$T/nodir.err"
cmp_ok "$?" -ne 0 "metrics into a missing directory fails"
like "$(cat "$T/nodir.err")" "cannot create .*no-such-dir" "naming the file it could not create"

# The checker itself rejects what a collector would.
printf '# HELP x y\n# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n' >"$T/dup.prom"
fails "the checker rejects a duplicate series" promcheck "$T/dup.prom"
printf 'x 1\n' >"$T/notype.prom"
fails "the checker rejects a sample without TYPE" promcheck "$T/notype.prom"
printf '# HELP x y\n# TYPE x gauge\nx 1' >"$T/nonl.prom"
fails "the checker rejects a missing trailing newline" promcheck "$T/nonl.prom"
printf '# HELP x y\n# TYPE x gauge\nx{a="1} one\n' >"$T/bad.prom"
fails "the checker rejects a bad label and value" promcheck "$T/bad.prom"

# ---------------------------------------------------------------- a repository that will not open

printf '\n[repo:broken]\nplugin = local\npath = %s\n' "$T/no-such-repo" >>"$PGKEEP_CONF"
pgkeep_run metrics --output "$P" 2>"$T/broken.err"
cmp_ok "$?" -ne 0 "metrics exits non-zero when a repository cannot be opened"
like "$(cat "$T/broken.err")" "broken" "the error names the repository"
ok "the file is still written and parses" promcheck "$P"
is "$(metric "$P" 'pgkeep_repository_up{repository="broken"}')" "0" "pgkeep_repository_up is 0 for it"
is "$(metric "$P" 'pgkeep_repository_up{repository="test"}')" "1" "the good repository is still up"
is "$(metric "$P" 'pgkeep_backup_count{repository="test",type="base"}')" "1" \
	"and its metrics are still written"
info_all=$(pgkeep_run info --all-repos --json 2>/dev/null)
is "$(printf '%s' "$info_all" | python3 -c 'import json, sys
r = [r for r in json.load(sys.stdin)["repositories"] if r["name"] == "test"][0]
print(r["newest_base_age_s"] is not None and r["wal"]["archive_lag_segments"] == 0)')" "True" \
	"info --all-repos --json has the fields per repository"

# ---------------------------------------------------------------- no server

pg_stop
pgkeep_run metrics --output "$P" 2>/dev/null
ok "the parser accepts the metrics with the server down" promcheck "$P"
is "$(metric "$P" 'pgkeep_server_up')" "0" "pgkeep_server_up is 0"
is "$(metric "$P" 'pgkeep_wal_archive_lag_segments{repository="test"}')" "" \
	"no lag is reported without the server"
is "$(metric "$P" 'pgkeep_backup_count{repository="test",type="base"}')" "1" \
	"the repository's metrics are still there"
sed -i '/^\[repo:broken\]/,$d' "$PGKEEP_CONF"
is "$(jget 'j["wal"]["archive_lag_segments"]')" "null" "info --json: archive_lag_segments is null"
if repo_is_local; then
	# Without the server the timeline is the one stored to most recently.
	is "$(jget 'j["wal"]["newest"]')" \
		"$(ls "$TEST_REPO_PATH/wal/00000001" | grep -E '^[0-9A-F]{24}$' | sort | tail -n 1)" \
		"without the server, wal.newest is the live timeline's newest, not the stale one"
	cmp_ok "$(jget 'j["wal"]["newest_age_s"]')" -le 300 "... minutes old at most"
fi
like "$(jget 'j["newest_base_age_s"]')" "^[0-9]+$" "info --json: the backup ages need no server"

done_testing

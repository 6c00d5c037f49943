#!/bin/sh
# Numeric and duration options are checked whole: a number too large for any
# integer, a word where a number belongs, and the ambiguous unit "m" are
# refused naming the option; "1h" is an hour, shown by expire waiting out a
# lock held for a few seconds (read as "1", it gave up after one second).
# No cluster is needed: dumps come from import-dump.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pgkeep_conf
ok "pgkeep init" pgkeep_init

# refused NAME WANT ARGS...: the command fails and says WANT on stderr.
refused() {
	local name=$1 want=$2
	shift 2
	run pgkeep_run "$@"
	cmp_ok "$rc" -ne 0 "$name: refused (exit $rc)"
	like "$err" "$want" "... saying so"
}

big=99999999999999999999
refused "backup --jobs $big" "--jobs: bad value '$big' \\(out of range: 1 to 64\\)" \
	backup --type=base --jobs "$big"
refused "restore --jobs $big" "--jobs: bad value '$big'" \
	restore latest --pgdata "$T/r" --jobs "$big"
refused "check --timeout abc" "--timeout: bad value 'abc'" check --timeout abc
refused "drill --timeout abc" "--timeout: bad value 'abc'" drill --timeout abc
refused "expire --grace 5m" "--grace: bad value '5m' \\('m' is ambiguous: write min for minutes or mon for months\\)" \
	expire --grace 5m
refused "expire --lock-wait 10x" "--lock-wait: bad value '10x'" expire --lock-wait 10x
refused "copy --lock-wait -1" "--lock-wait: bad value '-1'" copy --to test --missing --lock-wait -1
refused "restore --target-time with a one-digit second" "--target-time: bad value '2026-12-07 10:00:5'" \
	restore latest --pgdata "$T/r" --target-time '2026-12-07 10:00:5'
refused "init --kdf-n $big" "--kdf-n: bad value '$big' \\(out of range: 1024 to 1048576\\)" \
	init --kdf-n "$big"
refused "init --kdf-n 1500" "--kdf-n: bad value '1500' \\(a power of two" init --kdf-n 1500
refused "import-dump --time with a zone too far" "--time: bad value" \
	import-dump /dev/null --time '2026-12-07 10:00:05+16'
# The s3 plugin's sizes: a multiple that would wrap past 64 bits into range.
if [ -f "$PGKEEP_TEST_PLUGIN_DIR/s3.so" ]; then
	PGKEEP_TEST_REPO_CONF="plugin = s3\nendpoint = https://127.0.0.1:9\nbucket = b\nregion = us-east-1\naccess_key_id = x\nsecret_access_key = y\nretries = 0\npart_size = 17179869185G" \
		pgkeep_conf "$T/s3.conf"
	run as_pg "$PGKEEP" --config "$T/s3.conf" list
	cmp_ok "$rc" -ne 0 "s3 part_size = 17179869185G: refused"
	like "$err" "part_size must be a size from 5MiB to 5GiB, not '17179869185G'" \
		"... as out of range, not wrapped to 1 GiB"
fi

# The plugins' timeouts take the same durations: "5m" refused as ambiguous,
# "2min" accepted (the open then fails on the unreachable store, not on it).
plugin_conf() { # PLUGIN TIMEOUT
	case $1 in
	s3) printf 'plugin = s3\nendpoint = https://127.0.0.1:9\nbucket = b\nregion = us-east-1\naccess_key_id = x\nsecret_access_key = y\nretries = 0' ;;
	b2) printf 'plugin = b2\napi_url = https://127.0.0.1:9\nkey_id = x\napplication_key = y\nbucket = b\nretry_max = 1' ;;
	sftp) printf 'plugin = sftp\nhost = 127.0.0.1\nport = 9\nuser = nobody\npath = /x\nknown_hosts = /dev/null' ;;
	esac
	printf '\ntimeout = %s' "$2"
}
for p in s3 b2 sftp; do
	[ -f "$PGKEEP_TEST_PLUGIN_DIR/$p.so" ] || continue
	PGKEEP_TEST_REPO_CONF=$(plugin_conf $p 5m) pgkeep_conf "$T/$p.conf"
	run as_pg "$PGKEEP" --config "$T/$p.conf" list
	like "$err" "timeout: bad value '5m' \('m' is ambiguous" "$p: timeout = 5m refused as ambiguous"
	PGKEEP_TEST_REPO_CONF=$(plugin_conf $p 2min) pgkeep_conf "$T/$p.conf"
	run as_pg "$PGKEEP" --config "$T/$p.conf" list
	ok "$p: timeout = 2min accepted" sh -c '! printf "%s\n" "$1" | grep -q "bad value"' sh "$err"
done

run pgkeep_run expire --dry-run --grace 5min
is "$rc" 0 "expire --grace 5min is accepted" || diag "$err"

# A dump to restore slowly: restore holds a shared lock while its reader sleeps.
{ echo "-- PostgreSQL database dump"; head -c 4000000 /dev/urandom | base64; } >"$T/d.sql"
chmod 644 "$T/d.sql"
id=$(pgkeep_run import-dump "$T/d.sql" --db d --progress=none | head -n 1)
like "$id" '-dump' "a dump to hold a lock with"

# hold_lock SECONDS: a restore to a pipe nobody reads for that long.
hold_lock() {
	(pgkeep_run restore "$id" --output - | { sleep "$1"; cat >/dev/null; }) &
	held=$!
	sleep 1
}

hold_lock 4
run pgkeep_run expire --lock-wait 1s
cmp_ok "$rc" -ne 0 "expire --lock-wait 1s gives up while a restore holds the lock"
like "$err" "locked by restore" "... naming the holder"
wait "$held"

hold_lock 4
run pgkeep_run expire --lock-wait 1h
is "$rc" 0 "expire --lock-wait 1h waits the restore out: an hour, not a second" || diag "$err"
wait "$held"

done_testing

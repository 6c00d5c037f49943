# The stores a test's repository can live in besides a local directory, and
# the one way to run an integration test against one of them:
#
#   make check TESTS=tests/integration/pitr.sh PGKEEP_TEST_STORE=s3
#
# PGKEEP_TEST_STORE is local (the default), s3 (s3rver behind the SigV4-
# checking proxy, tests/s3/), sftp (a private sshd, tests/sftp/sshd.sh) or
# b2 (the fake B2, tests/b2/fake_b2.py).  tests/lib/integration.sh sees it
# and hands the test to store_run, which starts the server, points the
# test's repository at it (PGKEEP_TEST_REPO_CONF), runs the test, checks
# what the server saw, and stops it.  The wrappers (wal-s3.sh, pitr-b2.sh,
# ...) are one store_run line each.
#
#   store_run STORE SCRIPT  run SCRIPT (a path, or a name in tests/integration)
#                           against STORE; exits with its status, or 1 when
#                           the server saw something wrong (a bad signature,
#                           temp files left, faults switched on but never hit)
#   store_corrupt_object KEY  flip a byte of stored object KEY in the running
#                           store (repo_corrupt_object calls it)
#
# The servers, also for the plugin suites (tests/plugin/*.sh):
#   s3_start DIR        s3rver + proxy with data in DIR; sets and exports
#                       S3_DIR S3_PORT S3_PROXY_PORT S3_BUCKET S3_ENDPOINT
#   s3_stop             stop both (by pid file)
#   s3_restart_server   start s3rver again on the same port and data
#   s3_kill_server      kill -9 s3rver (the proxy stays and answers 502)
#   s3_repo_conf PREFIX a repository section body for PGKEEP_TEST_REPO_CONF
#   s3_object_file OBJ  s3rver's file holding object OBJ (prefix included)
#   sftp_repo_conf DIR  a repository section body, the repository in
#                       $SFTP_ROOT/DIR (after sshd_setup and sshd_start)
#   b2_fake_start DIR   the fake B2 with its info file in DIR; sets and
#                       exports B2_FAKE_API (its URL)
#   b2_fake_field NAME  a field of the fake's info (key_id, bucket, ...)
#   b2_fake_control JSON  POST JSON to the fake's control endpoint
#   b2_fake_stats       the fake's counters, as JSON
#   b2_fake_stop        stop the fake
#
# Needs top_srcdir and tests/lib/tap.sh; s3rver (npm install -g
# s3rver@3.7.1) and python3-botocore for s3; root for sftp.

S3_BUCKET=${S3_BUCKET:-pgkeep}
B2_FAKE_PID=

# ---------------------------------------------------------------- s3

s3_start() {
	S3_DIR=$1
	mkdir -p "$S3_DIR" || return 1
	S3_PORT=$("$top_srcdir/tests/s3/start-s3rver.sh" "$S3_DIR" "$S3_BUCKET") || return 1
	S3_PROXY_PORT=$("$top_srcdir/tests/s3/start-proxy.sh" "$S3_DIR") || return 1
	S3_ENDPOINT=http://127.0.0.1:$S3_PROXY_PORT
	export S3_DIR S3_PORT S3_PROXY_PORT S3_BUCKET S3_ENDPOINT
}

s3_stop() {
	[ -n "${S3_DIR:-}" ] && "$top_srcdir/tests/s3/stop-s3rver.sh" "$S3_DIR"
	return 0
}

s3_kill_server() {
	local pid
	pid=$(cat "$S3_DIR/s3rver.pid") || return 1
	kill -9 "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$S3_DIR/s3rver.pid"
}

s3_restart_server() {
	"$top_srcdir/tests/s3/start-s3rver.sh" "$S3_DIR" "$S3_BUCKET" "$S3_PORT" >/dev/null
}

s3_repo_conf() {
	printf '%s' "plugin = s3\nendpoint = $S3_ENDPOINT\nregion = us-east-1\nbucket = $S3_BUCKET\nuri_style = path\nprefix = $1\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\nretry_wait_ms = 50\nallow_insecure = yes\n"
}

s3_object_file() {
	printf '%s\n' "$S3_DIR/data/$S3_BUCKET/$1._S3rver_object"
}

s3_store_start() {
	if ! s3_start "$1/s3"; then
		cat "$1/s3/"*.log "$1/s3/"*.err 2>/dev/null | sed 's/^/# /'
		return 1
	fi
	# s3rver's credentials are fixed and public, so they may sit in the config.
	S3_TEST_PREFIX=repo
	PGKEEP_TEST_REPO_CONF=$(s3_repo_conf "$S3_TEST_PREFIX")
	export S3_TEST_PREFIX PGKEEP_TEST_REPO_CONF
}

s3_store_report() {
	diag "proxy: $(wc -l <"$S3_DIR/proxy.log") requests, $(grep -c 'rejected:' \
		"$S3_DIR/proxy.log") rejected by the signature check"
	grep 'rejected:' "$S3_DIR/proxy.log" | head -5 | sed 's/^/# /'
	# A request signed wrongly fails the test even when the script passed.
	if grep -q 'rejected:SignatureDoesNotMatch\|rejected:XAmzContentSHA256Mismatch' \
		"$S3_DIR/proxy.log"; then
		diag "pgkeep sent requests whose signature botocore rejects"
		return 1
	fi
}

s3_store_stop() { s3_stop; }

s3_store_object_file() {
	s3_object_file "${S3_TEST_PREFIX:+$S3_TEST_PREFIX/}$1"
}

# ---------------------------------------------------------------- sftp

sftp_repo_conf() {
	printf '%s' "plugin = sftp\nhost = 127.0.0.1\nport = $SFTP_PORT\nuser = $SFTP_USER\npath = $SFTP_ROOT/$1\nidentity_file = $SFTP_KEY\nknown_hosts = $SFTP_KNOWN_HOSTS\nconnect_timeout = 10\ntimeout = 30\n"
}

sftp_store_start() {
	. "$top_srcdir/tests/sftp/sshd.sh"
	sshd_setup "$1/sshd" && sshd_start || return 1
	SFTP_TEST_REPO=repo
	PGKEEP_TEST_REPO_CONF=$(sftp_repo_conf "$SFTP_TEST_REPO")
	export SFTP_ROOT SFTP_PORT SFTP_USER SFTP_KEY SFTP_KNOWN_HOSTS SFTP_TEST_REPO \
		PGKEEP_TEST_REPO_CONF
}

sftp_store_report() {
	local left
	# What sshd saw, for the log: sessions opened and any refusals.
	diag "sshd: $(grep -c 'Accepted publickey' "$SFTP_DIR/sshd.log") logins, $(grep -c -i \
		'refused\|failed' "$SFTP_DIR/sshd.log") refusals"
	left=$(find "$SFTP_ROOT/$SFTP_TEST_REPO" -name '*.tmp.*' 2>/dev/null | wc -l)
	if [ "$left" -ne 0 ]; then
		diag "FAIL: $left temp file(s) left in the repository"
		return 1
	fi
}

sftp_store_stop() { sshd_cleanup; }

sftp_store_object_file() {
	printf '%s\n' "$SFTP_ROOT/$SFTP_TEST_REPO/$1"
}

# ---------------------------------------------------------------- b2

b2_fake_info_ready() { [ -s "$B2_FAKE_INFO" ]; }

b2_fake_start() {
	B2_FAKE_INFO=$1/fake.json
	/usr/bin/python3 "$top_srcdir/tests/b2/fake_b2.py" --info-file "$B2_FAKE_INFO" \
		>"$1/fake.out" 2>"$1/fake.err" &
	B2_FAKE_PID=$!
	if ! wait_until 120 b2_fake_info_ready; then
		diag "the fake B2 did not start:"
		diag_file "$1/fake.err"
		return 1
	fi
	B2_FAKE_API=$(b2_fake_field api_url)
	export B2_FAKE_API
}

b2_fake_field() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$B2_FAKE_INFO" "$1"
}

b2_fake_control() {
	/usr/bin/python3 - "$B2_FAKE_API" "$1" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1] + '/__control', method='POST',
                             data=sys.argv[2].encode())
try:
    urllib.request.urlopen(req).read()
except urllib.error.HTTPError:
    sys.exit(1)
PY
}

b2_fake_stats() {
	/usr/bin/python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/__stats").read().decode())' "$B2_FAKE_API"
}

b2_fake_stop() {
	[ -n "$B2_FAKE_PID" ] || return 0
	kill "$B2_FAKE_PID" 2>/dev/null
	wait "$B2_FAKE_PID" 2>/dev/null
	B2_FAKE_PID=
}

# B2_FAKE_CONTROL, when set, is JSON for the fake's control endpoint sent
# before the test runs: faults that then land in its backups and restores.
b2_store_start() {
	b2_fake_start "$1" || return 1
	B2_FAKE_PREFIX=repo/
	# The fake's key is a throwaway, so it may sit in the config itself.
	PGKEEP_TEST_REPO_CONF="plugin = b2\nkey_id = $(b2_fake_field key_id)\napplication_key = $(b2_fake_field application_key)\nbucket = $(b2_fake_field bucket)\napi_url = $B2_FAKE_API\nprefix = repo\nretry_base_ms = 100\nallow_insecure = yes"
	export B2_FAKE_PREFIX PGKEEP_TEST_REPO_CONF
	if [ -n "${B2_FAKE_CONTROL:-}" ]; then
		b2_fake_control "$B2_FAKE_CONTROL" || { diag "cannot set the fake's switches"; return 1; }
	fi
}

b2_store_report() {
	local stats
	stats=$(b2_fake_stats) || return 1
	diag "fake B2: $stats"
	[ -n "${B2_FAKE_CONTROL:-}" ] || return 0
	# With faults switched on they must really have happened, or the run
	# proved nothing about surviving them.
	printf '%s' "$stats" | /usr/bin/python3 -c 'import json, sys
st = json.load(sys.stdin)
missing = [k for k in ("expiries", "expired_rejected", "injected_503", "injected_429") if not st.get(k)]
if missing:
    print("# FAIL: the fake saw none of: " + ", ".join(missing))
    sys.exit(1)'
}

b2_store_stop() { b2_fake_stop; }

# ---------------------------------------------------------------- any store

store_corrupt_object() {
	case ${PGKEEP_TEST_STORE:-local} in
	s3) flip_middle_byte "$(s3_store_object_file "$1")" ;;
	sftp) flip_middle_byte "$(sftp_store_object_file "$1")" ;;
	b2) b2_fake_control "{\"corrupt\": \"$B2_FAKE_PREFIX$1\"}" ;;
	*) return 1 ;;
	esac
}

store_run() {
	local store=$1 script=$2 rc
	case $script in
	*/*) ;;
	*) script=$top_srcdir/tests/integration/$script ;;
	esac
	case $store in
	local) exec sh "$script" ;;
	s3 | sftp | b2) ;;
	*) bail_out "PGKEEP_TEST_STORE=$store: want local, s3, sftp or b2" ;;
	esac
	require_root
	STORE_DIR=$(mktemp -d /tmp/pgkeep-store.XXXXXX) || bail_out "cannot create a directory"
	chmod 0755 "$STORE_DIR"
	trap '"${PGKEEP_TEST_STORE}_store_stop"; rm -rf "$STORE_DIR"' EXIT
	trap 'exit 1' INT TERM HUP
	PGKEEP_TEST_STORE=$store
	export PGKEEP_TEST_STORE
	"${store}_store_start" "$STORE_DIR" || bail_out "cannot start the $store store"
	# The test sees the store running and does not come here again.
	PGKEEP_TEST_STORE_UP=$store
	export PGKEEP_TEST_STORE_UP
	sh "$script"
	rc=$?
	"${store}_store_report" || rc=1
	exit $rc
}

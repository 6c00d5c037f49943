# Shell functions for tests against s3rver behind the SigV4-checking proxy
# (tests/s3/).  Sourced by tests/plugin/s3.sh and tests/integration/wal-s3.sh,
# and, through PGKEEP_TEST_HOOKS, by tests/integration/lib.sh, where it
# replaces repo_corrupt_object with one that damages the object in s3rver's
# data directory.
#
#   s3_start DIR        s3rver + proxy with data in DIR; sets and exports
#                       S3_DIR S3_PORT S3_PROXY_PORT S3_BUCKET S3_ENDPOINT
#   s3_stop             stop both (by pid file)
#   s3_restart_server   start s3rver again on the same port and data
#   s3_kill_server      kill -9 s3rver (the proxy stays and answers 502)
#   s3_repo_conf PREFIX a repository section body for PGKEEP_TEST_REPO_CONF
#   s3_object_file OBJ  s3rver's file holding object OBJ (prefix included)
#   s3_corrupt_file F   XOR the middle byte of file F with 1
#
# Needs top_srcdir, s3rver (npm install -g s3rver@3.7.1) and /usr/bin/python3
# with python3-botocore.

S3_BUCKET=${S3_BUCKET:-pgkeep}

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

s3_corrupt_file() {
	[ -f "$1" ] || return 1
	/usr/bin/python3 - "$1" <<'EOF'
import os, sys
path = sys.argv[1]
off = os.path.getsize(path) // 2
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 1]))
EOF
}

# The hook lib.sh calls; S3_TEST_PREFIX is the repository's prefix.
repo_corrupt_object() {
	s3_corrupt_file "$(s3_object_file "${S3_TEST_PREFIX:+$S3_TEST_PREFIX/}$1")"
}

# Run the store-agnostic integration test SCRIPT (e.g. wal.sh) with its
# repository on s3rver behind the signature check; exits with its status,
# or 1 when any request pgkeep sent was signed wrongly.
s3_run_integration() {
	local script=$1 rc
	S3T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-s3it.XXXXXX")
	trap 's3_stop; rm -rf "$S3T"' EXIT
	trap 'exit 1' INT TERM
	if ! s3_start "$S3T/s3"; then
		echo "Bail out! cannot start s3rver and the signature-checking proxy"
		cat "$S3T/s3/"*.log "$S3T/s3/"*.err 2>/dev/null | sed 's/^/# /'
		exit 1
	fi
	# s3rver's credentials are fixed and public, so they may sit in the config.
	S3_TEST_PREFIX=repo
	PGKEEP_TEST_REPO_CONF=$(s3_repo_conf "$S3_TEST_PREFIX")
	PGKEEP_TEST_HOOKS=$top_srcdir/tests/integration/s3lib.sh
	export S3_TEST_PREFIX PGKEEP_TEST_REPO_CONF PGKEEP_TEST_HOOKS

	sh "$top_srcdir/tests/integration/$script"
	rc=$?
	echo "# proxy: $(wc -l <"$S3_DIR/proxy.log") requests," \
		"$(grep -c 'rejected:' "$S3_DIR/proxy.log") rejected by the signature check"
	grep 'rejected:' "$S3_DIR/proxy.log" | head -5 | sed 's/^/# /'
	# A request signed wrongly fails the test even when the script passed.
	if grep -q 'rejected:SignatureDoesNotMatch\|rejected:XAmzContentSHA256Mismatch' \
		"$S3_DIR/proxy.log"; then
		echo "# pgkeep sent requests whose signature botocore rejects"
		rc=1
	fi
	exit $rc
}

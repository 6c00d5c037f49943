#!/bin/bash
# The s3 plugin against s3rver behind a proxy that checks every request's
# SigV4 signature with botocore (tests/s3/sigcheck-proxy.py): the plugin
# contract suite, then behaviour and faults — multipart round trips, list
# pagination, if-absent, retries of 503s (by the plugin alone: at most five
# requests through pgkeep's own store wrappers), a wrong secret (refused at
# once, no retries), plain HTTP refused without allow_insecure and warned
# about with it, s3rver killed mid-upload (non-zero, nothing visible), the
# client killed mid-upload, and a stalled server (timeout within the bound).
# Prints TAP.

set -u
: "${top_srcdir:?}" "${top_builddir:?}" "${PGKEEP_TEST_PLUGIN_DIR:?}"

. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"

SO=$PGKEEP_TEST_PLUGIN_DIR/s3.so
DRIVE=$top_builddir/tests/s3/s3drive
CONTRACT=$top_builddir/tests/plugin/contract
STOREOP=$top_builddir/tests/plugin/storeop

T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-s3.XXXXXX")
STALL_PID=
cleanup() {
	s3_stop
	[ -n "$STALL_PID" ] && kill "$STALL_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

not_in() { ! grep -q -- "$1" "$2"; }
all() { local c; for c in "$@"; do eval "$c" || return 1; done; }
now_ms() { date +%s%3N; }

if ! s3_start "$T/s3"; then
	echo "Bail out! cannot start s3rver and the signature-checking proxy"
	cat "$T/s3/"*.log "$T/s3/"*.err 2>/dev/null | sed 's/^/# /'
	exit 1
fi

OPTS=(endpoint="$S3_ENDPOINT" bucket="$S3_BUCKET" uri_style=path region=us-east-1
      access_key_id=S3RVER secret_access_key=S3RVER retry_wait_ms=50 allow_insecure=yes)
drive() { "$DRIVE" "$SO" "$@" "${OPTS[@]}"; }
# requests the proxy saw whose line matches $1
proxy_count() { local c; c=$(grep -c -- "$1" "$S3_DIR/proxy.log" 2>/dev/null); echo "${c:-0}"; }

# --- the contract suite ---------------------------------------------------

if [ -x "$CONTRACT" ]; then
	if "$CONTRACT" s3 "${OPTS[@]}" prefix=contract part_size=5MiB \
		>"$T/contract.out" 2>&1; then
		pass "contract suite passes against s3rver through the signature check"
	else
		fail "contract suite passes against s3rver through the signature check"
		diag_file "$T/contract.out"
	fi
else
	fail "contract suite binary $CONTRACT is built"
fi
ok "no request of the contract suite failed the signature check" \
	[ "$(proxy_count 'rejected:')" -eq 0 ]

# --- round trips ------------------------------------------------------------

head -c 12582917 /dev/urandom >"$T/big"	# 12 MiB + 5: three parts of 5 MiB
printf 'hello, s3' >"$T/small"
ok "small object: single PUT" drive put rt/small "$T/small" prefix=p1
drive get rt/small prefix=p1 >"$T/small.back" 2>"$T/err"
ok "small object reads back identical" cmp -s "$T/small" "$T/small.back"
before=$(proxy_count 'partNumber=')
ok "12 MiB object: multipart upload in 5 MiB parts" \
	drive put rt/big "$T/big" prefix=p1 part_size=5MiB upload_threads=3
ok "three parts were uploaded" [ $(( $(proxy_count 'partNumber=') - before )) -eq 3 ]
drive get rt/big prefix=p1 >"$T/big.back" 2>"$T/err"
ok "multipart object reads back identical" cmp -s "$T/big" "$T/big.back"
ok "stat reports the multipart object's size" \
	[ "$(drive stat rt/big prefix=p1 | cut -d' ' -f1)" = 12582917 ]
drive get rt/big 5242870 20 prefix=p1 >"$T/range" 2>"$T/err"
ok "ranged get across a part boundary" \
	cmp -s "$T/range" <(tail -c +5242871 "$T/big" | head -c 20)
ok "object stored under the prefix" [ -f "$(s3_object_file p1/rt/big)" ]
drive get rt/missing prefix=p1 >/dev/null 2>"$T/err"
ok "get of a missing key: not found (exit 2)" [ $? -eq 2 ]
"$DRIVE" "$SO" stat rt/big "${OPTS[@]}" bucket=no-such-bucket >/dev/null 2>"$T/err"
ok "stat in a missing bucket is not reported as a missing key" [ $? -eq 1 ]
"$DRIVE" "$SO" get rt/big "${OPTS[@]}" bucket=no-such-bucket >/dev/null 2>"$T/err"
ok "get from a missing bucket is not reported as a missing key" [ $? -eq 1 ]

# --- list pagination --------------------------------------------------------

for i in $(seq -w 1 23); do printf '%s' "$i" >"$T/o$i"; done
ok_all=0
for i in $(seq -w 1 23); do drive put "ls/o$i" "$T/o$i" prefix=p1 2>/dev/null || ok_all=1; done
ok "23 small objects stored" [ $ok_all -eq 0 ]
before=$(proxy_count 'continuation-token=')
drive list ls/ prefix=p1 list_max_keys=5 >"$T/list" 2>"$T/err"
ok "list in pages of 5 returns all 23 keys" [ "$(wc -l <"$T/list")" -eq 23 ]
ok "list followed continuation tokens (4 more pages)" \
	[ $(( $(proxy_count 'continuation-token=') - before )) -eq 4 ]
ok "listed keys are relative to the prefix" grep -qx 'ls/o07 2' "$T/list"
ok "delete" drive rm ls/o07 prefix=p1
ok "delete of a missing key succeeds" drive rm ls/o07 prefix=p1
ok "deleted key is gone from the listing" [ "$(drive list ls/ prefix=p1 | wc -l)" -eq 22 ]

# --- if absent (HEAD first: s3rver ignores If-None-Match) -------------------

drive putnew rt/small "$T/small" prefix=p1 2>"$T/err"
ok "putnew on an existing key: exists (exit 3)" [ $? -eq 3 ]
ok "putnew on a new key succeeds" drive putnew rt/new "$T/small" prefix=p1

# --- retries ----------------------------------------------------------------

echo "503 2" >"$S3_DIR/proxy.faults"
before=$(proxy_count 'GET /pgkeep/p1/rt/small ')
drive get rt/small prefix=p1 >"$T/small.back" 2>"$T/err"
rc=$?
ok "get succeeds after two 503 SlowDown replies" all '[ $rc -eq 0 ]' 'cmp -s "$T/small" "$T/small.back"'
ok "it took three requests" [ $(( $(proxy_count 'GET /pgkeep/p1/rt/small ') - before )) -eq 3 ]
ok "each retry was logged" [ "$(grep -c 'retry' "$T/err")" -eq 2 ]
echo "cut 1" >"$S3_DIR/proxy.faults"
drive get rt/big prefix=p1 >"$T/big.back" 2>"$T/err"
rc=$?
ok "get cut off halfway resumes and completes" all '[ $rc -eq 0 ]' 'cmp -s "$T/big" "$T/big.back"'
ok "... after one retry" [ "$(grep -c 'retry' "$T/err")" -eq 1 ]
ok "... asking only for the rest (a Range request)" \
	grep -q "GET /pgkeep/p1/rt/big 206 forwarded" "$S3_DIR/proxy.log"
echo "503 100" >"$S3_DIR/proxy.faults"
drive stat rt/small prefix=p1 retries=2 >/dev/null 2>"$T/err"
rc=$?
echo "0 0" >"$S3_DIR/proxy.faults"
ok "a store that keeps failing: error after retries=2" all '[ $rc -ne 0 ]' '[ $rc -ne 2 ]'
ok "... after exactly three requests" [ "$(grep -c 'retry' "$T/err")" -eq 2 ]

# Through pgkeep's own store wrappers (as every command calls a plugin), a
# store that always answers 503 gets the plugin's five attempts and no more:
# the wrappers do not retry what the plugin gave up on.
echo "503 1000" >"$S3_DIR/proxy.faults"
before=$(proxy_count 'HEAD /pgkeep/p1/rt/small ')
"$STOREOP" s3 "${OPTS[@]}" prefix=p1 -- stat rt/small >/dev/null 2>"$T/err"
rc=$?
echo "0 0" >"$S3_DIR/proxy.faults"
ok "store wrapper over a store that always fails with 503: ERETRY (exit 6, got $rc)" [ $rc -eq 6 ]
attempts=$(( $(proxy_count 'HEAD /pgkeep/p1/rt/small ') - before ))
ok "... after exactly 5 requests in all ($attempts)" [ "$attempts" -eq 5 ]
ok "... the last failure reported with context" \
	grep -q "storeop: repository test: stat rt/small: s3: .*HTTP 503" "$T/err"

# --- transport security -------------------------------------------------------

before=$(wc -l <"$S3_DIR/proxy.log")
"$STOREOP" s3 "${OPTS[@]}" allow_insecure=no prefix=p1 -- stat rt/small >/dev/null 2>"$T/err"
rc=$?
ok "an http:// endpoint without allow_insecure is refused (exit $rc)" all '[ $rc -ne 0 ]' '[ $rc -ne 2 ]'
ok "... saying plain HTTP and how to accept it" \
	all 'grep -q "endpoint $S3_ENDPOINT is plain HTTP" "$T/err"' 'grep -q "allow_insecure = yes" "$T/err"'
ok "... before any request reached the store" [ "$(wc -l <"$S3_DIR/proxy.log")" -eq "$before" ]
diag "$(cat "$T/err")"
"$STOREOP" s3 "${OPTS[@]}" tls_verify=off prefix=p1 -- stat rt/small >/dev/null 2>"$T/err"
rc=$?
ok "with allow_insecure = yes it opens and works" [ $rc -eq 0 ]
ok "... with one warning line through pgkeep's log, naming endpoint and bucket" \
	[ "$(grep -c "^pgkeep: warning: s3: endpoint $S3_ENDPOINT (bucket '$S3_BUCKET') is plain HTTP" "$T/err")" -eq 1 ]
ok "... and nothing else on stderr" [ "$(wc -l <"$T/err")" -eq 1 ]
diag "$(cat "$T/err")"
"$STOREOP" s3 "${OPTS[@]}" prefix=p1 -- stat rt/small >/dev/null 2>"$T/err2"
ok "the warning comes on every open" grep -q "is plain HTTP" "$T/err2"

# --- authentication ---------------------------------------------------------

before=$(wc -l <"$S3_DIR/proxy.log")
t0=$(now_ms)
"$DRIVE" "$SO" get rt/small "${OPTS[@]}" secret_access_key=WRONG prefix=p1 \
	>/dev/null 2>"$T/err"
rc=$?
t1=$(now_ms)
ok "wrong secret: authentication error (exit 4)" [ $rc -eq 4 ]
ok "wrong secret: one request, no retries" [ $(( $(wc -l <"$S3_DIR/proxy.log") - before )) -eq 1 ]
diag "wrong secret: refused in $((t1 - t0)) ms (the request count above says it was not retried)"
ok "message names SignatureDoesNotMatch, bucket and key" \
	all 'grep -q SignatureDoesNotMatch "$T/err"' 'grep -q "bucket .pgkeep." "$T/err"' \
	'grep -q p1/rt/small "$T/err"'
ok "message does not contain the secret" not_in WRONG "$T/err"
diag "$(cat "$T/err")"
"$DRIVE" "$SO" stat rt/small "${OPTS[@]}" access_key_id=NOBODY prefix=p1 >/dev/null 2>"$T/err"
ok "unknown access key: authentication error (exit 4)" [ $? -eq 4 ]
"$DRIVE" "$SO" stat rt/small "${OPTS[@]}" colour=blue >/dev/null 2>"$T/err"
ok "unknown option refused, by name" grep -q "unknown option 'colour'" "$T/err"

# --- s3rver killed mid-upload -----------------------------------------------

mkfifo "$T/fifo"
drive put crash/big "$T/fifo" prefix=p1 part_size=5MiB upload_threads=2 retries=1 \
	>/dev/null 2>"$T/crash.err" &
pid=$!
exec 3>"$T/fifo"
head -c 12582912 /dev/urandom >&3
i=0
while [ "$(proxy_count 'PUT /pgkeep/p1/crash/big?partNumber=2&.* 200 ')" -lt 1 ] && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
s3_kill_server
head -c 6291456 /dev/urandom >&3 2>/dev/null
exec 3>&-
wait $pid
rc=$?
ok "upload with s3rver killed mid-way exits non-zero ($rc)" [ $rc -ne 0 ]
grep -q 'crash/big' "$T/crash.err" || diag_file "$T/crash.err"
ok "its error names the object" grep -q "p1/crash/big" "$T/crash.err"
s3_restart_server
drive stat crash/big prefix=p1 >/dev/null 2>&1
ok "after restart the object is not visible" [ $? -eq 2 ]
ok "nor listed" [ -z "$(drive list crash/ prefix=p1)" ]

# --- client killed mid-upload -----------------------------------------------

rm -f "$T/fifo"
mkfifo "$T/fifo"
# Not through drive(): $! must be s3drive itself, not a subshell whose
# child would survive the kill and finish the upload.
"$DRIVE" "$SO" put crash/client "$T/fifo" prefix=p1 part_size=5MiB "${OPTS[@]}" >/dev/null 2>&1 &
pid=$!
exec 3>"$T/fifo"
head -c 12582912 /dev/urandom >&3
i=0
while [ "$(proxy_count 'PUT /pgkeep/p1/crash/client?partNumber=2&.* 200 ')" -lt 1 ] && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -9 $pid
wait $pid 2>/dev/null
exec 3>&-
drive stat crash/client prefix=p1 >/dev/null 2>&1
ok "client killed mid-upload: the object is not visible" [ $? -eq 2 ]

# --- a stalled server -------------------------------------------------------

/usr/bin/python3 "$top_srcdir/tests/s3/stall-server.py" "$T/stall.port" &
STALL_PID=$!
i=0
while [ ! -s "$T/stall.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
t0=$(now_ms)
"$DRIVE" "$SO" stat rt/small "${OPTS[@]}" endpoint="http://127.0.0.1:$(cat "$T/stall.port")" \
	timeout=2 connect_timeout=2 retries=1 >/dev/null 2>"$T/err"
rc=$?
t1=$(now_ms)
# The configured timeouts elapse, twice (retries = 1): at least 2 * 2 s less
# curl's granularity.  The upper bound only tells them from a hang or the
# default timeouts; a loaded machine adds scheduling delays, never seconds
# of its own to a timer, but is given a wide margin anyway.
ok "stalled server: error, not success or not-found ($rc)" all '[ $rc -ne 0 ]' '[ $rc -ne 2 ]'
ok "stalled server: gave up after its timeouts ($((t1 - t0)) ms, bounds 3500 and 20000)" \
	all '[ $((t1 - t0)) -ge 3500 ]' '[ $((t1 - t0)) -le 20000 ]'
ok "stalled server: message says timed out" grep -q "timed out" "$T/err"
diag "$(tail -1 "$T/err")"

# --- TLS: a second s3rver serving HTTPS with a self-signed certificate ----

TLS_DIR=$T/tls
mkdir -p "$TLS_DIR"
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TLS_DIR/key.pem" \
	-out "$TLS_DIR/cert.pem" >/dev/null 2>&1 &&
	TLS_PORT=$(S3RVER_CERT=$TLS_DIR/cert.pem S3RVER_KEY=$TLS_DIR/key.pem \
		"$top_srcdir/tests/s3/start-s3rver.sh" "$TLS_DIR" pgkeep); then
	TLS=(endpoint="https://127.0.0.1:$TLS_PORT" bucket=pgkeep uri_style=path
	     access_key_id=S3RVER secret_access_key=S3RVER retry_wait_ms=50)
	ok "https with ca_file: put" \
		"$DRIVE" "$SO" put tls/small "$T/small" "${TLS[@]}" ca_file="$TLS_DIR/cert.pem"
	"$DRIVE" "$SO" get tls/small "${TLS[@]}" ca_file="$TLS_DIR/cert.pem" >"$T/small.back" 2>&1
	ok "https with ca_file: get back identical" cmp -s "$T/small" "$T/small.back"
	t0=$(now_ms)
	"$DRIVE" "$SO" stat tls/small "${TLS[@]}" >/dev/null 2>"$T/err"
	rc=$?
	t1=$(now_ms)
	ok "https, unknown CA, tls_verify on: refused ($rc)" all '[ $rc -ne 0 ]' '[ $rc -ne 2 ]'
	ok "... at once, not retried ($((t1 - t0)) ms)" not_in retry "$T/err"
	ok "... saying why" grep -qi 'certificate' "$T/err"
	diag "$(tail -1 "$T/err")"
	"$DRIVE" "$SO" stat tls/small "${TLS[@]}" tls_verify=off >"$T/out" 2>&1
	ok "https, tls_verify off: accepted" [ $? -eq 0 ]
	"$STOREOP" s3 "${TLS[@]}" tls_verify=off -- stat tls/small >/dev/null 2>"$T/err"
	rc=$?
	ok "https, tls_verify off, through pgkeep: accepted" [ $rc -eq 0 ]
	ok "... with one warning line naming the endpoint" \
		[ "$(grep -c "^pgkeep: warning: s3: endpoint https://127.0.0.1:$TLS_PORT (bucket 'pgkeep') with tls_verify = off" "$T/err")" -eq 1 ]
	diag "$(cat "$T/err")"
	"$STOREOP" s3 "${TLS[@]}" ca_file="$TLS_DIR/cert.pem" -- stat tls/small >/dev/null 2>"$T/err"
	ok "https with the certificate checked: no warning" \
		all '[ $? -eq 0 ]' '[ ! -s "$T/err" ]'
	"$top_srcdir/tests/s3/stop-s3rver.sh" "$TLS_DIR"
else
	fail "start s3rver with TLS"
fi

ok "no request failed the signature check" [ "$(proxy_count 'rejected:SignatureDoesNotMatch')" -eq 1 ]

done_testing

#!/bin/sh
# The b2 plugin against the fake B2 server (tests/b2/fake_b2.py, Backblaze's
# RawSimulator over HTTP): the plugin contract suite, then faults injected
# through the fake's control endpoint while real traffic runs, checked both
# by the outcome and by the fake's counters (so a retry that never happened
# cannot pass); then who retries (the plugin, five attempts, and pgkeep's
# store wrappers none on top) and plain HTTP, refused before the key is sent
# unless allow_insecure = yes, which is warned about.  Prints TAP.

set -u

: "${top_srcdir:?}" "${top_builddir:?}" "${PGKEEP_TEST_PLUGIN_DIR:?}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
PY=/usr/bin/python3
SO=$PGKEEP_TEST_PLUGIN_DIR/b2.so
DRIVE=$top_builddir/tests/b2/b2_drive
CONTRACT=$top_builddir/tests/plugin/contract
STOREOP=$top_builddir/tests/plugin/storeop

T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-b2.XXXXXX")
cleanup() {
	b2_fake_stop
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the fake -----------------------------------------------------------

b2_fake_start "$T" || bail_out "the fake B2 did not start"
field() { b2_fake_field "$1"; }
API=$(field api_url)
KEY_ID=$(field key_id)
BUCKET=$(field bucket)
field application_key >"$T/appkey"

# POST a JSON body to the control endpoint; GET a counter from /__stats.
ctl() { b2_fake_control "$1"; }
stat_of() {
	"$PY" - "$API" "$1" <<'EOF'
import sys, json, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + '/__stats')).get(sys.argv[2], 0))
EOF
}
# every stored version (name action) whose name starts with $1
versions() {
	"$PY" - "$API" "$1" <<'EOF'
import sys, json, urllib.request
for f in json.load(urllib.request.urlopen(sys.argv[1] + '/__files')):
    if f['name'].startswith(sys.argv[2]):
        print(f['name'], f['action'])
EOF
}

# $1: prefix; more key=value lines may follow.  Small parts so that large
# files are exercised; a short backoff base so that faults cost little time.
nopt=0
optfile() {
	nopt=$((nopt + 1))
	f=$T/opts.$nopt
	{
		echo "key_id=$KEY_ID"
		echo "application_key_file=$T/appkey"
		echo "bucket=$BUCKET"
		echo "api_url=$API"
		echo "prefix=$1"
		echo "part_size=1000"
		echo "retry_base_ms=100"
		echo "allow_insecure=yes"
		shift
		for kv in "$@"; do echo "$kv"; done
	} >"$f"
	echo "$f"
}
drive() { "$DRIVE" "$SO" "$@"; }
# the traffic commands report on stdout; TAP owns it
drive_q() { "$DRIVE" "$SO" "$@" >"$T/drive.out"; }

# --- the contract suite -------------------------------------------------
# 1 MiB parts: its 24 MiB round trip becomes a 24-part large file.

if [ -x "$CONTRACT" ]; then
	if "$CONTRACT" b2 "key_id=$KEY_ID" "application_key_file=$T/appkey" \
		"bucket=$BUCKET" "api_url=$API" prefix=contract \
		part_size=1048576 retry_base_ms=100 allow_insecure=yes >"$T/contract.out" 2>&1; then
		pass "contract suite passes against the fake B2"
	else
		fail "contract suite passes against the fake B2"
		diag_file "$T/contract.out"
	fi
else
	fail "contract suite binary $CONTRACT is built"
fi

# --- plain behaviour ----------------------------------------------------

O=$(optfile plain)
head -c 2500 /dev/urandom >"$T/big"
printf 'hello' >"$T/small"
ok "put small object" drive "$O" put k/small "$T/small"
ok "put object larger than part_size (large file)" drive "$O" put k/big "$T/big"
drive "$O" get k/big "$T/big.back" >/dev/null 2>&1
ok "large file reads back identical" cmp -s "$T/big" "$T/big.back"
ok "large file is stored finished, as one visible version" \
	test "$(versions plain/k/big)" = "plain/k/big upload"
ok "parts went through b2_upload_part" test "$(stat_of part_uploads)" -ge 3

drive "$O" put k/small "$T/big" >/dev/null 2>&1
ok "a second put adds a version" test "$(versions plain/k/small | wc -l)" -eq 2
ok "remove deletes every version" drive "$O" rm k/small
ok "nothing of it is left, not even a hide marker" test -z "$(versions plain/k/small)"
drive "$O" stat k/small >/dev/null 2>&1
ok "stat after remove reports not found" test $? -eq 2

# B2 decodes '+' as a space: a prefix with both must round-trip exactly.
O2=$(optfile 'odd dir+plus/~x')
ok "put under a prefix with space and plus" drive "$O2" put k "$T/small"
ok "the stored name is exactly the prefix plus key" \
	test "$(versions 'odd dir+plus/')" = "odd dir+plus/~x/k upload"
drive "$O2" get k "$T/odd.back" >/dev/null 2>&1
ok "and it reads back" cmp -s "$T/small" "$T/odd.back"

# --- one upload URL per thread --------------------------------------------

ctl '{"reset_stats": true, "upload_hold_ms": 50}'
O=$(optfile par)
ok "8 threads upload and read back on one handle" drive_q "$O" par 8 300 p/
ok "no upload URL was used by two threads at once" test "$(stat_of upload_busy)" -eq 0
# The fake's side of it, checked directly: two uploads at once on one URL.
ok "the fake rejects concurrent use of one upload URL" \
	"$PY" - "$API" "$KEY_ID" "$T/appkey" <<'EOF'
import sys, json, base64, hashlib, threading, urllib.request, urllib.error
api, kid, key = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip()
def call(url, hdr, body=None):
    try:
        r = urllib.request.urlopen(urllib.request.Request(url, data=body, headers=hdr))
        return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
basic = base64.b64encode(('%s:%s' % (kid, key)).encode()).decode()
_, a = call(api + '/b2api/v2/b2_authorize_account', {'Authorization': 'Basic ' + basic})
tok = {'Authorization': a['authorizationToken']}
_, bl = call(a['apiUrl'] + '/b2api/v2/b2_list_buckets', tok,
             json.dumps({'accountId': a['accountId'], 'bucketName': 'pgkeep-test'}).encode())
_, u = call(a['apiUrl'] + '/b2api/v2/b2_get_upload_url', tok,
            json.dumps({'bucketId': bl['buckets'][0]['bucketId']}).encode())
res = []
def up(i):
    body = b'x' * 10
    res.append(call(u['uploadUrl'], {'Authorization': u['authorizationToken'],
                    'X-Bz-File-Name': 'conc/%d' % i, 'Content-Type': 'b2/x-auto',
                    'X-Bz-Content-Sha1': hashlib.sha1(body).hexdigest()}, body))
ts = [threading.Thread(target=up, args=(i,)) for i in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
codes = sorted((s, b.get('code', '')) for s, b in res)
sys.exit(0 if codes == [(200, ''), (400, 'auth_token_limit')] else 1)
EOF
ctl '{"upload_hold_ms": 0}'
# Serial puts on one handle reuse the pooled URL.
ctl '{"reset_stats": true}'
ok "6 objects uploaded by 1 thread" drive_q "$O" par 1 300 q/
ok "uploads by one thread reuse one upload URL" test "$(stat_of upload_urls)" -eq 1

# --- faults -------------------------------------------------------------

# Token expiry in the middle of a run: every token the fake has issued
# expires at its 12th request from now, while uploads and parts are in flight.
ctl '{"reset_stats": true, "expire_after": 12}'
O=$(optfile exp)
ok "uploads survive a token expiry mid-run" drive_q "$O" par 4 3500 e/
ok "the tokens did expire mid-run" test "$(stat_of expiries)" -eq 1
ok "B2 did answer expired_auth_token" test "$(stat_of expired_rejected)" -ge 1
ok "and the plugin re-authorised" test "$(stat_of authorize)" -ge 2

ctl '{"reset_stats": true, "fail_503": 4}'
O=$(optfile s503)
ok "uploads succeed through a burst of 503" drive_q "$O" par 3 2500 s/
ok "all four 503 were served" test "$(stat_of injected_503)" -eq 4

ctl '{"reset_stats": true, "fail_429": 2, "retry_after": 1}'
O=$(optfile s429)
start=$(date +%s%N)
ok "uploads succeed through 429 with Retry-After" drive_q "$O" par 2 500 r/
end=$(date +%s%N)
ok "both 429 were served" test "$(stat_of injected_429)" -eq 2
# backoff base is 100 ms, so only Retry-After explains a wait of 2 s
ok "Retry-After was honoured (waited $(( (end - start) / 1000000 )) ms)" \
	test $(( (end - start) / 1000000 )) -ge 1900

ctl '{"reset_stats": true, "refuse_upload": 3}'
O=$(optfile refuse)
ok "uploads succeed when upload URLs are refused" drive_q "$O" par 2 2500 u/
ok "three URLs were refused" test "$(stat_of refused_upload)" -eq 3
ok "a refused URL was never used again" test "$(stat_of dead_url_used)" -eq 0
ok "fresh upload URLs were fetched" \
	test $(( $(stat_of upload_urls) + $(stat_of upload_part_urls) )) -ge 5

# More refusals than the five URLs B2 says to try: the large file fails and
# is cancelled rather than left behind.
ctl '{"reset_stats": true, "refuse_upload": 50}'
O=$(optfile cancel)
drive "$O" put k/big "$T/big" >"$T/cancel.out" 2>&1
ok "a put that keeps failing reports failure" test $? -ne 0
ctl '{"refuse_upload": 0}'
ok "its unfinished large file was cancelled" test "$(stat_of cancelled)" -ge 1
ok "nothing of it is left" test -z "$(versions cancel/)"

# A final error: the storage cap.  Fast, and the message says what and where.
ctl '{"reset_stats": true, "cap_exceeded": true}'
O=$(optfile cap retry_base_ms=1000)
start=$(date +%s%N)
drive "$O" put k/capped "$T/small" 2>"$T/cap.err"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
ctl '{"cap_exceeded": false}'
ok "storage cap exceeded fails the put" test $rc -ne 0
# Counted by the fake, not timed: a retry would be a second refused upload.
ok "without retrying (one refused upload, $ms ms)" test "$(stat_of cap_rejected)" -eq 1
ok "the message names the code, bucket and file" \
	grep -q "storage_cap_exceeded" "$T/cap.err"
grep -q "bucket $BUCKET" "$T/cap.err" && grep -q "cap/k/capped" "$T/cap.err"
ok "... bucket $BUCKET and cap/k/capped" test $? -eq 0
diag "$(cat "$T/cap.err")"

# Wrong key: refused at open with EAUTH, without retrying.
O=$(optfile badkey)
sed -i 's/^application_key_file=.*/application_key=wrong/' "$O"
drive "$O" stat x 2>"$T/bad.err"
ok "a wrong application key is refused" test $? -eq 1
ok "with a message naming the key id" grep -q "refused key $KEY_ID" "$T/bad.err"
ok "and not the secret" sh -c '! grep -q wrong "$1"' sh "$T/bad.err"

# --- who retries ------------------------------------------------------------

# storeop goes through pgkeep's loader and store wrappers, as every command
# does.  A stat against a B2 whose listings always fail with 503: the
# plugin's five attempts, and no more.
sop() {
	"$STOREOP" b2 "key_id=$KEY_ID" "application_key_file=$T/appkey" "bucket=$BUCKET" \
		"api_url=$API" prefix=sop retry_base_ms=1 "$@"
}
ctl '{"reset_stats": true, "fail_503": 1000, "fail_503_path": "b2_list_file_names"}'
sop allow_insecure=yes -- stat k >/dev/null 2>"$T/sop.err"
rc=$?
ctl '{"fail_503": 0, "fail_503_path": ""}'
ok "a store that always answers 503: ERETRY through the wrappers (exit 6, got $rc)" test $rc -eq 6
ok "... after exactly 5 requests in all ($(stat_of injected_503))" test "$(stat_of injected_503)" -eq 5
ok "... reported with context" grep -q "repository test: stat k: b2: .*503 service_unavailable" "$T/sop.err"
diag "$(tail -n 1 "$T/sop.err")"

# --- plain HTTP ---------------------------------------------------------------

ctl '{"reset_stats": true}'
sop -- stat k >/dev/null 2>"$T/sop.err"
rc=$?
ok "an http:// api_url without allow_insecure is refused (exit $rc)" test $rc -eq 1
ok "... saying plain HTTP and how to accept it" \
	grep -q "open: b2: api_url $API is plain HTTP.*allow_insecure = yes" "$T/sop.err"
ok "... and the fake saw no request at all, so no key was sent" test "$(stat_of requests)" -eq 0
ok "... nor an authorize" test "$(stat_of authorize)" -eq 0
diag "$(cat "$T/sop.err")"
"$DRIVE" "$SO" "$(optfile insecure allow_insecure=no)" stat k >/dev/null 2>"$T/sop.err"
ok "the plugin alone refuses it too" test $? -ne 0
ok "... before any request" test "$(stat_of requests)" -eq 0
sop allow_insecure=yes -- stat k >/dev/null 2>"$T/sop.err"
rc=$?
ok "with allow_insecure = yes it opens (k is absent: exit 2, got $rc)" test $rc -eq 2
ok "... with one warning line through pgkeep's log, naming api_url and bucket" \
	test "$(grep -c "^pgkeep: warning: b2: api_url $API (bucket $BUCKET) is plain HTTP" "$T/sop.err")" -eq 1
ok "... and no other warning" test "$(grep -c '^pgkeep: warning:' "$T/sop.err")" -eq 1
diag "$(cat "$T/sop.err")"
sop allow_insecure=maybe -- stat k >/dev/null 2>"$T/sop.err"
ok "allow_insecure takes yes or no only" grep -q "allow_insecure must be yes or no" "$T/sop.err"

# --- if-absent ------------------------------------------------------------

O=$(optfile race)
ok "put-if-absent on an existing key says exists" sh -c '
	"$1" "$2" "$3" put k "$4" >/dev/null 2>&1
	"$1" "$2" "$3" put k "$4" ifabsent >/dev/null 2>&1; test $? -eq 3' \
	sh "$DRIVE" "$SO" "$O" "$T/small"
drive "$O" race 6 r/key >"$T/race.out" 2>&1
ok "6 racing put-if-absent: exactly one wins, and its bytes are stored" \
	grep -q "winners 1 errors 0 stored-is-winner yes" "$T/race.out"
diag "$(cat "$T/race.out")"

done_testing

#!/bin/sh
# The WAL integration test (wal.sh) with the repository on the fake B2
# (tests/b2/fake_b2.py): archive_command and restore_command through the b2
# plugin.  The corruption hook flips a byte of a stored file through the
# fake's control endpoint, leaving B2's recorded SHA-1 as it was (bit rot).

set -u

: "${top_srcdir:?}"
PY=/usr/bin/python3

B2T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-walb2.XXXXXX")
FAKE_PID=
cleanup() {
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
	[ -n "$FAKE_PID" ] && wait "$FAKE_PID" 2>/dev/null
	rm -rf "$B2T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$PY" "$top_srcdir/tests/b2/fake_b2.py" --info-file "$B2T/fake.json" \
	>"$B2T/fake.out" 2>"$B2T/fake.err" &
FAKE_PID=$!
i=0
while [ ! -s "$B2T/fake.json" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -s "$B2T/fake.json" ]; then
	echo "Bail out! the fake B2 did not start: $(cat "$B2T/fake.err")"
	exit 1
fi
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$B2T/fake.json" "$1"; }

B2_FAKE_API=$(field api_url)
B2_FAKE_PREFIX=walrepo/
export B2_FAKE_API B2_FAKE_PREFIX

# The config is read by pgkeep running as postgres; the fake's key is a
# throwaway, so it may sit in the config itself.
PGKEEP_TEST_REPO_CONF="plugin = b2\nkey_id = $(field key_id)\napplication_key = $(field application_key)\nbucket = $(field bucket)\napi_url = $B2_FAKE_API\nprefix = walrepo\nretry_base_ms = 100\nallow_insecure = yes"
export PGKEEP_TEST_REPO_CONF

cat >"$B2T/hooks.sh" <<'EOF'
# wal.sh hooks for a repository on the fake B2.
repo_corrupt_object() {
	/usr/bin/python3 - "$B2_FAKE_API" "$B2_FAKE_PREFIX$1" <<'PYEOF'
import json, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1] + '/__control', method='POST',
                             data=json.dumps({'corrupt': sys.argv[2]}).encode())
try:
    urllib.request.urlopen(req).read()
except urllib.error.HTTPError:
    sys.exit(1)
PYEOF
}
EOF
PGKEEP_TEST_HOOKS=$B2T/hooks.sh
export PGKEEP_TEST_HOOKS

# pitr-b2.sh runs the point-in-time test through this same set-up, with
# B2_FAKE_CONTROL (JSON for the fake's /__control) set first: faults that
# then land in the middle of backups and restores.
if [ -n "${B2_FAKE_CONTROL:-}" ]; then
	"$PY" - "$B2_FAKE_API" "$B2_FAKE_CONTROL" <<'PYEOF' || { echo "Bail out! cannot set the fake's switches"; exit 1; }
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/__control', method='POST',
                                              data=sys.argv[2].encode())).read()
PYEOF
fi
sh "$top_srcdir/tests/integration/${B2_INNER_TEST:-wal.sh}"
rc=$?
# What the store saw, for the log.
"$PY" - "$B2_FAKE_API" <<'EOF' | sed 's/^/# fake B2: /'
import json, sys, urllib.request
print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1] + '/__stats')), sort_keys=True))
EOF
# With faults switched on they must really have happened, or the run proved
# nothing about surviving them.
if [ -n "${B2_FAKE_CONTROL:-}" ]; then
	"$PY" - "$B2_FAKE_API" <<'PYEOF' || rc=1
import json, sys, urllib.request
st = json.load(urllib.request.urlopen(sys.argv[1] + '/__stats'))
missing = [k for k in ('expiries', 'expired_rejected', 'injected_503', 'injected_429') if not st.get(k)]
if missing:
    print('# FAIL: the fake saw none of: ' + ', '.join(missing))
    sys.exit(1)
PYEOF
fi
exit $rc

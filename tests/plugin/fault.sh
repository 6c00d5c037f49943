#!/bin/sh
# The fault plugin (local wrapped with injected failures): without failures
# it passes the contract; with them the chosen call fails with the chosen
# code, a failed put leaves nothing, and the count runs on across processes
# through fail_state.  Who retries shows in the count: the plugin, as every
# plugin does, and never the store wrappers on top.  Prints TAP.

set -u
: "${top_builddir:?run through make check}" "${PGKEEP_TEST_PLUGIN_DIR:?run through make check}"
. "${top_srcdir:?run through make check}/tests/lib/tap.sh"

CONTRACT=$top_builddir/tests/plugin/contract
OP=$top_builddir/tests/plugin/storeop

T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-fault.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

R=$T/repo
S=$T/state
# fop OPTIONS... -- OP ARGS: the fault plugin over $R
fop() { "$OP" fault "path=$R" "$@"; }
temps() { find "$R" -name '*.tmp.*' | wc -l; }

mkdir "$R" "$T/contract"
"$CONTRACT" fault "path=$T/contract" >"$T/contract.out" 2>&1
rc=$?
is "$rc" 0 "with no failure set, the contract suite passes"
[ "$rc" -eq 0 ] && grep -q "plugin fault" "$T/contract.out" || grep -v '^ok' "$T/contract.out" | diag_file /dev/stdin

head -c 70000 /dev/urandom >"$T/data"

# --- a failed put leaves nothing -----------------------------------------

for call in put_begin put_write put_commit; do
	rm -f "$S"
	fop fail_ops=$call fail_at=1 fail_state="$S" -- put k/$call "$T/data" 2>"$T/err"
	is "$?" 1 "a put failing at $call fails"
	is "$(cat "$T/err")" "storeop: repository test: put k/$call: fault: injected failure of $call (call 1)" \
		"with the injected error, in context"
	fop -- stat k/$call >/dev/null 2>&1
	is "$?" 2 "no object is visible after a failed $call"
	is "$(temps)" 0 "and no temp file is left"
done
rm -f "$S"
fop fail_ops=put_commit fail_at=1 fail_state="$S" -- put k/later "$T/data" 2>/dev/null
is "$?" 1 "a put fails at its commit in one process"
ok "the same put goes through in the next, the fault having passed" \
	fop fail_ops=put_commit fail_at=1 fail_state="$S" -- put k/later "$T/data"
ok "and reads back" sh -c '"$1" fault "path=$2" -- get k/later "$3/back" && cmp -s "$3/data" "$3/back"' \
	sh "$OP" "$R" "$T"

# --- the count persists across processes ---------------------------------

rm -f "$S"
got=
for i in 1 2 3 4 5; do
	fop fail_ops=stat fail_at=3 fail_state="$S" -- stat k/later >/dev/null 2>&1
	got="$got$? "
done
is "$got" "0 0 1 0 0 " "fail_at=3 over five processes: only the third fails"
is "$(cat "$S")" 5 "the state file counted five calls"

rm -f "$S"
got=
for i in 1 2 3 4 5 6; do
	fop fail_ops=get fail_at=2 fail_every=2 fail_state="$S" -- get k/later "$T/out.$i" 2>/dev/null
	got="$got$? "
done
is "$got" "0 1 0 1 0 1 " "fail_at=2 fail_every=2: every second call fails"
ok "a failed get writes no destination" test ! -e "$T/out.2"

rm -f "$S"
fop fail_ops=put fail_at=2 fail_state="$S" -- put k/two "$T/data" 2>"$T/err"
ok "fail_ops=put counts begin, write and commit: the write fails" \
	grep -q "injected failure of put_write (call 2)" "$T/err"

rm -f "$S"
fop fail_ops=list fail_at=1 fail_state="$S" -- stat k/later >/dev/null 2>&1
is "$?$(cat "$S" 2>/dev/null || echo none)" "0none" "calls outside fail_ops are not counted"

# --- codes, and what is retried -----------------------------------------------

rm -f "$S"
fop fail_ops=stat fail_at=1 fail_code=nospc fail_state="$S" -- stat k/later 2>/dev/null
is "$? $(cat "$S")" "4 1" "fail_code=nospc gives ENOSPC, not retried"
rm -f "$S"
fop fail_ops=stat fail_every=1 fail_code=auth fail_state="$S" -- stat k/later 2>/dev/null
is "$? $(cat "$S")" "5 1" "fail_code=auth gives EAUTH, not retried"
rm -f "$S"
fop fail_ops=stat fail_at=1 fail_code=retry fail_state="$S" -- stat k/later >/dev/null 2>&1
is "$? $(cat "$S")" "0 2" "one ERETRY is retried and the call succeeds"
rm -f "$S"
fop fail_ops=put_commit fail_every=1 fail_code=retry fail_state="$S" -- put k/never "$T/data" 2>/dev/null
is "$? $(cat "$S")" "6 5" "ERETRY that persists: five tries, then ERETRY"
fop -- stat k/never >/dev/null 2>&1
is "$?" 2 "and none of the five left an object"
is "$(temps)" 0 "or a temp file"
rm -f "$S"
fop fail_ops=stat fail_every=1 fail_code=retry retries=0 fail_state="$S" -- stat k/later 2>"$T/err"
is "$? $(cat "$S")" "6 1" "a plugin that gives up at once (retries=0): one call, the wrappers add none"
rm -f "$S"
fop fail_ops=get fail_every=1 fail_code=retry retries=2 retry_wait_ms=10 fail_state="$S" -- get k/later "$T/out.r" 2>/dev/null
is "$? $(cat "$S")" "6 3" "retries=2: three attempts in all, then ERETRY"

# --- options --------------------------------------------------------------

fop fail_code=sometimes -- stat x 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: open: fault: option fail_code: 'sometimes' is not io, retry, nospc, auth or corrupt" \
	"an unknown fail_code is refused"
fop fail_ops=put,frob -- stat x 2>"$T/err"
ok "an unknown operation in fail_ops is refused by name" grep -q "unknown operation 'frob'" "$T/err"
fop fail_at=x -- stat x 2>"$T/err"
ok "a fail_at that is not a count is refused" grep -q "option fail_at: 'x' is not a count" "$T/err"
"$OP" fault fail_at=1 -- stat x 2>"$T/err"
ok "path is required" grep -q "option 'path' is required" "$T/err"

done_testing

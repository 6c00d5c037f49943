#!/bin/sh
# The example plugin (contrib/example-plugin/): the contract suite every
# plugin passes, the one symbol it exports, and its own option.  Prints TAP.

set -u
: "${top_builddir:?run through make check}"

CONTRACT=$top_builddir/tests/plugin/contract
OP=$top_builddir/tests/plugin/storeop
SO=$top_builddir/contrib/example-plugin/.libs/example.so

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
is() { if [ "$1" = "$2" ]; then pass "$3"; else fail "$3"; echo "#   got '$1', want '$2'"; fi; }

T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-example.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

[ -f "$SO" ] || { echo "Bail out! $SO not built"; exit 1; }

"$CONTRACT" "$SO" >"$T/contract.out" 2>&1
rc=$?
is "$rc" 0 "the contract suite passes ($(grep -c '^ok' "$T/contract.out") checks)"
[ "$rc" -eq 0 ] || grep -v '^ok' "$T/contract.out" | sed 's/^/# /'

is "$(nm -D --defined-only "$SO" | awk '{ print $3 }' | tr '\n' ' ')" "pgkeep_storage_plugin_init " \
	"it exports pgkeep_storage_plugin_init and nothing else"

head -c 100 /dev/zero >"$T/data"
"$OP" "$SO" max_bytes=99 -- put k/obj "$T/data" 2>"$T/err"
is "$? $(cat "$T/err")" "4 storeop: repository test: put k/obj: example: no space left for k/obj (100 bytes)" \
	"max_bytes: a put beyond it is ENOSPC"
"$OP" "$SO" max_bytes=100 -- put k/obj "$T/data"
is "$?" 0 "and one that fits is stored"
"$OP" "$SO" max_bytes=lots -- stat k 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: open: example: option max_bytes: 'lots' is not a count of bytes" \
	"a bad max_bytes is refused at open"
"$OP" "$SO" -- put k/x.tmp.y "$T/data" 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: put k/x.tmp.y: example: invalid key 'k/x.tmp.y'" \
	"a key outside the rule of pgkeep/storage.h is refused"

echo "1..$n"
[ "$failed" -eq 0 ]

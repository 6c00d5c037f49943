#!/bin/sh
# The local plugin: the contract suite in a temporary directory, then what
# only a filesystem shows: modes, temp files and their sweeping, a full disk
# (a 1 MiB tmpfs, hence root), and put-if-absent raced by processes.
# Prints TAP.

set -u
: "${top_builddir:?run through make check}" "${PGKEEP_TEST_PLUGIN_DIR:?run through make check}"
. "${top_srcdir:?run through make check}/tests/lib/tap.sh"
require_root "it mounts a tmpfs for the full-disk checks"

CONTRACT=$top_builddir/tests/plugin/contract
OP=$top_builddir/tests/plugin/storeop

T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-local.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
MNT=
cleanup() {
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

R=$T/repo
op() { "$OP" local "path=$R" -- "$@"; }
temps() { find "$1" -name '*.tmp.*' | wc -l; }

# --- the ABI boundary ---------------------------------------------------

# Every plugin built exports its entry point and nothing else, so that two
# plugins (or a plugin and the agent) can never bind to each other's symbols.
for so in "$PGKEEP_TEST_PLUGIN_DIR"/*.so; do
	is "$(nm -D --defined-only "$so" | awk '{ print $3 }' | tr '\n' ' ')" \
		"pgkeep_storage_plugin_init " "$(basename "$so") exports only pgkeep_storage_plugin_init"
done

# --- the repository's directory ------------------------------------------

# Only `pgkeep init` makes it: for anything else a missing directory is the
# repository missing (not mounted, moved), an error and never "not found".
op stat pgkeep.json 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: open: local: repository directory $R does not exist" \
	"a repository directory that does not exist is refused at open"
ok "and is not created" test ! -e "$R"
"$OP" local "path=$R" create=yes -- stat pgkeep.json 2>"$T/err"
is "$?" 1 "a configured create=yes is refused too"
ok "and creates nothing" test ! -e "$R"
mkdir "$R"

# --- the contract -------------------------------------------------------

"$CONTRACT" local "path=$R" >"$T/contract.out" 2>&1
rc=$?
is "$rc" 0 "the contract suite passes ($(grep -c '^ok' "$T/contract.out") checks)"
[ "$rc" -eq 0 ] || grep -v '^ok' "$T/contract.out" | diag_file /dev/stdin
is "$(find "$R" -type f | wc -l)" 0 "the suite left no file behind, temp files included"

# --- files and modes ----------------------------------------------------

head -c 100000 /dev/urandom >"$T/data"
ok "put a new object" op put k/sub/obj "$T/data"
ok "it is the file path/KEY, byte for byte" cmp -s "$T/data" "$R/k/sub/obj"
is "$(stat -c %a "$R/k/sub/obj")" 600 "objects are created with mode 0600"
is "$(stat -c %a "$R/k/sub") $(stat -c %a "$R/k")" "700 700" "directories are created with mode 0700"
is "$(op stat k/sub/obj)" 100000 "stat gives the size"
op get k/sub/none "$T/out" 2>"$T/err"
is "$? $(cat "$T/err")" "2 storeop: repository test: get k/sub/none: $R/k/sub/none does not exist" \
	"get of a missing key: not found, naming the file"

printf 'new' >"$T/small"
op put k/sub/obj "$T/small" ifabsent 2>"$T/err"
is "$?" 3 "put-if-absent over an existing object says it exists"
ok "and leaves it as it was" cmp -s "$T/data" "$R/k/sub/obj"
is "$(temps "$R")" 0 "and leaves no temp file"

printf 'x' >"$R/k/file"
op put k/file/under "$T/small" 2>"$T/err"
is "$?" 1 "a key below an existing file fails"
ok "with the path and the reason ($(cat "$T/err"))" grep -q "$R/k/file.*Not a directory" "$T/err"

"$OP" local "path=$R" colour=blue -- stat x 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: open: local: unknown option 'colour'" \
	"an unknown option is refused by name"

# --- what is not a regular file ------------------------------------------

# A FIFO planted as an object would block a reader until some writer came:
# it is refused at once, as is a symlink (never followed out of the store).
mkfifo "$R/k/fifo"
timeout 10 "$OP" local "path=$R" -- get k/fifo "$T/out" 2>"$T/err"
is "$? $(cat "$T/err")" "1 storeop: repository test: get k/fifo: local: $R/k/fifo is not a regular file" \
	"get of a FIFO fails at once, an error and not 'not found'"
timeout 10 "$OP" local "path=$R" -- stat k/fifo 2>"$T/err"
is "$?" 1 "stat of a FIFO: the same error"
ln -s "$T/data" "$R/k/link"
timeout 10 "$OP" local "path=$R" -- get k/link "$T/out" 2>"$T/err"
is "$?" 1 "get of a symlink is refused, not followed"
rm -f "$R/k/fifo" "$R/k/link"

# --- temp files: hidden, and swept when stale -----------------------------

printf 'half' >"$R/k/sub/old.tmp.0123456789abcdef"
touch -d '2 hours ago' "$R/k/sub/old.tmp.0123456789abcdef"
printf 'live' >"$R/k/sub/new.tmp.fedcba9876543210"
is "$(op list k/ | tr '\n' ' ')" "k/file k/sub/obj " "list shows objects and never temp files"
ok "a temp file older than an hour is removed by list" \
	test ! -e "$R/k/sub/old.tmp.0123456789abcdef"
ok "a fresh one (a writer may still own it) is kept" \
	test -e "$R/k/sub/new.tmp.fedcba9876543210"
op put k/x.tmp.y "$T/small" 2>"$T/err"
is "$?" 1 "a key that looks like a temp name is refused"

# --- a full disk --------------------------------------------------------

mkdir "$T/full"
if mount -t tmpfs -o size=1m,mode=0700 tmpfs "$T/full" 2>"$T/err"; then
	MNT=$T/full
	mkdir "$T/full/repo"
	head -c 3000000 /dev/urandom >"$T/big"
	"$OP" local "path=$T/full/repo" -- put k/big "$T/big" 2>"$T/err"
	is "$?" 4 "a put larger than the disk fails with ENOSPC"
	ok "saying so and where ($(cat "$T/err"))" grep -q "no space left to .*$T/full/repo/k/big" "$T/err"
	is "$(temps "$T/full")" 0 "its temp file is gone"
	"$OP" local "path=$T/full/repo" -- stat k/big >/dev/null 2>&1
	is "$?" 2 "and no object is visible"
	ok "the disk is usable again afterwards" \
		"$OP" local "path=$T/full/repo" -- put k/small "$T/small"
	umount "$T/full" && MNT=
else
	fail "mount a 1 MiB tmpfs for the full-disk checks (needs root)"
	diag_file "$T/err"
fi

# --- put-if-absent raced by processes ------------------------------------

for i in 1 2 3 4 5 6 7 8; do
	head -c $((50000 + i)) /dev/urandom >"$T/race.$i"
	( op put race/one "$T/race.$i" ifabsent 2>/dev/null; echo $? >"$T/rc.$i" ) &
done
wait
wins=0
exists=0
winner=
for i in 1 2 3 4 5 6 7 8; do
	case $(cat "$T/rc.$i") in
	0) wins=$((wins + 1)); winner=$i ;;
	3) exists=$((exists + 1)) ;;
	esac
done
is "$wins $exists" "1 7" "8 processes race put-if-absent: one wins, seven are told it exists"
ok "the stored object is the winner's" cmp -s "$T/race.${winner:-0}" "$R/race/one"
is "$(temps "$R/race")" 0 "the losers left no temp file"

done_testing

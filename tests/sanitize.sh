#!/bin/sh
# Runs pgkeep's tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (unit tests, the local and fault plugin suites, and the WAL, dump and PITR
# integration tests, where PostgreSQL itself runs pgkeep as archive_command
# and restore_command), then the unit tests under valgrind's memcheck.  Zero
# reports is the only pass: every sanitizer writes to a log directory that
# must stay empty, and test logs are searched for reports besides.
#
#   tests/sanitize.sh [BUILD-BASE]     (default: build-sanitize/ in the source tree)
#
# Builds in BUILD-BASE/asan (clang: its UBSan honours log_path, so reports
# of pgkeep processes that PostgreSQL started are kept) and BUILD-BASE/plain
# (for valgrind).  Run as root, like the integration tests.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-$src/build-sanitize}
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

say() { printf 'sanitize: %s\n' "$*"; }
die() {
	printf 'sanitize: FAILED: %s\n' "$*" >&2
	exit 1
}

# PostgreSQL runs pgkeep as the postgres user: the build must be reachable.
reachable() {
	local d=$1
	chmod o+rx "$d"
	while [ "$d" != "/" ]; do
		chmod o+x "$d" 2>/dev/null || true
		d=$(dirname "$d")
	done
}

configure_in() {
	# $1: directory; the rest: configure arguments
	local dir=$1
	shift
	mkdir -p "$dir"
	reachable "$dir"
	if [ ! -f "$dir/Makefile" ]; then
		(cd "$dir" && "$src/configure" -q "$@" >configure.out 2>&1) ||
			die "configure in $dir: $(tail -n 5 "$dir/configure.out")"
	fi
	(cd "$dir" && make -j"$jobs" >make.out 2>&1) || die "build in $dir: $(tail -n 20 "$dir/make.out")"
}

# The unit test programs this configuration builds (some need optional plugins).
unit_tests() {
	(cd "$1" && make -j"$jobs" check TESTS= >/dev/null 2>&1) || die "building the tests in $1"
	sed -n 's/^TESTS += \(tests\/unit\/test_[a-z0-9_]*\).*/\1/p' "$src/tests/unit/Makefile.inc" |
		while read -r t; do
			[ -x "$1/$t" ] && printf '%s ' "$t"
		done
}

# Fails with the list when a test failed; prints nothing otherwise.
check_results() {
	# $1: build dir; $2: what ran
	local bad
	bad=$(grep -lE '^:test-result: (FAIL|ERROR)' $(find "$1/tests" -name '*.trs') 2>/dev/null || true)
	[ -z "$bad" ] || die "$2: failing tests: $bad"
}

[ "$(id -u)" -eq 0 ] || die "run as root (the integration tests start PostgreSQL as postgres)"
command -v clang >/dev/null || die "clang is needed (apt-get install clang)"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh >/dev/null)

# ---------------------------------------------------------------- ASan + UBSan

asan=$base/asan
logs=$asan/sanitizer-logs
configure_in "$asan" CC=clang --enable-sanitizers
rm -rf "$logs"
mkdir -p "$logs"
chmod 1777 "$logs"
# Set for every process: the test programs, pgkeep run by the tests, and
# pgkeep run by PostgreSQL (which inherits the environment of pg_ctl).
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$logs/asan"
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS

units=$(unit_tests "$asan")
integ="tests/plugin/local.sh tests/plugin/fault.sh tests/integration/wal.sh \
tests/integration/dump.sh tests/integration/pitr.sh"
say "ASan+UBSan: $(echo $units | wc -w) unit programs, local and fault plugin suites, wal, dump, pitr"
find "$asan/tests" -name '*.trs' -delete
# shellcheck disable=SC2086
(cd "$asan" && make -j"$jobs" check TESTS="$units $integ" >check.out 2>&1) || true
check_results "$asan" "ASan+UBSan"
ran=$(find "$asan/tests" -name '*.trs' | wc -l)
[ "$ran" -ge "$(echo $units $integ | wc -w)" ] || die "ASan+UBSan: only $ran test logs"
reports=$(find "$logs" -type f | wc -l)
if [ "$reports" -ne 0 ]; then
	for f in $(find "$logs" -type f | head -n 3); do
		printf '%s\n' "--- $f" >&2
		head -n 40 "$f" >&2
	done
	die "ASan+UBSan: $reports sanitizer reports in $logs"
fi
# Reports printed to a test's own output (a program started without the env).
if grep -lE 'runtime error:|AddressSanitizer|LeakSanitizer' $(find "$asan/tests" -name '*.log') \
	2>/dev/null; then
	die "ASan+UBSan: sanitizer reports in the test logs above"
fi
passed=$(cat $(find "$asan/tests" -name '*.trs') | grep -c '^:test-result: PASS')
say "ASan+UBSan: $ran tests, $passed checks passed, 0 reports"
unset ASAN_OPTIONS UBSAN_OPTIONS

# ---------------------------------------------------------------- valgrind

plain=$base/plain
configure_in "$plain"
units=$(unit_tests "$plain")
find "$plain/tests" -name '*.trs' -delete
vg="valgrind -q --leak-check=full --error-exitcode=1 --log-file=$plain/valgrind.%p.log"
rm -f "$plain"/valgrind.*.log
say "valgrind memcheck: $(echo $units | wc -w) unit programs"
# shellcheck disable=SC2086
(cd "$plain" && make -j"$jobs" check TESTS="$units" \
	LOG_COMPILER="timeout -k 30 900 $vg" >check.out 2>&1) || true
check_results "$plain" "valgrind"
n=$(find "$plain" -maxdepth 1 -name 'valgrind.*.log' | wc -l)
[ "$n" -ge "$(echo $units | wc -w)" ] || die "valgrind: $n logs for $(echo $units | wc -w) programs"
for f in "$plain"/valgrind.*.log; do
	[ -s "$f" ] || continue
	head -n 40 "$f" >&2
	die "valgrind: errors in $f"
done
say "valgrind: $(echo $units | wc -w) unit programs, no leaks or invalid accesses"
say "all clean in $(($(date +%s) - start))s"

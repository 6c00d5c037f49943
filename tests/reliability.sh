#!/bin/sh
# The reliability run (issue 8), each part bounded in time:
#   1. sanitizers: unit, plugin and integration tests under ASan+UBSan, unit
#      tests under valgrind (tests/sanitize.sh)
#   2. fuzzing: every libFuzzer target for FUZZ_SECONDS (tests/fuzz/run.sh)
#   3. crash consistency: 50+ SIGKILLs (tests/integration/crash.sh)
#   4. full disk and failing stores (tests/integration/faults.sh)
#   5. secrets (tests/integration/secrets.sh)
#   6. point-in-time restores against a ledger (tests/integration/pitr-random.sh)
# and ends with one line:
#   reliability: K kills survived, N inputs fuzzed, R targets restored, nothing lost
#
#   tests/reliability.sh [BUILD-BASE]    (default: build-reliability/ in the source tree)
#
# Environment: FUZZ_SECONDS (per target, default 40); CRASH_SEED and PITR_SEED
# replay a run.  Run as root on Debian 12 (contrib/setup-debian.sh installs
# what it needs).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-$src/build-reliability}
fuzz_secs=${FUZZ_SECONDS:-40}
mkdir -p "$base"
base=$(cd "$base" && pwd)
start=$(date +%s)

step() { printf 'reliability: %s\n' "$*"; }
die() {
	printf 'reliability: FAILED: %s\n' "$*" >&2
	exit 1
}
elapsed() { echo $(($(date +%s) - start)); }

# ---------------------------------------------------------------- 1. sanitizers

step "1/6 sanitizers"
timeout -k 30 900 sh "$src/tests/sanitize.sh" "$base/sanitize" || die "sanitizers (see $base/sanitize)"

# ---------------------------------------------------------------- 2. fuzzing

step "2/6 fuzzing, ${fuzz_secs}s per target"
timeout -k 30 900 sh "$src/tests/fuzz/run.sh" "$fuzz_secs" "$base/fuzz" | tee "$base/fuzz.out" ||
	die "fuzzing (see $base/fuzz)"
inputs=$(sed -n 's/^fuzz: [0-9]* targets, \([0-9]*\) inputs fuzzed, 0 crashes$/\1/p' "$base/fuzz.out")
[ -n "$inputs" ] || die "fuzzing gave no summary"

# ---------------------------------------------------------------- 3-6. integration

# The plain build sanitize.sh made is complete: the integration tests run there.
build=$base/sanitize/plain
tests="tests/integration/crash.sh tests/integration/faults.sh tests/integration/secrets.sh \
tests/integration/pitr-random.sh"
step "3-6/6 crash consistency, full disk and failing stores, secrets, random point-in-time restores"
rm -f "$build"/tests/integration/crash.log "$build"/tests/integration/pitr-random.log
(cd "$build" && make check TESTS="$tests" TEST_TIME_LIMIT=600 >"$base/integration.out" 2>&1) || {
	grep -hE '^(not ok|# )' "$build"/tests/integration/crash.log "$build"/tests/integration/faults.log \
		"$build"/tests/integration/secrets.log "$build"/tests/integration/pitr-random.log \
		2>/dev/null | head -n 40 >&2
	die "integration tests (logs in $build/tests/integration)"
}
grep -E '^# (TOTAL|PASS|FAIL)' "$base/integration.out" | sed 's/^/reliability:   /'
kills=$(sed -n 's/^# kills survived: \([0-9]*\).*/\1/p' "$build/tests/integration/crash.log")
targets=$(sed -n 's/^# targets restored: \([0-9]*\).*/\1/p' "$build/tests/integration/pitr-random.log")
[ -n "$kills" ] && [ -n "$targets" ] || die "crash.sh or pitr-random.sh gave no count"

step "all parts passed in $(elapsed)s"
echo "reliability: $kills kills survived, $inputs inputs fuzzed, $targets targets restored, nothing lost"

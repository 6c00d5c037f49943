#!/bin/sh
# Build pgkeep's libFuzzer targets with clang (ASan + UBSan) in their own
# build directory and run each for a bounded time, starting from the seed
# corpus in tests/fuzz/corpus/TARGET.  Any crash, leak, timeout or sanitizer
# report fails the run; the reproducer is left in the build directory
# (BUILD-DIR/TARGET-crash-*), to be replayed with `BUILD-DIR/tests/fuzz/TARGET FILE`.
#
#   tests/fuzz/run.sh [SECONDS-PER-TARGET] [BUILD-DIR]
#
# The last line is the summary: "fuzz: N targets, M inputs fuzzed, 0 crashes".
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-45}
build=${2:-$src/build-fuzz}

mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	# b2 on: its target compiles the plugin in.
	"$src/configure" -q CC=clang --enable-fuzzing --with-b2=yes >/dev/null
fi
# fuzz_targets may run over several lines (backslash continuations).
targets=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$src/tests/fuzz/Makefile.inc" |
	sed -n 's/^fuzz_targets = //p')
# shellcheck disable=SC2086
make -j"$(nproc)" $targets >"$build/fuzz-build.log" 2>&1 || {
	tail -n 40 "$build/fuzz-build.log" >&2
	echo "fuzz: building the targets failed" >&2
	exit 1
}

total=0
count=0
for t in $targets; do
	name=${t##*/}
	seeds=$src/tests/fuzz/corpus/$name
	work=$build/corpus-$name
	mkdir -p "$work"
	log=$build/$name.log
	if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"./$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$build/$name-" \
		"$work" "$seeds" >"$log" 2>&1; then
		echo "fuzz: $name FAILED; see $log" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	# A UBSan report that did not stop the run still counts as a crash.
	if grep -q 'runtime error:' "$log"; then
		echo "fuzz: $name: undefined behaviour; see $log" >&2
		grep -A 10 'runtime error:' "$log" | head -n 30 >&2
		exit 1
	fi
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: $name: ${n:-0} inputs in ${secs}s, no crash"
	total=$((total + ${n:-0}))
	count=$((count + 1))
done
echo "fuzz: $count targets, $total inputs fuzzed, 0 crashes"

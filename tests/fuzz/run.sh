#!/bin/sh
# Build pgkeep's libFuzzer targets with clang (ASan + UBSan) in their own
# build directory and run each for a bounded time, starting from the seed
# corpus in tests/fuzz/corpus/TARGET.  Any crash, leak or sanitizer report
# fails the run; the reproducer is left in the build directory.
#
#   tests/fuzz/run.sh [SECONDS-PER-TARGET] [BUILD-DIR]
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-45}
build=${2:-$src/build-fuzz}

mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	"$src/configure" -q CC=clang --enable-fuzzing >/dev/null
fi
targets=$(sed -n 's/^fuzz_targets = //p' "$src/tests/fuzz/Makefile.inc")
# shellcheck disable=SC2086
make -j"$(nproc)" $targets >/dev/null

total=0
for t in $targets; do
	name=${t##*/}
	seeds=$src/tests/fuzz/corpus/$name
	work=$build/corpus-$name
	mkdir -p "$work"
	log=$build/$name.log
	if ! ASAN_OPTIONS=detect_leaks=1 "./$t" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/$name-" \
		"$work" "$seeds" >"$log" 2>&1; then
		echo "fuzz: $name FAILED; see $log" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: $name: ${n:-0} inputs in ${secs}s, no crash"
	total=$((total + ${n:-0}))
done
echo "fuzz: $(echo "$targets" | wc -w) targets, $total inputs fuzzed, 0 crashes"

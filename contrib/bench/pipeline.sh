#!/bin/sh
# Build and run the data-path benchmark against a configured, built tree:
#   contrib/bench/pipeline.sh BUILD_DIR [MiB] [max jobs]
# Prints MB/s for the chunker and for the stream writer and reader.
set -eu
build=${1:?usage: pipeline.sh BUILD_DIR [MiB] [max jobs]}
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
make -C "$build" libpgkeep.la >/dev/null
out=$build/contrib/bench
mkdir -p "$out"
# shellcheck disable=SC2046
${CC:-cc} -O2 -g -pthread -D_GNU_SOURCE -I"$src/include" -I"$src/src" -I"$src/tests/unit" \
	-I"$build" -o "$out/bench_pipeline" \
	"$src/contrib/bench/bench_pipeline.c" "$src/tests/unit/memstore.c" \
	"$build/.libs/libpgkeep.a" \
	$(pkg-config --libs libcrypto libzstd json-c inih) -ldl
exec "$out/bench_pipeline" "$@"

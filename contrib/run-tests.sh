#!/bin/sh
# Build pgkeep and run its whole test suite: unit tests, the plugin contract
# suite against every plugin (local, a fault-injecting wrapper, s3rver, sshd,
# the B2 fake), and the integration tests on real PostgreSQL 15 clusters,
# base backup, point-in-time restore and kill also on 16, 17 and 18; then
# gcc and clang builds with -Werror and `make distcheck`.
# Run as root on Debian 12; it installs what it needs first.
#
#   contrib/run-tests.sh [BUILD_DIR]      (default: build/ in the source tree)
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}

"$src/contrib/setup-debian.sh"

# PostgreSQL runs as the postgres user and calls the freshly built pgkeep:
# the build tree must be reachable by it.
mkdir -p "$build"
chmod o+rx "$build"
d=$build
while [ "$d" != "/" ]; do
	chmod o+x "$d" 2>/dev/null || true
	d=$(dirname "$d")
done

cd "$src"
[ -x configure ] || ./autogen.sh >/dev/null
cd "$build"
[ -f Makefile ] || "$src/configure" -q --with-s3=yes --with-b2=yes --with-sftp=yes
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" >/dev/null
make -j"$jobs" check || { grep -E '^(FAIL|ERROR)' test-suite.log; tail -n 300 test-suite.log; exit 1; }

# Base backup, point-in-time restore and a backup killed mid-stream against
# the PostgreSQL 16, 17 and 18 server builds (contrib/fetch-test-postgres.sh),
# with Debian's 15 clients.
for v in 16 17 18; do
	PGKEEP_TEST_PG_SERVER_BINDIR=${PGKEEP_TEST_PG_CACHE:-/var/cache/pgkeep-test}/pg-$v/bin \
		make check TESTS="tests/integration/pitr.sh tests/integration/backup-kill.sh" ||
		{ tail -n 100 test-suite.log; exit 1; }
done

# What `make install` puts in place: binary, plugins, header, manual pages, units.
rm -rf "$build/destdir"
make install DESTDIR="$build/destdir" >/dev/null
"$src/tests/install-check.sh" "$build/destdir" "$(sed -n 's/^prefix = //p' Makefile)" \
	"$(sed -n 's/^systemdsystemunitdir = //p' Makefile)"

# Warnings as errors, under gcc and under clang: everything is built again
# (agent, plugins, test programs), nothing is run again.
"$src/contrib/build-strict.sh" "$build/strict"

# The release tarball holds all it needs: `make distcheck` builds it from
# the tarball alone (read-only sources, out of tree), installs and uninstalls
# it; of the suite, which ran in full above, only the unit tests run there.
unit=$(cd "$src" && ls tests/unit/test_*.c | sed 's/\.c$//' | tr '\n' ' ')
make distcheck DISTCHECK_CONFIGURE_FLAGS="--with-s3=yes --with-b2=yes --with-sftp=yes" \
	TESTS="$unit" >distcheck.log 2>&1 || { tail -n 100 distcheck.log; exit 1; }
echo "run-tests.sh: make distcheck passed"

# Reliability (sanitizers, valgrind, fuzzing, and a summary of the crash,
# fault, secret and random point-in-time tests), each part bounded in time.
FUZZ_SECONDS=${FUZZ_SECONDS:-30} "$src/tests/reliability.sh" "$build/reliability"

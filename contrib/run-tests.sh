#!/bin/sh
# Build pgkeep and run its whole test suite: unit tests, the plugin contract
# suite against every plugin (local, a fault-injecting wrapper, s3rver, sshd,
# the B2 fake), and the integration tests on real PostgreSQL 15 clusters,
# the version-sensitive ones also on 16, 17 and 18; then gcc and clang
# builds with -Werror, `make distcheck` and the Debian packages.
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

# Against the PostgreSQL 16, 17 and 18 server builds
# (contrib/fetch-test-postgres.sh), with Debian's 15 clients: WAL archived by
# wal-push, a base backup of a cluster with two extra tablespaces restored
# to a time and to an LSN into new locations, exact to the row, amcheck
# clean (tablespace-pitr.sh); drill; a backup killed mid-stream; a backup of
# a standby; the refused dump (no pg_dump that new).  pitr.sh's further
# cases (named targets, refusals) do not depend on the server.
for v in 16 17 18; do
	PGKEEP_TEST_PG_SERVER_BINDIR=${PGKEEP_TEST_PG_CACHE:-/var/cache/pgkeep-test}/pg-$v/bin \
		make check TESTS="tests/integration/tablespace-pitr.sh tests/integration/drill.sh \
			tests/integration/backup-kill.sh tests/integration/standby.sh \
			tests/integration/dump-version.sh" ||
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

# The Debian packages: built, linted, installed into a fresh Debian 12 root
# beside a stock PostgreSQL cluster, used for a backup and a restore, purged.
"$src/tests/package.sh" "$src" || exit 1

# Reliability (sanitizers, valgrind, fuzzing, and a summary of the crash,
# fault, secret and random point-in-time tests), each part bounded in time.
FUZZ_SECONDS=${FUZZ_SECONDS:-30} "$src/tests/reliability.sh" "$build/reliability"

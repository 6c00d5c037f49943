#!/bin/sh
# Build everything with warnings as errors, once with gcc and once with
# clang: the agent, every plugin (s3, b2 and sftp forced on) and every
# program `make check` builds, without running a test.  The two compilers
# warn about different things; CI fails on either.
#
#   contrib/build-strict.sh [DIR]    (default: build-strict/ in the source tree)
#
# Each compiler gets an out-of-tree build in DIR/gcc and DIR/clang, reused
# when run again.  -Werror goes to make, not configure: configure's own test
# programs are not warning-free, and must not decide what gets built.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build-strict}
jobs=$(nproc 2>/dev/null || echo 2)
# configure's default optimisation: some warnings (uninitialised use) only
# come with the data-flow analysis of -O2.
strict_cflags="-g -O2 -Werror"

cd "$src"
[ -x configure ] || ./autogen.sh >/dev/null

for cc in gcc clang; do
	if ! command -v "$cc" >/dev/null 2>&1; then
		echo "build-strict.sh: $cc not found (contrib/setup-debian.sh installs it)" >&2
		exit 1
	fi
	mkdir -p "$dir/$cc"
	cd "$dir/$cc"
	[ -f Makefile ] || CC=$cc "$src/configure" -q --with-s3=yes --with-b2=yes --with-sftp=yes
	# TESTS= builds check_PROGRAMS and check_LTLIBRARIES and runs nothing.
	if ! make -j"$jobs" CFLAGS="$strict_cflags" all >make.log 2>&1 ||
		! make -j"$jobs" CFLAGS="$strict_cflags" check TESTS= >>make.log 2>&1; then
		grep -E -A3 'error|warning' make.log | head -n 60 >&2
		echo "build-strict.sh: the $cc build with -Werror failed (log: $dir/$cc/make.log)" >&2
		exit 1
	fi
	echo "build-strict.sh: $cc -Werror: everything builds"
done

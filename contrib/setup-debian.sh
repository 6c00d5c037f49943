#!/bin/sh
# Install what pgkeep needs to build and to run its test suite on Debian 12.
# Run as root.  Safe to run again: it only adds what is missing.
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-debian.sh: run as root (it installs packages)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Build: compiler, autotools and the libraries configure looks for.
build="build-essential autoconf automake libtool pkg-config
	libssl-dev libzstd-dev libxxhash-dev libpq-dev libjson-c-dev libinih-dev libarchive-dev
	libcurl4-openssl-dev libssh2-1-dev"
# Run and test: PostgreSQL 15, sshd for SFTP, Python peers for S3 signing and
# the B2 simulator, node/npm for s3rver, and tools the tests call (promtool,
# from the prometheus package, checks the shipped alert rules; debhelper,
# lintian and debootstrap build, check and install the Debian packages).
test="postgresql-15 postgresql-client-15 openssh-server openssh-client
	python3 python3-botocore python3-b2sdk zstd procps psmisc strace
	util-linux iproute2 time curl openssl groff-base man-db systemd clang libclang-rt-14-dev valgrind
	prometheus
	debhelper dpkg-dev fakeroot lintian debootstrap git"

missing=""
for p in $build $test; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# node and npm may come from elsewhere (nodesource ships npm inside nodejs).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
	echo "setup-debian.sh: installing$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# s3rver, the S3 test server (npm).
if ! command -v s3rver >/dev/null 2>&1; then
	echo "setup-debian.sh: installing s3rver from npm"
	npm install -g --silent --no-audit --no-fund s3rver@3.7.1 >/dev/null
fi

# PostgreSQL 16, 17 and 18 server builds for the version runs of the test
# suite (npm; cached outside the tree, fetched once).
"$(dirname "$0")/fetch-test-postgres.sh"

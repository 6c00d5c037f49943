#!/bin/sh
# The WAL integration test (wal.sh) with the repository on s3rver, reached
# through the SigV4-checking proxy (tests/s3/): archive_command and
# restore_command through the s3 plugin, every request's signature checked
# by botocore.  The corruption hook flips a byte of the object's file in
# s3rver's data directory (bit rot under an unchanged ETag).

set -u
: "${top_srcdir:?}"

. "$top_srcdir/tests/integration/s3lib.sh"

S3T=$(mktemp -d "${TMPDIR:-/tmp}/pgkeep-wals3.XXXXXX")
cleanup() {
	s3_stop
	rm -rf "$S3T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! s3_start "$S3T/s3"; then
	echo "Bail out! cannot start s3rver and the signature-checking proxy"
	cat "$S3T/s3/"*.log "$S3T/s3/"*.err 2>/dev/null | sed 's/^/# /'
	exit 1
fi

# s3rver's credentials are fixed and public, so they may sit in the config.
S3_TEST_PREFIX=walrepo
PGKEEP_TEST_REPO_CONF=$(s3_repo_conf "$S3_TEST_PREFIX")
PGKEEP_TEST_HOOKS=$top_srcdir/tests/integration/s3lib.sh
export S3_TEST_PREFIX PGKEEP_TEST_REPO_CONF PGKEEP_TEST_HOOKS

sh "$top_srcdir/tests/integration/wal.sh"
rc=$?
# What the store saw, for the log.
echo "# proxy: $(wc -l <"$S3_DIR/proxy.log") requests," \
	"$(grep -c 'rejected:' "$S3_DIR/proxy.log") rejected by the signature check"
grep 'rejected:' "$S3_DIR/proxy.log" | head -5 | sed 's/^/# /'
# A request signed wrongly fails the test even if wal.sh passed.
if grep -q 'rejected:SignatureDoesNotMatch\|rejected:XAmzContentSHA256Mismatch' "$S3_DIR/proxy.log"; then
	echo "# FAIL: pgkeep sent requests whose signature botocore rejects"
	rc=1
fi
exit $rc

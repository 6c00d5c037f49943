#!/bin/sh
# The copy test (copy.sh) with the target repository b on s3rver behind the
# SigV4-checking proxy: chunks counted in s3rver's data directory, and the
# point-in-time restore served by the s3 plugin alone.

set -u
: "${top_srcdir:?}"
. "$top_srcdir/tests/integration/s3lib.sh"
s3_run_integration copy.sh

#!/bin/sh
# The copy test (copy.sh) with the target repository b on s3rver behind the
# SigV4-checking proxy: chunks counted in s3rver's data directory, and the
# point-in-time restore served by the s3 plugin alone.

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run s3 copy.sh

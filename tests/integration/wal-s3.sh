#!/bin/sh
# The WAL integration test (wal.sh) with the repository on s3rver, reached
# through the SigV4-checking proxy (tests/s3/): archive_command and
# restore_command through the s3 plugin, every request's signature checked
# by botocore.  The corruption hook flips a byte of the object's file in
# s3rver's data directory (bit rot under an unchanged ETag).

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run s3 wal.sh

#!/bin/sh
# The point-in-time restore test (pitr.sh) with the repository on s3rver
# behind the SigV4-checking proxy: base backup, WAL archive and restores to a
# time, an LSN and a restore point, all through the s3 plugin.

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run s3 pitr.sh

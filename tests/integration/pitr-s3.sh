#!/bin/sh
# The point-in-time restore test (pitr.sh) with the repository on s3rver
# behind the SigV4-checking proxy: base backup, WAL archive and restores to a
# time, an LSN and a restore point, all through the s3 plugin.

set -u
: "${top_srcdir:?}"
. "$top_srcdir/tests/integration/s3lib.sh"
s3_run_integration pitr.sh

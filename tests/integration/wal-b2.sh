#!/bin/sh
# The WAL integration test (wal.sh) with the repository on the fake B2
# (tests/b2/fake_b2.py): archive_command and restore_command through the b2
# plugin.  The corruption hook flips a byte of a stored file through the
# fake's control endpoint, leaving B2's recorded SHA-1 as it was (bit rot).

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run b2 wal.sh

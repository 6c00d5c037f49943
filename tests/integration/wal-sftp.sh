#!/bin/sh
# The WAL integration test (wal.sh) with the repository on a private sshd:
# archive_command and restore_command run as postgres through the sftp
# plugin.  The corruption hook flips a byte of the object's file in the SFTP
# user's directory; no temp file may be left in the repository.  Needs root
# (sshd switches to its test user).

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run sftp wal.sh

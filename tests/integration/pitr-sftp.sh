#!/bin/sh
# The point-in-time restore test (pitr.sh) with the repository on a private
# sshd through the sftp plugin: base backup, WAL archive, restores to a time,
# an LSN and a restore point.

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
store_run sftp pitr.sh

#!/bin/sh
# The WAL integration test (wal.sh) with the repository on a private sshd:
# archive_command and restore_command run as postgres through the sftp
# plugin.  The corruption hook flips a byte of the object's file in the SFTP
# user's directory.  Needs root (sshd switches to its test user).

set -u
: "${top_srcdir:?}"

. "$top_srcdir/tests/sftp/sshd.sh"
. "$top_srcdir/tests/integration/sftplib.sh"

W=$(mktemp -d /tmp/pgkeep-walsftp.XXXXXX) || { echo "Bail out! mktemp failed"; exit 1; }
chmod 0755 "$W"
cleanup() {
	sshd_cleanup
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! sshd_setup "$W/sshd" || ! sshd_start; then
	echo "Bail out! cannot start the test sshd"
	exit 1
fi

SFTP_TEST_REPO=walrepo
PGKEEP_TEST_REPO_CONF=$(sftp_repo_conf "$SFTP_TEST_REPO")
PGKEEP_TEST_HOOKS=$top_srcdir/tests/integration/sftplib.sh
export SFTP_ROOT SFTP_PORT SFTP_USER SFTP_KEY SFTP_KNOWN_HOSTS SFTP_TEST_REPO \
	PGKEEP_TEST_REPO_CONF PGKEEP_TEST_HOOKS

# pitr-sftp.sh runs the point-in-time test through this same set-up.
sh "$top_srcdir/tests/integration/${SFTP_INNER_TEST:-wal.sh}"
rc=$?
# What sshd saw, for the log: sessions opened and any refusals.
echo "# sshd: $(grep -c 'Accepted publickey' "$SFTP_DIR/sshd.log") logins," \
	"$(grep -c -i 'refused\|failed' "$SFTP_DIR/sshd.log") refusals"
left=$(find "$SFTP_ROOT/$SFTP_TEST_REPO" -name '*.tmp.*' 2>/dev/null | wc -l)
if [ "$left" -ne 0 ]; then
	echo "# FAIL: $left temp file(s) left in the repository"
	rc=1
fi
exit $rc

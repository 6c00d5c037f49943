# Shell functions for integration tests whose repository sits behind a
# private sshd (tests/sftp/sshd.sh), reached by the sftp plugin.  Sourced by
# tests/integration/wal-sftp.sh, and through PGKEEP_TEST_HOOKS by
# tests/integration/lib.sh, where it replaces repo_corrupt_object with one
# that damages the object's file in the SFTP user's directory.
#
#   sftp_repo_conf DIR   a repository section body for PGKEEP_TEST_REPO_CONF,
#                        the repository in $SFTP_ROOT/DIR
#   sftp_object_file KEY the server-side file of object KEY
#
# Reads SFTP_ROOT, SFTP_PORT, SFTP_USER, SFTP_KEY, SFTP_KNOWN_HOSTS (set by
# sshd_setup/sshd_start and exported by the caller) and SFTP_TEST_REPO (DIR).

sftp_repo_conf() {
	printf '%s' "plugin = sftp\nhost = 127.0.0.1\nport = $SFTP_PORT\nuser = $SFTP_USER\npath = $SFTP_ROOT/$1\nidentity_file = $SFTP_KEY\nknown_hosts = $SFTP_KNOWN_HOSTS\nconnect_timeout = 10\ntimeout = 30\n"
}

sftp_object_file() {
	printf '%s\n' "$SFTP_ROOT/$SFTP_TEST_REPO/$1"
}

# Hook for lib.sh: XOR the middle byte of the stored file with 1, in place,
# so that size and mtime-based checks see nothing.
repo_corrupt_object() {
	local f
	f=$(sftp_object_file "$1")
	[ -f "$f" ] || return 1
	/usr/bin/python3 - "$f" <<'PY'
import os, sys
path = sys.argv[1]
off = os.path.getsize(path) // 2
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 1]))
PY
}

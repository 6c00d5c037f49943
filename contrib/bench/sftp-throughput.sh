#!/bin/sh
# Throughput of the sftp plugin for one large object over loopback, next to
# OpenSSH's own sftp client moving the same file to the same private sshd.
#
#   contrib/bench/sftp-throughput.sh [BUILDDIR] [SIZE_MIB]
#
# BUILDDIR is a configured and built tree (default: .), after
# `make plugins/sftp.la tests/sftp/plugin-io`; SIZE_MIB defaults to 1024.
# Needs root (the private sshd switches to its test user), openssh-server
# and openssh-client.  Numbers are MB/s (10^6 bytes), upload and download.

set -u
BUILD=${1:-.}
SIZE_MIB=${2:-1024}
here=$(cd "$(dirname "$0")/../.." && pwd)

PLUGIN=$BUILD/plugins/.libs/sftp.so
IO=$BUILD/tests/sftp/plugin-io
for f in "$PLUGIN" "$IO"; do
	[ -e "$f" ] || { echo "missing $f: build it first (see the header)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (sshd switches users)" >&2; exit 1; }

. "$here/tests/sftp/sshd.sh"

W=$(mktemp -d /tmp/pgkeep-bench.XXXXXX) || exit 1
chmod 0755 "$W"
cleanup() {
	sshd_cleanup
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

SFTP_KEY_OWNER=root sshd_setup "$W/sshd" >/dev/null && sshd_start || exit 1

now_ns() { date +%s%N; }
mbps() { # BYTES NANOSECONDS
	awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'
}

bytes=$((SIZE_MIB * 1048576))
echo "writing $SIZE_MIB MiB of random data..."
head -c "$bytes" /dev/urandom >"$W/object" || exit 1
sync

io() {
	"$IO" -b 4194304 -o host=127.0.0.1 -o port="$SFTP_PORT" -o user="$SFTP_USER" \
		-o path="$SFTP_ROOT/plugin" -o identity_file="$SFTP_KEY" \
		-o known_hosts="$SFTP_KNOWN_HOSTS" "$PLUGIN" "$@"
}

t0=$(now_ns)
io put bench/object <"$W/object" || exit 1
t1=$(now_ns)
io get bench/object >"$W/back.plugin" || exit 1
t2=$(now_ns)
cmp -s "$W/object" "$W/back.plugin" || { echo "plugin: object read back differs" >&2; exit 1; }
rm -f "$W/back.plugin" "$SFTP_ROOT/plugin/bench/object"

mkdir -p "$SFTP_ROOT/client" && chown "$SFTP_USER" "$SFTP_ROOT/client"
sftp_batch() {
	printf '%s\n' "$1" >"$W/batch"
	sftp -q -b "$W/batch" -i "$SFTP_KEY" -P "$SFTP_PORT" \
		-o UserKnownHostsFile="$SFTP_KNOWN_HOSTS" -o BatchMode=yes \
		"$SFTP_USER@127.0.0.1" >/dev/null
}
t3=$(now_ns)
sftp_batch "put $W/object $SFTP_ROOT/client/object" || exit 1
t4=$(now_ns)
sftp_batch "get $SFTP_ROOT/client/object $W/back.client" || exit 1
t5=$(now_ns)
cmp -s "$W/object" "$W/back.client" || { echo "sftp client: file read back differs" >&2; exit 1; }

echo "object: $SIZE_MIB MiB over 127.0.0.1 (each figure includes connecting and logging in)"
printf '%-28s upload %8s MB/s   download %8s MB/s\n' \
	"pgkeep sftp plugin" "$(mbps "$bytes" $((t1 - t0)))" "$(mbps "$bytes" $((t2 - t1)))"
printf '%-28s upload %8s MB/s   download %8s MB/s\n' \
	"OpenSSH sftp $(ssh -V 2>&1 | cut -d, -f1)" "$(mbps "$bytes" $((t4 - t3)))" \
	"$(mbps "$bytes" $((t5 - t4)))"
echo "the plugin also waits for fsync@openssh.com on the server before its rename;"
echo "libssh2 1.10 negotiates aes128-ctr + hmac-sha2-256 (it has no AES-GCM or chacha20)"
exit 0

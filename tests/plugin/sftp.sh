#!/bin/sh
# The sftp plugin against a private OpenSSH sshd on loopback: the plugin
# contract suite, then what only SFTP has: host key checking, the RSA key
# refusal, temp files and their cleanup, and sshd dying under an upload.
# Needs root (sshd switches to the test user); prints TAP.

set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"
: "${PGKEEP_TEST_PLUGIN_DIR:?run through make check}"
. "$top_srcdir/tests/lib/tap.sh"

. "$top_srcdir/tests/sftp/sshd.sh"

PLUGIN=$PGKEEP_TEST_PLUGIN_DIR/sftp.so
IO=$top_builddir/tests/sftp/plugin-io
CONTRACT=$top_builddir/tests/plugin/contract

require_root "sshd switches to its test user"
[ -f "$PLUGIN" ] || bail_out "$PLUGIN not built"
[ -x "$IO" ] || bail_out "$IO not built"

W=$(mktemp -d /tmp/pgkeep-sftp.XXXXXX) || bail_out "mktemp failed"
chmod 0755 "$W"
cleanup() {
	[ -n "${bgpid:-}" ] && kill "$bgpid" 2>/dev/null
	[ -n "${agentpid:-}" ] && kill "$agentpid" 2>/dev/null
	sshd_cleanup
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

sshd_setup "$W/sshd" || bail_out "cannot set up sshd"
sshd_start || bail_out "cannot start sshd"
REPO=$SFTP_ROOT/repo

# the options every call gets; $KH and $ID can be swapped per test
KH=$SFTP_KNOWN_HOSTS
ID=$SFTP_KEY
# io [-o K=V | -x | -s N]... OP ARGS...: one plugin call through plugin-io
io() {
	local extra=""
	while [ $# -gt 0 ]; do
		case $1 in
		-o|-s) extra="$extra $1 $2"; shift 2 ;;
		-x) extra="$extra -x"; shift ;;
		*) break ;;
		esac
	done
	# shellcheck disable=SC2086
	"$IO" -o host=127.0.0.1 -o port="$SFTP_PORT" -o user="$SFTP_USER" -o path="$REPO" \
		-o identity_file="$ID" -o known_hosts="$KH" -o timeout=20 $extra "$PLUGIN" "$@"
}
# io_op OP ARGS...: run and keep stderr in $err, status in $rc
io_run() {
	err=$(io "$@" 2>&1 >"$W/out")
	rc=$?
}

# ---------------------------------------------------------------- the repository's directory

# Only `pgkeep init` (create=yes) makes it: otherwise a missing directory is
# the repository missing, an error at open, and nothing is created.
io_run stat pgkeep.json
ok "a repository directory that does not exist fails at open" test "$rc" -ne 0
like "$err" "repository directory .*$REPO does not exist" "saying so, with the path"
ok "and it is not created" test ! -e "$REPO"
io_run -o create=yes stat pgkeep.json
ok "create=yes (init) makes it" test -d "$REPO"
is "$(stat -c '%a %U' "$REPO")" "700 $SFTP_USER" "mode 0700, owned by the SFTP user"
mkdir -p "$SFTP_ROOT/contract"
chown "$SFTP_USER" "$SFTP_ROOT/contract"

# ---------------------------------------------------------------- contract suite

if [ -x "$CONTRACT" ]; then
	out=$("$CONTRACT" "$PLUGIN" host=127.0.0.1 port="$SFTP_PORT" user="$SFTP_USER" \
		path="$SFTP_ROOT/contract" identity_file="$SFTP_KEY" known_hosts="$KH" 2>&1)
	rc=$?
	is "$rc" 0 "the plugin contract suite passes against sshd"
	[ "$rc" -eq 0 ] || diag "$out"
else
	fail "the plugin contract suite passes against sshd"
	diag "$CONTRACT was not built"
fi

# ---------------------------------------------------------------- basics

head -c 1000 /dev/urandom >"$W/small"
head -c $((17 * 1048576 + 12345)) /dev/urandom >"$W/medium"	# past the in-memory limit
: >"$W/empty"
for f in empty small medium; do
	io_run put "obj/$f" <"$W/$f"
	is "$rc" 0 "put of $f succeeds"
	io_run get "obj/$f"
	ok "get returns $f unchanged" cmp -s "$W/out" "$W/$f"
done
io_run -s $((17 * 1048576 + 12345)) put obj/hinted <"$W/medium"
io_run get obj/hinted
ok "a put announced as large streams and reads back unchanged" cmp -s "$W/out" "$W/medium"

io_run get obj/medium 17000000 1000
tail -c +17000001 "$W/medium" | head -c 1000 >"$W/range"
ok "a ranged get returns exactly those bytes" cmp -s "$W/out" "$W/range"
io_run stat obj/small
is "$(cut -d' ' -f1 "$W/out")" 1000 "stat reports the size"
io_run get obj/nothing
is "$rc" 1 "get of a missing key is not found"
like "$err" "SSH_FX_NO_SUCH_FILE" "and names the SFTP status"
io_run -x put obj/small <"$W/medium"
is "$rc" 2 "an if-absent put over an existing key reports exists"
io_run get obj/small
ok "and leaves the stored object alone" cmp -s "$W/out" "$W/small"
io_run put obj/small <"$W/medium"
io_run get obj/small
ok "a plain put replaces an existing object" cmp -s "$W/out" "$W/medium"
io_run list obj/
is "$(cut -d' ' -f1 "$W/out" | sort | tr '\n' ' ')" "obj/empty obj/hinted obj/medium obj/small " \
	"list by prefix walks the directory"
io_run list obj/sm
is "$(cut -d' ' -f1 "$W/out")" "obj/small" "list with a partial name filters"
is "$(find "$REPO" -name '*.tmp.*' | wc -l)" 0 "no temp file is left after commits"
is "$(stat -c %a "$REPO/obj")" 700 "directories are created with mode 0700"
io_run rm obj/empty
io_run stat obj/empty
is "$rc" 1 "remove deletes"
io_run rm obj/empty
is "$rc" 0 "removing a missing key succeeds"
io_run -o colour=blue list
like "$err" "unknown option 'colour'" "an unknown option is refused by name"
is "$rc" 3 "with a failure status"

# ---------------------------------------------------------------- temp files

mkdir -p "$REPO/t"
for name in old.tmp.0123456789abcdef new.tmp.fedcba9876543210; do
	echo x >"$REPO/t/$name"
done
echo kept >"$REPO/t/real"
chown -R "$SFTP_USER" "$REPO/t"
touch -d '2 hours ago' "$REPO/t/old.tmp.0123456789abcdef"
io_run list t/
is "$(cut -d' ' -f1 "$W/out")" "t/real" "list never shows temp files"
ok "list removes a temp file older than an hour" test ! -e "$REPO/t/old.tmp.0123456789abcdef"
ok "and leaves a fresh one (an upload may be running)" test -e "$REPO/t/new.tmp.fedcba9876543210"

# ---------------------------------------------------------------- errors name the status

mkdir -p "$REPO/ro"
chown "$SFTP_USER" "$REPO/ro"
chmod 0500 "$REPO/ro"
io_run put ro/x <"$W/small"
ok "a put into a read-only directory fails" test "$rc" -ne 0
like "$err" "SSH_FX_PERMISSION_DENIED" "the error names the SFTP status"
like "$err" "$SFTP_USER@127\.0\.0\.1:$SFTP_PORT:$REPO/ro/x" "the error names host and path"
chmod 0700 "$REPO/ro"

# ---------------------------------------------------------------- host keys

fp=$(ssh-keygen -l -E sha256 -f "$SFTP_DIR/host_ed25519_key.pub" | cut -d' ' -f2)
ssh-keygen -q -t ed25519 -N '' -f "$W/other_host_key"
printf '[127.0.0.1]:%s %s\n' "$SFTP_PORT" "$(cut -d' ' -f1,2 "$W/other_host_key.pub")" >"$W/kh_wrong"
KH=$W/kh_wrong io_run list
is "$rc" 3 "a changed host key is refused"
like "$err" "CHANGED" "the message says the key changed"
contains "$err" "ssh-ed25519 $fp" "and shows the server's SHA256 fingerprint ($fp)"
like "$err" "$W/kh_wrong" "and names the known_hosts file"
like "$err" "\(code -3\)" "as an authentication failure"

: >"$W/kh_empty"
KH=$W/kh_empty io_run list
like "$err" "host key of 127\.0\.0\.1:$SFTP_PORT is unknown" "an unknown host key is refused"
contains "$err" "$fp" "with its fingerprint"
KH=$W/kh_absent io_run list
like "$err" "unknown.*no such file" "a missing known_hosts file refuses every host"

# lines libssh2 1.10 cannot parse must not hide the good one behind them
{
	echo "# a comment"
	echo "@cert-authority *.example.com $(cut -d' ' -f1,2 "$W/other_host_key.pub")"
	echo "example.org sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA== sk"
	echo "example.net ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t"
	echo "example.com ssh-ed25519 !!!not-base64!!!"
	cat "$SFTP_KNOWN_HOSTS"
} >"$W/kh_mixed"
KH=$W/kh_mixed io_run list
is "$rc" 0 "markers, sk-*, certificate and broken lines before the right key are skipped"

cp "$SFTP_KNOWN_HOSTS" "$W/kh_hashed"
ssh-keygen -q -H -f "$W/kh_hashed" >/dev/null 2>&1
rm -f "$W/kh_hashed.old"
KH=$W/kh_hashed io_run list
is "$rc" 0 "a hashed known_hosts entry matches"

{ cat "$SFTP_KNOWN_HOSTS"; echo "@revoked * $(cut -d' ' -f1,2 "$SFTP_DIR/host_ed25519_key.pub")"; } >"$W/kh_revoked"
KH=$W/kh_revoked io_run list
like "$err" "@revoked" "a host key marked @revoked is refused"

# ---------------------------------------------------------------- user keys

ssh-keygen -q -t rsa -b 2048 -N '' -f "$W/id_rsa"
cat "$W/id_rsa.pub" >>"$SFTP_DIR/authorized_keys"
ID=$W/id_rsa io_run list
is "$rc" 3 "an RSA identity is refused"
like "$err" "RSA key.*OpenSSH 8\.8.*ed25519" "with the reason and the remedy"
like "$err" "\(code -8\)" "before connecting, as a configuration error"
ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f "$W/id_rsa_pem"
rm -f "$W/id_rsa_pem.pub"
ID=$W/id_rsa_pem io_run list
like "$err" "RSA key" "a PEM-format RSA key without its .pub is recognised too"

ssh-keygen -q -t ecdsa -b 256 -N '' -f "$W/id_ecdsa"
cat "$W/id_ecdsa.pub" >>"$SFTP_DIR/authorized_keys"
ID=$W/id_ecdsa io_run list
is "$rc" 0 "an ECDSA identity logs in"

ssh-keygen -q -t ed25519 -N 'sesame' -f "$W/id_locked"
cat "$W/id_locked.pub" >>"$SFTP_DIR/authorized_keys"
echo sesame >"$W/passphrase"
ID=$W/id_locked io_run -o identity_passphrase_file="$W/passphrase" list
is "$rc" 0 "an encrypted ed25519 key opens with identity_passphrase_file"
ID=$W/id_locked io_run list
ok "and without it fails" test "$rc" -ne 0
ssh-keygen -q -t ed25519 -N '' -f "$W/id_stranger"
ID=$W/id_stranger io_run list
like "$err" "refused the key" "a key sshd does not know is refused clearly"

# ssh-agent: the key lives only in the agent
eval "$(ssh-agent -s -a "$W/agent.sock")" >/dev/null
agentpid=$SSH_AGENT_PID
ssh-add -q "$SFTP_KEY" 2>/dev/null
err=$("$IO" -o host=127.0.0.1 -o port="$SFTP_PORT" -o user="$SFTP_USER" -o path="$REPO" \
	-o use_agent=yes -o known_hosts="$SFTP_KNOWN_HOSTS" "$PLUGIN" get obj/medium 2>&1 >"$W/out")
rc=$?
is "$rc" 0 "use_agent logs in with a key held by ssh-agent"
[ "$rc" -eq 0 ] || diag "$err"
ssh-add -q -D 2>/dev/null
err=$("$IO" -o host=127.0.0.1 -o port="$SFTP_PORT" -o user="$SFTP_USER" -o path="$REPO" \
	-o use_agent=yes -o known_hosts="$SFTP_KNOWN_HOSTS" "$PLUGIN" list 2>&1)
like "$err" "refused all 0 key\(s\) of the ssh-agent" "an agent without a usable key is refused clearly"
kill "$agentpid" 2>/dev/null
agentpid=
unset SSH_AUTH_SOCK SSH_AGENT_PID

# ---------------------------------------------------------------- sshd dies

# A dropped idle session is replaced: the put below connects at open, and
# its sessions are killed while it waits for the rest of its input.
head -c 2097152 /dev/urandom >"$W/pause.in"
{ head -c 1048576 "$W/pause.in"; sleep 2; tail -c 1048576 "$W/pause.in"; } |
	io put drop/buffered 2>"$W/err" &
bgpid=$!
sleep 1
sessions=$(sshd_sessions)
[ -n "$sessions" ] && kill -KILL $sessions 2>/dev/null
wait "$bgpid"
rc=$?
bgpid=
is "$rc" 0 "a buffered put survives its session being killed (reconnect and retry)"
[ "$rc" -eq 0 ] || diag "$(cat "$W/err")"
like "$(cat "$W/err")" "connection failed.*reconnecting" "after seeing the connection fail"
io_run get drop/buffered
ok "and the object is whole" cmp -s "$W/out" "$W/pause.in"

# sshd down for a moment when the put commits: the plugin owns retrying
# (nobody above it tries again), so it connects again with backoff.  The
# input pauses 4 s; sshd is stopped meanwhile and started again just after
# the commit (at about 4 s) has found it gone.
{ head -c 1048576 "$W/pause.in"; sleep 4; tail -c 1048576 "$W/pause.in"; } |
	io put drop/restart 2>"$W/err" &
bgpid=$!
t0=$(date +%s%3N)
sleep 1
sshd_stop
left=$((4400 - ($(date +%s%3N) - t0)))
[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
sshd_start || bail_out "cannot restart sshd"
wait "$bgpid"
rc=$?
bgpid=
is "$rc" 0 "a buffered put survives sshd being down for a moment"
[ "$rc" -eq 0 ] || diag "$(cat "$W/err")"
like "$(cat "$W/err")" "cannot connect to .*trying again in [0-9]+ ms" "after connecting again with backoff"
io_run get drop/restart
ok "and the object is whole" cmp -s "$W/out" "$W/pause.in"

# sshd killed mid-upload of a large (streamed) object
head -c $((64 * 1048576)) /dev/urandom >"$W/big"
{ head -c $((40 * 1048576)) "$W/big"; sleep 3; tail -c +$((40 * 1048576 + 1)) "$W/big"; } |
	io put big/object 2>"$W/err" &
bgpid=$!
half_sent() {	# 32 MiB of it sits in the temp file
	size=$(find "$REPO/big" -name 'object.tmp.*' -printf '%s\n' 2>/dev/null | head -n1)
	[ "${size:-0}" -ge $((32 * 1048576)) ]
}
wait_until 300 half_sent
sshd_kill
wait "$bgpid"
rc=$?
bgpid=
ok "an upload whose sshd is killed fails" test "$rc" -ne 0
like "$(cat "$W/err")" "code -4" "as retryable"
ok "no partial object is visible under the key" test ! -e "$REPO/big/object"
is "$(find "$REPO/big" -name 'object.tmp.*' | wc -l)" 1 "only a temp file remains"
sshd_start || bail_out "cannot restart sshd"
io_run list big/
is "$(cat "$W/out")" "" "list skips the temp file"
io_run put big/object <"$W/big"
is "$rc" 0 "after sshd restarts, the next upload succeeds"
io_run get big/object
ok "and reads back whole" cmp -s "$W/out" "$W/big"

# A session that stops answering is given up after `timeout` seconds and
# the buffered put goes through on a fresh one.
{ head -c 1048576 "$W/pause.in"; sleep 2; tail -c 1048576 "$W/pause.in"; } |
	io -o timeout=2 put stall/buffered 2>"$W/err" &
bgpid=$!
sleep 1
stopped=$(sshd_sessions)
[ -n "$stopped" ] && kill -STOP $stopped
t0=$(date +%s)
wait "$bgpid"
rc=$?
t1=$(date +%s)
bgpid=
[ -n "$stopped" ] && kill -CONT $stopped 2>/dev/null
is "$rc" 0 "a put whose session stalls completes on a new session"
like "$(cat "$W/err")" "LIBSSH2_ERROR_(SOCKET_)?TIMEOUT.*reconnecting" "after the I/O timeout"
# Seconds, as timeout = 2 says, not the default minute; the margin is for a
# loaded machine, where the new session's handshake can take a while.
ok "within seconds ($((t1 - t0)) s)" test $((t1 - t0)) -le 30
io_run get stall/buffered
ok "and the object is whole" cmp -s "$W/out" "$W/pause.in"

# A server that accepts TCP but never speaks SSH: connect_timeout.
listener=$(sshd_pid)
kill -STOP "$listener"
t0=$(date +%s)
io_run -o connect_timeout=2 list
t1=$(date +%s)
kill -CONT "$listener"
like "$err" "handshake.*code -4" "a server that never answers fails the handshake as retryable"
# connect_timeout = 2, not the default 10 s.
ok "after connect_timeout ($((t1 - t0)) s)" test $((t1 - t0)) -lt 10

sshd_stop
io_run list
is "$rc" 3 "with sshd down, open fails"
like "$err" "cannot connect to 127\.0\.0\.1:$SFTP_PORT.*code -4" "as retryable, naming host and port"

done_testing

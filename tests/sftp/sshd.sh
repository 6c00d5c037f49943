# A private OpenSSH server for the sftp plugin's tests: its own host key,
# config, port and client key, serving SFTP on 127.0.0.1 as an unprivileged
# user.  Source it (POSIX sh or bash); it needs root (sshd must switch users).
#
#   sshd_setup DIR   create DIR (0755) with keys, config, known_hosts and
#                    the SFTP user's directory; sets the variables below
#   sshd_start       start sshd on a free port; waits until it answers
#   sshd_stop        stop sshd and every session it serves (SIGTERM)
#   sshd_kill        SIGKILL sshd and its sessions, as a crash would
#   sshd_sessions    print the pids of the session processes
#   sshd_cleanup     sshd_stop and remove DIR
#
# Variables:
#   SFTP_DIR          DIR
#   SFTP_USER         the account sshd logs in (created when absent)
#   SFTP_PORT         the port (set by sshd_start)
#   SFTP_ROOT         DIR/root, owned by SFTP_USER: put repositories under it
#   SFTP_KEY          the client's ed25519 private key (no passphrase)
#   SFTP_KNOWN_HOSTS  a known_hosts with sshd's host key for [127.0.0.1]:PORT
#
# pgkeep may run as postgres: SFTP_KEY is handed to SFTP_KEY_OWNER (default
# postgres when that account exists) with mode 0600, and known_hosts is 0644.
# StrictModes is off because DIR usually sits in /tmp, a world-writable
# directory that StrictModes rejects above an authorized_keys file.

SFTP_USER=${SFTP_USER:-pgkeep-sftp-test}
SSHD=${SSHD:-/usr/sbin/sshd}

sshd_free_port() {
	# Let the kernel pick: bind port 0 on loopback and report it.
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

sshd_user() {
	id "$SFTP_USER" >/dev/null 2>&1 && return 0
	# -p '*': with UsePAM no, a locked ('!') password also locks key logins.
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --password '*' "$SFTP_USER" 2>/dev/null
	# a parallel test may have created it first
	id "$SFTP_USER" >/dev/null 2>&1
}

sshd_setup() {
	SFTP_DIR=$1
	[ "$(id -u)" -eq 0 ] || { echo "sshd_setup: must run as root" >&2; return 1; }
	[ -x "$SSHD" ] || { echo "sshd_setup: $SSHD not found (openssh-server)" >&2; return 1; }
	sshd_user || { echo "sshd_setup: cannot create user $SFTP_USER" >&2; return 1; }
	mkdir -p -m 0755 /run/sshd || return 1
	mkdir -p "$SFTP_DIR" && chmod 0755 "$SFTP_DIR" || return 1
	SFTP_ROOT=$SFTP_DIR/root
	SFTP_KEY=$SFTP_DIR/id_ed25519
	SFTP_KNOWN_HOSTS=$SFTP_DIR/known_hosts
	mkdir -p "$SFTP_ROOT" && chown "$SFTP_USER" "$SFTP_ROOT" && chmod 0700 "$SFTP_ROOT" || return 1
	ssh-keygen -q -t ed25519 -N '' -C pgkeep-test-host -f "$SFTP_DIR/host_ed25519_key" || return 1
	ssh-keygen -q -t ed25519 -N '' -C pgkeep-test-client -f "$SFTP_KEY" || return 1
	cp "$SFTP_KEY.pub" "$SFTP_DIR/authorized_keys" && chmod 0644 "$SFTP_DIR/authorized_keys" || return 1
	chmod 0644 "$SFTP_KEY.pub"
	if ! runuser -u "$SFTP_USER" -- test -r "$SFTP_DIR/authorized_keys"; then
		echo "sshd_setup: $SFTP_USER cannot reach $SFTP_DIR (a parent is not 0755?)" >&2
		return 1
	fi
	if [ -n "${SFTP_KEY_OWNER:-}" ] || id postgres >/dev/null 2>&1; then
		chown "${SFTP_KEY_OWNER:-postgres}" "$SFTP_KEY" || return 1
	fi
	chmod 0600 "$SFTP_KEY"
}

sshd_write_config() {
	cat >"$SFTP_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SFTP_PORT
HostKey $SFTP_DIR/host_ed25519_key
PidFile $SFTP_DIR/sshd.pid
AuthorizedKeysFile $SFTP_DIR/authorized_keys
AllowUsers $SFTP_USER
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxStartups 64
LogLevel VERBOSE
EOF
	printf '[127.0.0.1]:%s %s\n' "$SFTP_PORT" \
		"$(cut -d' ' -f1,2 "$SFTP_DIR/host_ed25519_key.pub")" >"$SFTP_KNOWN_HOSTS"
	chmod 0644 "$SFTP_KNOWN_HOSTS"
}

# Wait until the port takes connections (sshd writes its pid file first).
sshd_wait_listening() {
	local i=0
	while [ $i -lt 100 ]; do
		if python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$SFTP_PORT" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

sshd_start() {
	local tries=0
	# Keep the port across restarts so known_hosts and configs stay valid.
	while [ $tries -lt 5 ]; do
		if [ -z "${SFTP_PORT:-}" ] || [ $tries -gt 0 ]; then
			SFTP_PORT=$(sshd_free_port) || return 1
		fi
		sshd_write_config
		rm -f "$SFTP_DIR/sshd.pid"
		if "$SSHD" -f "$SFTP_DIR/sshd_config" -E "$SFTP_DIR/sshd.log" &&
		   sshd_wait_listening; then
			return 0
		fi
		tries=$((tries + 1))
	done
	echo "sshd_start: sshd did not start; see $SFTP_DIR/sshd.log:" >&2
	tail -n 5 "$SFTP_DIR/sshd.log" >&2
	return 1
}

sshd_pid() {
	[ -f "$SFTP_DIR/sshd.pid" ] && cat "$SFTP_DIR/sshd.pid"
}

# Descendants of a pid, deepest last.
sshd_children() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		sshd_children "$c"
	done
}

sshd_sessions() {
	local pid
	pid=$(sshd_pid) || return 0
	sshd_children "$pid"
}

sshd_signal() {
	local sig=$1 pid pids
	pid=$(sshd_pid) || return 0
	pids="$pid $(sshd_children "$pid")"
	# shellcheck disable=SC2086
	kill "-$sig" $pids 2>/dev/null
	# wait (max 5 s) until all are gone
	local i=0 p alive
	while [ $i -lt 50 ]; do
		alive=
		for p in $pids; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ -z "$alive" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	rm -f "$SFTP_DIR/sshd.pid"
}

sshd_stop() { sshd_signal TERM; }
sshd_kill() { sshd_signal KILL; }

sshd_cleanup() {
	[ -n "${SFTP_DIR:-}" ] || return 0
	sshd_stop
	rm -rf "$SFTP_DIR"
}

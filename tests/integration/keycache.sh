#!/bin/sh
# The key cache through pgkeep itself, with the default scrypt cost: the
# first command unwraps with scrypt and starts the agent, the next ones get
# the key from it (faster, about 32 MiB less peak memory); a wrong
# passphrase is still refused while the agent holds the right key;
# key_cache = 0 starts nothing; a killed agent is replaced; the agent
# holds none of its caller's descriptors, lives in a 0700 directory,
# refuses a client of another user and leaves after key_cache seconds.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pgkeep_conf
# Default KDF parameters: what the cache saves is the point.
pgkeep_run init >&2 || bail_out "init"

# The agent serving spool directory $1 (pgkeep-keycache holds it open).
agent_of() {
	local p
	for p in $(pgrep -x pgkeep-keycache); do
		if ls -l "/proc/$p/fd" 2>/dev/null | grep -q -- "-> $1/keycache\$"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# gone PID: wait for PID to end (a zombie counts as ended); 1 after two
# minutes, a bound for a hang only.
ended() {
	case $(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) in
	"" | Z | X) return 0 ;;
	esac
	return 1
}
gone() {
	wait_until 120 ended "$1"
}

# timed NAME CONF: pgkeep -v -v list as postgres under /usr/bin/time; sets
# rss (KB), secs (CPU seconds, which a loaded machine does not inflate as it
# does the wall clock's), err (the log).
timed() {
	as_pg /usr/bin/time -f "%M %U %S" -o "$T/$1.time" "$PGKEEP" --config "$2" -v -v list \
		>/dev/null 2>"$T/$1.err"
	rc=$?
	rss=$(cut -d' ' -f1 "$T/$1.time")
	secs=$(awk '{ print $2 + $3 }' "$T/$1.time")
	err=$(cat "$T/$1.err")
}

# --------------------------------------------------------------- miss, then hit

timed miss "$PGKEEP_CONF"
is "$rc" 0 "first list succeeds"
like "$err" "key unwrapped with scrypt" "... unwrapping the key with scrypt"
like "$err" "key cache agent started" "... and starting the agent"
miss_rss=$rss
miss_secs=$secs
agent=$(agent_of "$T/spool")
ok "an agent serves the test's spool ($agent)" [ -n "$agent" ]

timed hit "$PGKEEP_CONF"
is "$rc" 0 "second list succeeds"
like "$err" "key from the cache" "... with the key from the cache"
ok "... and no scrypt" sh -c '! grep -q scrypt "$1"' sh "$T/hit.err"
diag "list: miss $miss_secs s, $miss_rss KB; hit $secs s, $rss KB"
cmp_ok "$((miss_rss - rss))" -ge 20000 "peak RSS drops by more than 20 MB on a hit"
ok "and it costs less CPU time" python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" \
	"$secs" "$miss_secs"

# --------------------------------------------------------------- the agent itself

is "$(stat -c '%a %U' "$T/spool/keycache")" "700 postgres" "its directory is 0700, postgres's"
is "$(stat -c %U "/proc/$agent")" postgres "it runs as postgres"
is "$(tr '\0' ' ' <"/proc/$agent/cmdline" | sed 's/ *$//')" pgkeep-keycache \
	"its command line is blanked (nothing of the client's)"
fds=$(ls -l "/proc/$agent/fd" | awk 'NR > 1 {print $NF}')
is "$(printf '%s\n' "$fds" | grep -c '^/dev/null$')" 3 "stdin, stdout, stderr are /dev/null"
is "$(printf '%s\n' "$fds" | grep -c 'pipe:\|/dev/pts\|tty')" 0 "it holds no pipe or terminal"
# Same-user processes cannot read its memory: not dumpable means ptrace access is root's.
ok "its memory is closed to other postgres processes" \
	sh -c '! runuser -u postgres -- cat "/proc/$1/environ" >/dev/null 2>&1' sh "$agent"

# It was exec'd afresh: nothing of the command that started it, such as the
# passphrase it read, is in its memory (read here as root).
is "$(readlink "/proc/$agent/exe")" "$(readlink -f "$PGKEEP")" "it runs the pgkeep program itself"
is "$(wc -c <"/proc/$agent/environ")" 0 "with an empty environment"
is "$(python3 - "$agent" "$(cat "$T/passphrase")" <<'EOF'
import re, sys
pid, secret = sys.argv[1], sys.argv[2].encode()
hits = 0
with open("/proc/%s/mem" % pid, "rb") as mem:
    for line in open("/proc/%s/maps" % pid):
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
        if not m or "[vvar]" in line or "[vsyscall]" in line:
            continue
        a, b = int(m.group(1), 16), int(m.group(2), 16)
        try:
            mem.seek(a)
            hits += secret in mem.read(b - a)
        except OSError:
            pass
print(hits)
EOF
)" 0 "the passphrase is nowhere in its memory"

# --------------------------------------------------------------- wrong passphrase

as_pg sh -c 'umask 077; echo not-the-passphrase >"$1"' sh "$T/wrong-pass"
as_pg sh -c 'sed "s|^passphrase_file = .*|passphrase_file = $2|" "$1" >"$3"; chmod 600 "$3"' sh \
	"$PGKEEP_CONF" "$T/wrong-pass" "$T/wrong.conf"
timed wrong "$T/wrong.conf"
cmp_ok "$rc" -ne 0 "a wrong passphrase fails while the agent holds the right key"
like "$err" "wrong passphrase for repository test" "... with the usual message"
ok "the agent is still there" kill -0 "$agent"

# --------------------------------------------------------------- kill -9

kill -KILL "$agent"
gone "$agent"
ok "the agent is killed" [ $? -eq 0 ]
# Through pipes, as a harness or PostgreSQL runs it: their reader waits for
# EOF, which never comes while the started agent holds a write end.
err=$(python3 - "$PGKEEP" "$PGKEEP_CONF" <<'EOF'
import subprocess, sys
try:
    r = subprocess.run(["runuser", "-u", "postgres", "--", sys.argv[1], "--config", sys.argv[2],
                        "-v", "-v", "list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    print(r.returncode, r.stderr.decode())
except subprocess.TimeoutExpired:
    print("hung: the pipes stayed open")
EOF
)
like "$err" "^0 " "after a SIGKILL, list run through pipes succeeds and its pipes reach EOF"
like "$err" "key unwrapped with scrypt" "... with scrypt"
like "$err" "key cache agent started" "... starting an agent"
new=$(agent_of "$T/spool")
ok "... and a new agent took the stale socket's place ($new)" \
	sh -c '[ -n "$1" ] && [ "$1" != "$2" ]' sh "$new" "$agent"
timed after-kill2 "$PGKEEP_CONF"
like "$err" "key from the cache" "the next command gets the key from it"

# --------------------------------------------------------------- key_cache = 0

t_mkdir "$T/spool0"
as_pg sh -c 'sed "s|^spool_dir = .*|spool_dir = $2\nkey_cache = 0|" "$1" >"$3"; chmod 600 "$3"' \
	sh "$PGKEEP_CONF" "$T/spool0" "$T/off.conf"
timed off1 "$T/off.conf"
timed off2 "$T/off.conf"
is "$rc" 0 "key_cache = 0: list succeeds"
like "$err" "key unwrapped with scrypt" "... with scrypt every time"
ok "... and no agent, no socket" sh -c '[ ! -e "$1/keycache" ]' sh "$T/spool0"
fails "... no process" agent_of "$T/spool0"

as_pg sh -c 'sed "s|^spool_dir = .*|key_cache = -1|" "$1" >"$2"; chmod 600 "$2"' \
	sh "$PGKEEP_CONF" "$T/bad.conf"
out=$(as_pg "$PGKEEP" --config "$T/bad.conf" list 2>&1)
like "$out" "$T/bad.conf:[0-9]+: key_cache: bad value '-1'" "a bad key_cache names file and line"

# --------------------------------------------------------------- idle exit

t_mkdir "$T/spool2"
as_pg sh -c 'sed "s|^spool_dir = .*|spool_dir = $2\nkey_cache = 2|" "$1" >"$3"; chmod 600 "$3"' \
	sh "$PGKEEP_CONF" "$T/spool2" "$T/short.conf"
timed short1 "$T/short.conf"
short=$(agent_of "$T/spool2")
timed short2 "$T/short.conf"
like "$err" "key from the cache" "key_cache = 2: the next command hits"
start=$(date +%s)
gone "$short"
ok "the agent exits by itself" [ $? -eq 0 ]
waited=$(($(date +%s) - start))
# Seconds, as key_cache = 2 says, not the default's quarter of an hour; the
# margin is for a loaded machine, where waking up can take a while.
cmp_ok "$waited" -lt 30 "within seconds of its last use ($waited s)"
ok "and takes its socket with it" [ ! -e "$T/spool2/keycache/agent.sock" ]

# --------------------------------------------------------------- another user

# Root's own agent, then the way to its socket opened: the agent must refuse.
# Root's own passphrase file and repository: root takes no secret from
# postgres's files and acts as postgres in postgres's repository.
mkdir -m 700 "$T/rootspool"
cp "$T/passphrase" "$T/rootspool/pass"
cp -a "$T/repo" "$T/rootrepo" && chown -R root:root "$T/rootrepo"
sed -e "s|^spool_dir = .*|spool_dir = $T/rootspool|" \
	-e "s|^passphrase_file = .*|passphrase_file = $T/rootspool/pass|" \
	-e "s|^path = .*|path = $T/rootrepo|" "$PGKEEP_CONF" >"$T/root.conf"
chmod 600 "$T/root.conf" "$T/rootspool/pass"
"$PGKEEP" --config "$T/root.conf" -v -v list >/dev/null 2>"$T/root.err"
like "$(cat "$T/root.err")" "key cache agent started" "root's command starts root's agent"
rootagent=$(agent_of "$T/rootspool")
chmod 711 "$T/rootspool" "$T/rootspool/keycache"
chmod 777 "$T/rootspool/keycache/agent.sock"
ask='import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
try:
    s.sendall(b"PGK1G" + bytes(71))
    data = s.recv(64)
except OSError:
    data = b""
print(len(data), data[:1].decode(errors="replace"))'
is "$(python3 -c "$ask" "$T/rootspool/keycache/agent.sock")" "33 M" \
	"root asking for an unknown id gets an answer: a miss"
is "$(runuser -u postgres -- python3 -c "$ask" "$T/rootspool/keycache/agent.sock")" "0 " \
	"postgres reaching root's socket gets no answer at all"
kill -TERM "$rootagent"
gone "$rootagent"
ok "SIGTERM ends an agent" [ $? -eq 0 ]
ok "... which removes its socket" [ ! -e "$T/rootspool/keycache/agent.sock" ]

# The test's other agents leave with their sockets when $T goes.
done_testing

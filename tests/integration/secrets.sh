#!/bin/sh
# Secrets stay secret: with a known passphrase and known S3 and B2 keys (and
# an S3 session token) in
# the config, every output, log and process listing the run produces is
# searched for them (pgkeep's stdout and stderr at debug level, the server
# logs with archive_command and restore_command output, /proc cmdline and
# environ of a running pgkeep and its children, the repository's files, the
# recovery settings restore writes).  Also: a config holding a secret that
# others can read is refused; TLS certificates are verified by default (s3
# and b2 against a self-signed HTTPS server); a restore run as root becomes
# the data directory's owner, or refuses when that is root.

. "${top_srcdir:-.}/tests/lib/integration.sh"

PASS=Pk-Test-Passphrase-7d1f3b9a
WRONG=Wrong-Passphrase-19e3c4aa
S3SECRET=S3-Secret-Key-b7e4f09c2a
S3TOKEN=S3-Session-Token-3e8a1b7c
B2KEY=B2-App-Key-5c8e1d2f77
L=$T/logs
t_mkdir "$L"
n_log=0

# logged NAME CMD...: run CMD, its stdout and stderr kept in $L/NAME.*; sets rc.
logged() {
	local name=$1
	shift
	"$@" >"$L/$name.out" 2>"$L/$name.err"
	rc=$?
	n_log=$((n_log + 1))
}

# --------------------------------------------------------------- set-up

as_pg sh -c 'umask 077; printf "%s\n" "$1" >"$2"' sh "$PASS" "$T/passphrase"
pg_init "$T/pg"
pgkeep_conf
# A self-signed HTTPS server for the TLS checks.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" \
	>/dev/null 2>&1 || bail_out "cannot make a certificate"
tls_port=$(free_port)
openssl s_server -quiet -accept "127.0.0.1:$tls_port" -cert "$T/tls.crt" -key "$T/tls.key" -www \
	>/dev/null 2>&1 </dev/null &
tls_pid=$!
at_exit "kill $tls_pid"
as_pg sh -c 'cat >>"$1"' sh "$PGKEEP_CONF" <<EOF

[repo:s3]
plugin = s3
endpoint = https://127.0.0.1:$tls_port
bucket = pgkeep
uri_style = path
access_key_id = AKIDTESTKEY
secret_access_key = $S3SECRET
session_token = $S3TOKEN
retries = 0
connect_timeout = 5

[repo:b2]
plugin = b2
api_url = https://127.0.0.1:$tls_port
key_id = b2keyid
application_key = $B2KEY
bucket = pgkeep
retry_max = 1
connect_timeout = 5
EOF
logged init pgkeep_run -v init --kdf-n 1024
is "$rc" 0 "init with a passphrase file and secrets in the config"

pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF -v -v wal-push %p'"
pg_start
psql_q "create table t as select g from generate_series(1, 50000) g" || bail_out "create table"

# --------------------------------------------------------------- /proc of a running pgkeep

PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $TEST_REPO_PATH\ndelay_ms = 60" pgkeep_conf "$T/slow.conf"
as_pg sh -c 'cat >>"$1"' sh "$T/slow.conf" <<EOF

[repo:s3]
plugin = s3
endpoint = https://127.0.0.1:$tls_port
bucket = pgkeep
access_key_id = AKIDTESTKEY
secret_access_key = $S3SECRET
EOF
rm -f "$T/pid"
(as_pg sh -c 'echo $$ >"$1"; exec "$2" --config "$3" -v backup --type=base' sh "$T/pid" \
	"$PGKEEP" "$T/slow.conf" >"$L/slow-backup.out" 2>"$L/slow-backup.err") &
waiter=$!
wait_until 300 test -s "$T/pid"
pid=$(cat "$T/pid")
snaps=0
n=0
# Sample the process and any children while it runs.
while kill -0 "$pid" 2>/dev/null && [ $n -lt 20 ]; do
	for p in "$pid" $(pgrep -P "$pid"); do
		if cat "/proc/$p/cmdline" >"$L/proc.$p.$n.cmdline" 2>/dev/null &&
			cat "/proc/$p/environ" >"$L/proc.$p.$n.environ" 2>/dev/null; then
			snaps=$((snaps + 1))
		fi
	done
	n=$((n + 1))
	sleep 0.1
done
wait "$waiter"
is "$?" 0 "a (slowed down) base backup succeeds"
cmp_ok "$snaps" -ge 4 "/proc cmdline and environ sampled while it ran ($snaps samples)"
ok "no pg_basebackup among the samples: pgkeep takes the base backup itself" \
	sh -c '! grep -q pg_basebackup "$@"' sh $(ls "$L"/proc.*.cmdline)

# --------------------------------------------------------------- the usual commands, verbose

logged dump pgkeep_run -v backup --type=dump
is "$rc" 0 "dump backup"
psql_q "insert into t select g from generate_series(50001, 60000) g"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
wait_archived "$last" || bail_out "archiving did not reach $last"
logged list pgkeep_run -v list
logged info pgkeep_run -v info --json
logged verify pgkeep_run -v verify --read-data
is "$rc" 0 "verify --read-data"
logged check pgkeep_run -v check
logged fetch-missing pgkeep_run -v wal-fetch 0000000100000099000000FF "$T/nothing"
is "$rc" 1 "wal-fetch of a missing segment exits 1"
as_pg sh -c 'umask 077; printf "%s\n" "$1" >"$2"' sh "$WRONG" "$T/wrong-pass"
as_pg sh -c 'sed "s|^passphrase_file = .*|passphrase_file = $2|" "$1" >"$3"; chmod 600 "$3"' sh \
	"$PGKEEP_CONF" "$T/wrong-pass" "$T/wrong.conf"
logged wrong as_pg "$PGKEEP" --config "$T/wrong.conf" -v info
cmp_ok "$rc" -ne 0 "a wrong passphrase is refused"
like "$(cat "$L/wrong.err")" "passphrase" "... saying it is the passphrase"

# --------------------------------------------------------------- TLS on by default

logged s3-tls pgkeep_run -v --repo s3 info
cmp_ok "$rc" -ne 0 "s3: a self-signed HTTPS endpoint without ca_file is refused"
like "$(cat "$L/s3-tls.err")" "[Cc]ertificate|SSL" "... for its certificate"
logged b2-tls pgkeep_run -v --repo b2 info
cmp_ok "$rc" -ne 0 "b2: a self-signed HTTPS api_url is refused"
like "$(cat "$L/b2-tls.err")" "[Cc]ertificate|SSL" "... for its certificate"

# --------------------------------------------------------------- config readable by others

chmod 644 "$PGKEEP_CONF"
logged open-conf pgkeep_run info
cmp_ok "$rc" -ne 0 "a config with secrets and mode 0644 is refused"
like "$(cat "$L/open-conf.err")" "$PGKEEP_CONF holds a secret .* accessible by group or others \\(owner postgres, mode 0644\\); chmod 600" \
	"... naming the file, its owner, the mode and the fix"
chmod 600 "$PGKEEP_CONF"

# --------------------------------------------------------------- restore as root

logged root-restore "$PGKEEP" --config "$PGKEEP_CONF" -v restore latest --pgdata "$T/restored" \
	--archive-mode off
is "$rc" 0 "restore run as root succeeds"
is "$(stat -c %U "$T/restored")" postgres "the data directory it made belongs to postgres"
is "$(find "$T/restored" ! -user postgres | wc -l)" 0 "and so does every file in it"
like "$(cat "$L/root-restore.err")" "running as postgres" "it says it ran as postgres"
port=$(free_port)
as_pg "$PG_BINDIR/pg_ctl" -D "$T/restored" -l "$T/restored.log" -w -t 300 \
	-o "-p $port -c unix_socket_directories=$SOCKDIR" start >/dev/null 2>&1
# pg_ctl -w returns at consistency; the archive is replayed to its end after.
wait_recovered "$port"
rows=$(as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$port" -d postgres -c "select count(*) from t")
as_pg "$PG_BINDIR/pg_ctl" -D "$T/restored" -m fast -w stop >/dev/null 2>&1
is "$rows" 60000 "the restored cluster recovers through restore_command to every row"

mkdir -m 755 "$T/rootdir"
logged root-refused "$PGKEEP" --config "$PGKEEP_CONF" restore latest --pgdata "$T/rootdir/new"
cmp_ok "$rc" -ne 0 "restore as root into a root-owned directory is refused"
like "$(cat "$L/root-refused.err")" "restore as root: $T/rootdir is owned by root" \
	"... with a clear message"
ok "... before creating anything" [ ! -e "$T/rootdir/new" ]

# --------------------------------------------------------------- nothing leaked

# Everything the run wrote: command output, server logs, /proc samples, the
# repository's objects, the restored recovery settings.
grep_secret() {
	grep -rlaF -e "$PASS" -e "$WRONG" -e "$S3SECRET" -e "$S3TOKEN" -e "$B2KEY" "$@" 2>/dev/null
}
places="$L $PGDATA.log $T/restored.log $TEST_REPO_PATH $T/restored/postgresql.auto.conf
$T/restored/postgresql.conf"
cmp_ok "$(find $places -type f | wc -l)" -ge 20 "searched $(find $places -type f | wc -l) files"
like "$(grep -c 'wal-push\|archive' "$PGDATA.log")" "^[1-9]" \
	"the server log holds archive_command's debug output"
like "$(grep -c 'wal-fetch\|restored log file' "$T/restored.log")" "^[1-9]" \
	"the restored server's log holds restore_command's output"
leaks=$(grep_secret $places)
is "$leaks" "" "no secret in any output, log, /proc sample or stored object"
# The check itself can see a secret where one is.
printf 'x %s y\n' "$S3SECRET" >"$T/canary"
is "$(grep_secret "$T/canary")" "$T/canary" "(the search does find a planted secret)"

done_testing

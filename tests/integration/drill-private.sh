#!/bin/sh
# pgkeep drill keeps its scratch cluster to itself: while it runs, nothing
# listens on TCP, another user (nobody) is refused over TCP and over the
# socket, and even root, who can reach the socket, is refused by the drill's
# own pg_hba.conf; the drill's user gets in.  The refused connections log
# FATAL lines, and the drill still passes: its verdict comes from the server.
#
# A stand-in pg_ctl (through PGKEEP_PG_BINDIR) holds the drill once the
# server has started, until the probes are done.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pg_init "$T/pg"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "init" pgkeep_init
pg_start
psql_q "create table t as select g from generate_series(1, 1000) g" ||
	bail_out "create table failed"
out=$(pgkeep_run backup --type=base 2>&1) || { diag "$out"; bail_out "backup failed"; }
psql_q "insert into t select g from generate_series(1001, 2000) g"
psql_q "select pg_switch_wal()" >/dev/null

BIN=$T/bin
t_mkdir "$BIN"
cat >"$BIN/pg_ctl" <<EOF
#!/bin/bash
"$PG_BINDIR/pg_ctl" "\$@"
rc=\$?
case " \$* " in
*" start "*)
	prev=
	for a in "\$@"; do [ "\$prev" = -D ] && data=\$a; prev=\$a; done
	if [ \$rc -eq 0 ]; then
		printf '%s\n' "\$data" >"$T/drill.data.tmp" && mv "$T/drill.data.tmp" "$T/drill.data"
		n=0
		while [ ! -e "$T/drill.go" ] && [ \$n -lt 1200 ]; do sleep 0.1; n=\$((n + 1)); done
	fi
	;;
esac
exit \$rc
EOF
chmod 755 "$BIN/pg_ctl"
chown -R postgres:postgres "$BIN"
at_exit "touch '$T/drill.go'"

as_pg env PGKEEP_PG_BINDIR="$BIN" "$PGKEEP" --config "$PGKEEP_CONF" drill --dir "$T" --keep \
	--timeout 600 >"$T/drill.out" 2>&1 &
drill=$!
n=0
until [ -e "$T/drill.data" ]; do
	n=$((n + 1))
	if [ $n -gt 1200 ] || ! kill -0 "$drill" 2>/dev/null; then
		diag "$(cat "$T/drill.out")"
		bail_out "the drill's server did not start"
	fi
	sleep 0.1
done
data=$(cat "$T/drill.data")
pid=$(sed -n 1p "$data/postmaster.pid")
port=$(sed -n 4p "$data/postmaster.pid")
sock=$(sed -n 5p "$data/postmaster.pid")
diag "drill server: pid $pid, port $port, socket directory $sock"

is "$(ss -Hltnp | grep -c "pid=$pid,")" 0 "the drill's server listens on no TCP port"
is "$(stat -c '%a %U' "$sock")" "700 postgres" "its socket directory is private"
fails "nobody cannot connect over TCP to 127.0.0.1" \
	runuser -u nobody -- "$PG_BINDIR/psql" -XAtq -w -h 127.0.0.1 -p "$port" -U postgres \
	-d postgres -c "select 1"
fails "nobody cannot connect over TCP to localhost" \
	runuser -u nobody -- "$PG_BINDIR/psql" -XAtq -w -h localhost -p "$port" -U postgres \
	-d postgres -c "select 1"
fails "nobody cannot connect over the socket" \
	runuser -u nobody -- "$PG_BINDIR/psql" -XAtq -w -h "$sock" -p "$port" -U postgres \
	-d postgres -c "select 1"
run "$PG_BINDIR/psql" -XAtq -w -h "$sock" -p "$port" -U postgres -d postgres -c "select 1"
cmp_ok "$rc" -ne 0 "root, who can reach the socket, is refused as postgres"
like "$err" "authentication failed" "... by the drill's pg_hba.conf"
is "$(as_pg "$PG_BINDIR/psql" -XAtq -w -h "$sock" -p "$port" -U postgres -d postgres \
	-c "show listen_addresses")" "" "the drill's user gets in, and listen_addresses is empty"
like "$(cat "$(dirname "$data")/postgresql.log")" "FATAL: .*authentication failed" \
	"the refused connections logged FATAL lines"

touch "$T/drill.go"
wait "$drill"
rc=$?
out=$(cat "$T/drill.out")
is "$rc" 0 "the drill passes all the same"
diag "$out"
like "$out" "recovered in [0-9.]+ s" "it recovered"
like "$out" "[0-9]+ database\(s\) answered" "and checked the databases"

done_testing

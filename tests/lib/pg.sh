# The test directory and PostgreSQL clusters for pgkeep's integration tests:
# a private directory removed at exit, clusters run as the postgres user on
# free ports, SQL, and waiting for the archiver.  Sourced by
# tests/lib/integration.sh after tests/lib/tap.sh; needs root.
#
# Sourcing creates the test directory and installs the exit trap.  On exit
# (also on failure or interruption) registered cleanups run (last first),
# every cluster started here is stopped, and the directory is removed unless
# KEEP_TEST_DIR is set (its path is then printed as a diag line).
#
# Variables:
#   T                  the test directory (postgres's, 0700; root writes there too)
#   PGDATA, PGPORT     the current cluster (pg_init / pg_use)
#   SOCKDIR            the clusters' unix socket directory (short path)
#
# Directories and processes:
#   t_mkdir DIR...          mkdir -p, owned by postgres (0700)
#   as_pg CMD...            run CMD as the postgres user (cwd kept)
#   at_exit CMD             run the shell command CMD at exit (last first)
#   free_port               print a free TCP port on 127.0.0.1
#
# PostgreSQL (the "current" cluster is the last one pg_init or pg_use named):
#   pg_init DIR [INITDB ARGS...]  initdb (checksums, trust auth) on a free port,
#                                 wal_level=replica, archive_mode=on
#   pg_use DIR              make a cluster made by pg_init current again
#   pg_conf LINE...         append lines to the current postgresql.conf
#   pg_set NAME VALUE       ALTER SYSTEM SET NAME = 'VALUE', reload, and wait
#                           until a new session sees VALUE: the postmaster has
#                           taken it and signalled the archiver along
#   pg_setting_is NAME VALUE  a new session sees NAME = VALUE (for wait_until
#                           after a reload)
#   pg_start / pg_stop      start (waits) / stop (fast) the current cluster
#   psql_q [SQL]            run SQL as postgres in database postgres, -XAtq;
#                           with no argument, read SQL from stdin
#   psql_db DB SQL          the same in database DB
#   pg_sysid [DIR]          the cluster's system identifier (pg_controldata)
#   verify_manifest DIR     a restored directory matches its backup_manifest
#   pg_log_tail [N]         diag the last N lines of the current server log
#   pg_start_restored DIR   start a directory pgkeep restored on a free port
#                           (stopped at exit), make it current and
#                           wait_recovered; 1 (with its log) on failure
#   wait_recovered [PORT]   wait until the cluster on PORT (default the
#                           current one) answers and is out of recovery; 1
#                           after ten minutes
#
# The archiver (deadlines only bound a hang: they are minutes, never a
# measure of speed):
#   wait_archived SEG [SECS]  wait until the archiver has archived segment
#                           SEG (or a later one); 1 after SECS (default 300)
#   archive_current_wal [SECS]  switch to a new segment and wait_archived the
#                           one just closed; 1 after SECS
#
# Environment: PG_BINDIR (client and server programs), and optionally
# PGKEEP_TEST_PG_SERVER_BINDIR: server programs (initdb, pg_ctl, postgres) of
# another major version, e.g. /var/cache/pgkeep-test/pg-17/bin; the client
# programs stay PG_BINDIR's, and PG_BINDIR then names a directory of links
# joining both.

: "${PG_BINDIR:?PG_BINDIR must name the PostgreSQL bindir (run through make check)}"
# The current cluster is whatever pg_init / pg_use chose, never the caller's.
unset PGPORT PGDATA

t_cleanups=""
t_clusters=""

# ---------------------------------------------------------------- directories, cleanup

as_pg() {
	runuser -u postgres -- "$@"
}

t_mkdir() {
	mkdir -p "$@" && chown postgres:postgres "$@" && chmod 700 "$@"
}

at_exit() {
	# Newest first, so later set-up is torn down before what it depends on.
	t_cleanups="$1
$t_cleanups"
}

t_cleanup() {
	local status=$? cmd d old_ifs=$IFS
	set +e
	trap - EXIT INT TERM HUP
	IFS='
'
	for cmd in $t_cleanups; do
		IFS=$old_ifs
		eval "$cmd" </dev/null >/dev/null 2>&1
	done
	IFS=$old_ifs
	for d in $t_clusters; do
		if [ -f "$d/postmaster.pid" ]; then
			as_pg "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
		fi
	done
	if [ -n "${KEEP_TEST_DIR:-}" ]; then
		diag "test directory kept: $T"
	else
		rm -rf "$T"
	fi
	exit "$status"
}

free_port() {
	# Bind port 0 and report what the kernel picked; it is not reused at once.
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

require_root
id postgres >/dev/null 2>&1 || skip_all "needs a postgres user to run the clusters"
# mktemp under /tmp, not $TMPDIR: the socket path must stay short.
T=$(mktemp -d /tmp/pgkeep-test.XXXXXX) || bail_out "cannot create a test directory"
t_mkdir "$T"
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
SOCKDIR=$T/s
t_mkdir "$SOCKDIR"
if [ -n "${PGKEEP_TEST_PG_SERVER_BINDIR:-}" ]; then
	for f in initdb pg_ctl postgres; do
		[ -x "$PGKEEP_TEST_PG_SERVER_BINDIR/$f" ] ||
			bail_out "PGKEEP_TEST_PG_SERVER_BINDIR has no $f"
	done
	# initdb and pg_ctl find postgres and share/ through their links.
	t_mkdir "$T/pgbin"
	ln -s "$PG_BINDIR"/* "$T/pgbin/"
	for f in initdb pg_ctl postgres; do
		ln -sf "$PGKEEP_TEST_PG_SERVER_BINDIR/$f" "$T/pgbin/$f"
	done
	PG_BINDIR=$T/pgbin
	diag "server: $("$PG_BINDIR/postgres" --version)"
fi

# ---------------------------------------------------------------- PostgreSQL

pg_use() {
	PGDATA=$1
	PGPORT=$(cat "$1.port") || bail_out "$1 was not made by pg_init"
}

pg_init() {
	local dir=$1 port
	shift
	# The socket path is $SOCKDIR/.s.PGSQL.PORT and must fit in sun_path.
	[ ${#SOCKDIR} -lt 80 ] || bail_out "socket directory $SOCKDIR is too long"
	[ -d "$(dirname "$dir")" ] || t_mkdir "$(dirname "$dir")"
	as_pg "$PG_BINDIR/initdb" -D "$dir" --data-checksums -A trust -U postgres "$@" \
		>"$T/initdb.$(basename "$dir").log" 2>&1 ||
		bail_out "initdb $dir failed: $(tail -n 5 "$T/initdb.$(basename "$dir").log")"
	t_clusters="$t_clusters $dir"
	port=$(free_port) || bail_out "no free port"
	printf '%s\n' "$port" >"$dir.port"
	cat >>"$dir/postgresql.conf" <<EOF2
# pgkeep test settings
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCKDIR'
wal_level = replica
archive_mode = on
EOF2
	pg_use "$dir"
}

pg_conf() {
	printf '%s\n' "$@" >>"$PGDATA/postgresql.conf"
}

pg_setting_is() {
	[ "$(psql_q "show $1")" = "$2" ]
}

pg_set() {
	psql_q "alter system set $1 = '$2'" >/dev/null &&
		psql_q "select pg_reload_conf()" >/dev/null &&
		wait_until 300 pg_setting_is "$1" "$2"
}

pg_start() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PGDATA.log" -w -t 300 start >/dev/null ||
		bail_out "cannot start the cluster in $PGDATA: $(tail -n 5 "$PGDATA.log")"
}

pg_stop() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 300 stop >/dev/null
}

psql_q() {
	if [ $# -gt 0 ]; then
		as_pg "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" \
			-d postgres -c "$1"
	else
		as_pg "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" \
			-d postgres
	fi
}

# psql_db DB SQL: one statement (or several, in one transaction) in DB.
psql_db() {
	as_pg "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" -d "$1" -c "$2"
}

pg_sysid() {
	"$PG_BINDIR/pg_controldata" -D "${1:-$PGDATA}" |
		sed -n 's/^Database system identifier: *//p'
}

# verify_manifest DIR: pg_verifybackup -n on a restored directory; for a
# manifest newer than PG_BINDIR's pg_verifybackup reads (version 2, from
# PostgreSQL 17 on), the same checks by verify-manifest.py.
verify_manifest() {
	if grep -q '"PostgreSQL-Backup-Manifest-Version": 1,' "$1/backup_manifest"; then
		as_pg "$PG_BINDIR/pg_verifybackup" -q -n "$1"
	else
		/usr/bin/python3 "${top_srcdir:-.}/tests/integration/verify-manifest.py" "$1" >/dev/null
	fi
}

pg_log_tail() {
	[ -f "$PGDATA.log" ] && diag "last lines of $PGDATA.log:" "$(tail -n "${1:-20}" "$PGDATA.log")"
	return 0
}

t_promoted() {
	[ "$(as_pg "$PG_BINDIR/psql" -XAtq -h "$SOCKDIR" -p "$1" -d postgres \
		-c "select pg_is_in_recovery()" 2>/dev/null)" = f ]
}

wait_recovered() {
	wait_until 600 t_promoted "${1:-$PGPORT}"
}

pg_start_restored() {
	local dir=$1 port
	port=$(free_port) || bail_out "no free port"
	printf '%s\n' "$port" >"$dir.port"
	t_clusters="$t_clusters $dir"
	as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -l "$dir.log" -o "-p $port" -w -t 300 start \
		>/dev/null || { diag "$(tail -n 20 "$dir.log")"; return 1; }
	pg_use "$dir"
	wait_recovered || { diag "$(tail -n 20 "$dir.log")"; return 1; }
}

# A failed test shows the current server's log (tap.sh's done_testing).
t_failure_diag() {
	[ -n "${PGDATA:-}" ] && pg_log_tail 30
	return 0
}

# ---------------------------------------------------------------- the archiver

# The archiver reports the last file it archived; a name with a suffix
# (.partial, .backup) counts as its segment.
t_archived_past() {
	[ "$(psql_q "select coalesce(left(last_archived_wal, 24) >= '$1', false) from pg_stat_archiver")" = t ]
}

wait_archived() {
	wait_until "${2:-300}" t_archived_past "$1"
}

archive_current_wal() {
	local seg
	# A record first: a switch with nothing written since the last one is a
	# no-op (PostgreSQL 18 shows it), and its segment would never be archived.
	psql_q "select pg_logical_emit_message(false, 'pgkeep-test', 'switch')" >/dev/null || return 1
	seg=$(psql_q "select pg_walfile_name(pg_switch_wal())") || return 1
	wait_archived "$seg" "${1:-300}"
}

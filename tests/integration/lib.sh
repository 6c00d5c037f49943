# Shell library for pgkeep's integration tests: a private test directory,
# PostgreSQL clusters run as the postgres user, a pgkeep config and repository,
# and TAP output.  Source it from a test script (POSIX sh; bash works too):
#
#   . "$top_srcdir/tests/integration/lib.sh"
#
# Sourcing creates the test directory and installs the exit trap; nothing
# else happens until a function is called.  Everything is undone on exit,
# also when a test fails or is interrupted: registered cleanups run (last
# first), every cluster started here is stopped, and the directory is removed
# unless KEEP_TEST_DIR is set (its path is then printed as a diag line).
#
# Environment (exported by `make check`, see Makefile.am):
#   PGKEEP                  the pgkeep binary under test
#   PG_BINDIR               PostgreSQL server programs (initdb, pg_ctl, ...)
#   PGKEEP_TEST_PLUGIN_DIR  where the built plugins are (plugin_dir)
# Optional:
#   PGKEEP_TEST_REPO_CONF   body of the repository section; "\n" escapes are
#                           expanded, e.g. "plugin = s3\nendpoint = ...".
#                           Default: a local repository in $T/repo.
#   PGKEEP_TEST_HOOKS       a shell file sourced at the end of this library,
#                           to override hooks (repo_corrupt_object) for a
#                           non-local repository.
#   KEEP_TEST_DIR           keep the test directory for a post-mortem.
#   PGKEEP_TEST_PG_SERVER_BINDIR
#                           server programs (initdb, pg_ctl, postgres) of
#                           another major version, e.g. /var/cache/pgkeep-test/
#                           pg-17/bin from contrib/fetch-test-postgres.sh; the
#                           client programs stay PG_BINDIR's.  PG_BINDIR then
#                           names a directory of links joining both.
#
# Variables set here:
#   T                  the test directory (postgres's, 0700; root writes there too)
#   TEST_REPO_PATH     the local repository's directory ("" when not local)
#   PGKEEP_CONF        the config file written by pgkeep_conf
#   PGDATA, PGPORT     the current cluster (pg_init / pg_use)
#   SOCKDIR            the clusters' unix socket directory (short path)
#
# Directories:
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
#   pg_start / pg_stop      start (waits) / stop (fast) the current cluster
#   psql_q SQL              run SQL as postgres in database postgres, -XAtq;
#                           with no argument, read SQL from stdin
#   pg_sysid [DIR]          the cluster's system identifier (pg_controldata)
#   verify_manifest DIR     a restored directory matches its backup_manifest
#   pg_log_tail [N]         diag the last N lines of the current server log
#
# pgkeep:
#   pgkeep_conf [FILE [PASSFILE]]  write a config (default $PGKEEP_CONF) with
#                           a random passphrase in PASSFILE (default
#                           $T/passphrase, created if absent), plugin_dir, and
#                           one repository "test" from PGKEEP_TEST_REPO_CONF;
#                           when a cluster is current (after pg_init), also
#                           conninfo and pgdata pointing at it
#   pgkeep_run ARGS...      run "$PGKEEP --config $PGKEEP_CONF ARGS" as postgres
#   pgkeep_init             pgkeep_run init --kdf-n 1024 (fast scrypt), stdout to stderr
#   repo_is_local           true when the repository is the default local one
#   repo_corrupt_object KEY flip one byte in the middle of stored object KEY
#                           (hook: local only here; override for other stores)
#
# TAP (the plan is printed at the end):
#   ok DESC CMD...          pass when CMD exits 0
#   fails DESC CMD...       pass when CMD exits non-zero
#   is GOT WANT DESC        string equality
#   cmp_ok GOT OP WANT DESC numeric test: OP is -eq -ne -lt -le -gt -ge
#   like GOT ERE DESC       GOT matches the extended regular expression
#   pass DESC / fail DESC   record a result directly
#   diag MSG                a comment line
#   bail_out MSG            abort the whole test (TAP "Bail out!")
#   done_testing            print the plan; exit 1 when anything failed

set -u

: "${PGKEEP:?PGKEEP must name the pgkeep binary (run through make check)}"
: "${PG_BINDIR:?PG_BINDIR must name the PostgreSQL bindir (run through make check)}"
PGKEEP_TEST_PLUGIN_DIR=${PGKEEP_TEST_PLUGIN_DIR:-}
# The current cluster is whatever pg_init / pg_use chose, never the caller's.
unset PGPORT PGDATA
PGKEEP_TEST_REPO_CONF=${PGKEEP_TEST_REPO_CONF:-}

t_count=0
t_failed=0
t_cleanups=""
t_clusters=""

# ---------------------------------------------------------------- TAP

t_result() {
	# $1: 0 for pass; $2: description
	t_count=$((t_count + 1))
	if [ "$1" -eq 0 ]; then
		printf 'ok %d - %s\n' "$t_count" "$2"
	else
		t_failed=$((t_failed + 1))
		printf 'not ok %d - %s\n' "$t_count" "$2"
	fi
	return "$1"
}

pass() { t_result 0 "$1"; }
fail() { t_result 1 "$1"; }

diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

ok() {
	local desc=$1
	shift
	if "$@"; then t_result 0 "$desc"; else t_result 1 "$desc"; fi
}

fails() {
	local desc=$1
	shift
	if "$@"; then t_result 1 "$desc"; else t_result 0 "$desc"; fi
}

is() {
	if [ "$1" = "$2" ]; then
		t_result 0 "$3"
	else
		t_result 1 "$3"
		diag "   got: '$1'" "  want: '$2'"
		return 1
	fi
}

cmp_ok() {
	if [ "$1" "$2" "$3" ] 2>/dev/null; then
		t_result 0 "$4"
	else
		t_result 1 "$4"
		diag "   got: '$1'" "  want: $2 '$3'"
		return 1
	fi
}

like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		t_result 0 "$3"
	else
		t_result 1 "$3"
		diag "   got: '$1'" "  want match: /$2/"
		return 1
	fi
}

bail_out() {
	printf 'Bail out! %s\n' "$*"
	exit 1
}

done_testing() {
	printf '1..%d\n' "$t_count"
	if [ "$t_failed" -ne 0 ]; then
		diag "$t_failed of $t_count failed"
		[ -n "${PGDATA:-}" ] && pg_log_tail 30
		exit 1
	fi
	exit 0
}

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
TEST_REPO_PATH=""
PGKEEP_CONF=$T/pgkeep.conf

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
	cat >>"$dir/postgresql.conf" <<EOF
# pgkeep test settings
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCKDIR'
wal_level = replica
archive_mode = on
EOF
	pg_use "$dir"
}

pg_conf() {
	printf '%s\n' "$@" >>"$PGDATA/postgresql.conf"
}

pg_start() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PGDATA.log" -w -t 60 start >/dev/null ||
		bail_out "cannot start the cluster in $PGDATA: $(tail -n 5 "$PGDATA.log")"
}

pg_stop() {
	as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
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

# ---------------------------------------------------------------- pgkeep

pgkeep_conf() {
	local conf=${1:-$PGKEEP_CONF} passfile=${2:-$T/passphrase} body
	if [ ! -f "$passfile" ]; then
		as_pg sh -c 'umask 077; od -An -tx1 -N24 /dev/urandom | tr -d " \n" >"$1"' \
			sh "$passfile" || bail_out "cannot write $passfile"
	fi
	if [ -n "$PGKEEP_TEST_REPO_CONF" ]; then
		body=$(printf '%b' "$PGKEEP_TEST_REPO_CONF")
	else
		TEST_REPO_PATH=$T/repo
		body="plugin = local
path = $TEST_REPO_PATH"
	fi
	# With a current cluster, the config points at it.
	local pgconf=""
	if [ -n "${PGPORT:-}" ]; then
		pgconf="conninfo = host=$SOCKDIR port=$PGPORT dbname=postgres
pgdata = $PGDATA"
	fi
	# The test's own spool, so nothing is left outside $T.
	[ -d "$T/spool" ] || t_mkdir "$T/spool"
	as_pg sh -c 'umask 077; cat >"$1"' sh "$conf" <<EOF || bail_out "cannot write $conf"
[global]
repo = test
passphrase_file = $passfile
plugin_dir = $PGKEEP_TEST_PLUGIN_DIR
spool_dir = $T/spool
$pgconf

[repo:test]
$body
EOF
}

# run CMD...: sets rc, out (stdout) and err (stderr).
run() {
	out=$("$@" 2>"$T/run.err")
	rc=$?
	err=$(cat "$T/run.err")
}

# psql_db DB SQL: one statement (or several, in one transaction) in DB.
psql_db() {
	as_pg "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" -d "$1" -c "$2"
}

# Recent minor releases wrap a plain dump in \restrict KEY ... \unrestrict KEY
# with a random key per run: not content, so not compared.
unrestrict() {
	sed '/^\\restrict /d; /^\\unrestrict /d'
}

pgkeep_run() {
	as_pg "$PGKEEP" --config "$PGKEEP_CONF" "$@"
}

pgkeep_init() {
	# Its report goes to stderr, out of the TAP stream.
	pgkeep_run init --kdf-n 1024 >&2
}

repo_is_local() {
	[ -n "$TEST_REPO_PATH" ]
}

# Hook: a store-specific test overrides this (PGKEEP_TEST_HOOKS).
repo_corrupt_object() {
	local f=$TEST_REPO_PATH/$1 size
	repo_is_local || return 1
	[ -f "$f" ] || return 1
	size=$(stat -c %s "$f")
	# XOR one byte in the middle with 0x01, in place.
	python3 - "$f" "$((size / 2))" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 1]))
EOF
}

if [ -n "${PGKEEP_TEST_HOOKS:-}" ]; then
	. "$PGKEEP_TEST_HOOKS"
fi

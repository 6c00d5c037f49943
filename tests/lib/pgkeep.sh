# pgkeep itself in the integration tests: a config and repository in the
# test directory, running pgkeep as postgres, capturing a command's outcome,
# and damaging a stored object whatever the store.  Sourced by
# tests/lib/integration.sh after tests/lib/pg.sh.
#
# Variables:
#   PGKEEP_CONF        the config file written by pgkeep_conf
#   TEST_REPO_PATH     the local repository's directory ("" when not local)
#   rc, out, err       set by run
#
#   pgkeep_conf [FILE [PASSFILE]]  write a config (default $PGKEEP_CONF) with
#                           a random passphrase in PASSFILE (default
#                           $T/passphrase, created if absent), plugin_dir, and
#                           one repository "test" from PGKEEP_TEST_REPO_CONF;
#                           when a cluster is current (after pg_init), also
#                           conninfo and pgdata pointing at it
#   pgkeep_run ARGS...      run "$PGKEEP --config $PGKEEP_CONF ARGS" as postgres
#   pgkeep_init             pgkeep_run init --kdf-n 1024 (fast scrypt), stdout to stderr
#   run CMD...              run CMD; set rc, out (its stdout), err (its stderr)
#   unrestrict              filter: drop pg_dump's \restrict lines (random keys)
#   repo_is_local           true when the repository is the default local one
#   repo_corrupt_object KEY flip one byte in the middle of stored object KEY,
#                           in whichever store the test runs against
#   flip_middle_byte FILE   XOR the middle byte of FILE with 1, in place
#
# Environment: PGKEEP (the binary), PGKEEP_TEST_PLUGIN_DIR (plugin_dir), and
# PGKEEP_TEST_REPO_CONF: the body of the repository section, "\n" escapes
# expanded (e.g. "plugin = s3\nendpoint = ..."); default a local repository
# in $T/repo.  Tests may set it for one pgkeep_conf call to write a config of
# another repository; to run a whole test against another store, see
# tests/lib/stores.sh (PGKEEP_TEST_STORE).

: "${PGKEEP:?PGKEEP must name the pgkeep binary (run through make check)}"
PGKEEP_TEST_PLUGIN_DIR=${PGKEEP_TEST_PLUGIN_DIR:-}
PGKEEP_TEST_REPO_CONF=${PGKEEP_TEST_REPO_CONF:-}
TEST_REPO_PATH=""
PGKEEP_CONF=$T/pgkeep.conf

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
	as_pg sh -c 'umask 077; cat >"$1"' sh "$conf" <<EOF2 || bail_out "cannot write $conf"
[global]
repo = test
passphrase_file = $passfile
plugin_dir = $PGKEEP_TEST_PLUGIN_DIR
spool_dir = $T/spool
$pgconf

[repo:test]
$body
EOF2
}

pgkeep_run() {
	as_pg "$PGKEEP" --config "$PGKEEP_CONF" "$@"
}

pgkeep_init() {
	# Its report goes to stderr, out of the TAP stream.
	pgkeep_run init --kdf-n 1024 >&2
}

run() {
	out=$("$@" 2>"$T/run.err")
	rc=$?
	err=$(cat "$T/run.err")
}

# Recent minor releases wrap a plain dump in \restrict KEY ... \unrestrict KEY
# with a random key per run: not content, so not compared.
unrestrict() {
	sed '/^\\restrict /d; /^\\unrestrict /d'
}

repo_is_local() {
	[ -n "$TEST_REPO_PATH" ]
}

flip_middle_byte() {
	[ -f "$1" ] || return 1
	/usr/bin/python3 - "$1" <<'PY'
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

# Size and mtime stay as they were, so only reading the content notices.
repo_corrupt_object() {
	case ${PGKEEP_TEST_STORE:-local} in
	local) repo_is_local && flip_middle_byte "$TEST_REPO_PATH/$1" ;;
	*) store_corrupt_object "$1" ;;
	esac
}

#!/bin/sh
# Peak memory of `pgkeep backup --type=base` on a database of 1 GB or more
# (pgbench), and of the restore that follows.  Not a test: it prints numbers.
#
#   contrib/bench/backup-memory.sh [BUILDDIR] [SCALE]
#
# BUILDDIR is a configured and built tree (default: .) with pgkeep and the
# local plugin; SCALE is the pgbench scale (default 70, about 1.05 GB).
# Run as root (PostgreSQL runs as the postgres user); needs GNU time
# (/usr/bin/time, Debian package `time`).  The memory budget at default
# settings is 100 MiB.

set -u
BUILD=$(cd "${1:-.}" && pwd)
SCALE=${2:-70}
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
PGKEEP=$BUILD/pgkeep
PGKEEP_TEST_PLUGIN_DIR=$BUILD/plugins/.libs
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
export top_srcdir PGKEEP PGKEEP_TEST_PLUGIN_DIR PG_BINDIR
[ -x /usr/bin/time ] || { echo "GNU time is missing (apt-get install time)" >&2; exit 1; }

. "$top_srcdir/tests/lib/integration.sh"

# measure WHAT CMD...: run CMD as postgres under GNU time, print the figures.
measure() {
	local what=$1 t0 t1
	shift
	t0=$(date +%s%3N)
	as_pg /usr/bin/time -v -o "$T/time.out" "$@" >"$T/cmd.out" 2>&1 ||
		{ cat "$T/cmd.out"; bail_out "$what failed"; }
	t1=$(date +%s%3N)
	rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$T/time.out")
	printf '%-28s %8.1f s   peak RSS %6d KiB (%.1f MiB)\n' "$what" \
		"$(echo "($t1 - $t0) / 1000" | bc -l)" "$rss" "$(echo "$rss / 1024" | bc -l)"
}

pg_init "$T/pg1"
pgkeep_conf
pgkeep_init >/dev/null 2>&1 || bail_out "pgkeep init failed"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '4GB'" "checkpoint_timeout = '30min'"
pg_start
echo "pgbench -i -s $SCALE ..."
as_pg "$PG_BINDIR/pgbench" -i -q -s "$SCALE" -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
psql_q "checkpoint"
echo "database: $(psql_q "select pg_size_pretty(pg_database_size('postgres'))"), jobs: default"

measure "backup --type=base" "$PGKEEP" --config "$PGKEEP_CONF" backup --type=base
sed -n 2p "$T/cmd.out"
measure "second backup (deduplicated)" "$PGKEEP" --config "$PGKEEP_CONF" backup --type=base
sed -n 2p "$T/cmd.out"
measure "restore --pgdata" "$PGKEEP" --config "$PGKEEP_CONF" restore latest \
	--pgdata "$T/restored" --target-immediate
echo "repository: $(du -sh "$TEST_REPO_PATH" | cut -f1)"

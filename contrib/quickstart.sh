#!/bin/sh
# pgkeep, end to end, on a scratch PostgreSQL 15 cluster: build and install
# pgkeep, create a cluster that archives its WAL with `pgkeep wal-push`,
# initialise a local repository, show WAL archived, take a base backup and a
# dump, write rows, restore to a moment between them and show that exactly
# the rows committed before it came back.
# Run as root on Debian 12.  Everything lives under one directory (default
# /var/tmp/pgkeep-quickstart), which a second run starts afresh.
#
#   contrib/quickstart.sh [DIR]
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
top=${1:-/var/tmp/pgkeep-quickstart}
pgbin=/usr/lib/postgresql/15/bin

say() { printf '\n== %s\n' "$*"; }
as_pg() { runuser -u postgres -- "$@"; }

say "installing build dependencies and building pgkeep"
"$src/contrib/setup-debian.sh"
cd "$src"
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p build && cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null
make install >/dev/null
ldconfig
pgkeep=$(command -v pgkeep)
echo "installed $pgkeep ($("$pgkeep" --version))"

say "preparing $top"
if [ -f "$top/pgdata/postmaster.pid" ]; then
	as_pg "$pgbin/pg_ctl" -D "$top/pgdata" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$top"
mkdir -p "$top"
chown postgres:postgres "$top"
chmod 700 "$top"
port=54329
while ss -ltn 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done

# The config: one local repository, the passphrase in a file only postgres reads.
as_pg sh -c "umask 077; head -c 24 /dev/urandom | base64 > '$top/passphrase'"
as_pg sh -c "umask 077; cat > '$top/pgkeep.conf'" <<CONF
[global]
repo = local
passphrase_file = $top/passphrase
compression = zstd:3
pgdata = $top/pgdata
conninfo = host=$top port=$port dbname=postgres

[repo:local]
plugin = local
path = $top/repo
CONF
conf=$top/pgkeep.conf

say "initialising the repository"
as_pg "$pgkeep" --config "$conf" init

say "creating a scratch cluster on port $port that archives with pgkeep"
as_pg "$pgbin/initdb" -D "$top/pgdata" --data-checksums -A trust >/dev/null
cat >> "$top/pgdata/postgresql.conf" <<PGCONF
listen_addresses = ''
unix_socket_directories = '$top'
port = $port
wal_level = replica
archive_mode = on
wal_keep_size = '1GB'
archive_command = '$pgkeep --config $conf wal-push %p'
PGCONF
as_pg "$pgbin/pg_ctl" -D "$top/pgdata" -l "$top/postgres.log" -w start >/dev/null
psql() { as_pg /usr/bin/psql -h "$top" -p "$port" -d postgres -XAtq "$@"; }

say "writing data and switching WAL segments"
psql -c "create table quickstart(id int primary key, note text)"
for i in 1 2 3 4 5; do
	psql -c "insert into quickstart select g, md5(g::text) from generate_series($i*1000, $i*1000+999) g" \
	     -c "select pg_switch_wal()" >/dev/null
done
last=$(psql -c "select pg_walfile_name(pg_current_wal_lsn())")
psql -c "select pg_switch_wal()" >/dev/null
i=0
until [ "$(psql -c "select last_archived_wal >= '$last' from pg_stat_archiver")" = t ]; do
	i=$((i + 1))
	[ $i -lt 300 ] || { echo "quickstart: WAL did not reach the repository; see $top/postgres.log" >&2; exit 1; }
	sleep 0.1
done

say "archive status (pg_stat_archiver)"
psql -c "select 'archived: ' || archived_count || ', failed: ' || failed_count || ', last: ' || last_archived_wal from pg_stat_archiver"

say "WAL in the repository $top/repo"
find "$top/repo/wal" -type f | sort | sed "s|$top/repo/||"
n=$(find "$top/repo/wal" -type f | wc -l)

say "fetching one back with wal-fetch and comparing it with pg_wal"
as_pg "$pgkeep" --config "$conf" wal-fetch "$last" "$top/fetched"
cmp "$top/fetched" "$top/pgdata/pg_wal/$last" && echo "$last: identical"

say "taking a base backup and a dump"
as_pg "$pgkeep" --config "$conf" backup --type=base
as_pg "$pgkeep" --config "$conf" backup --type=dump

say "writing rows, one transaction each, and choosing a moment between them"
psql -c "create table orders(id int primary key, placed timestamptz default clock_timestamp())"
for i in 1 2 3 4 5; do psql -c "insert into orders(id) values ($i)"; sleep 0.3; done
sleep 1
target=$(psql -c "select now()")
sleep 1
for i in 6 7 8; do psql -c "insert into orders(id) values ($i)"; sleep 0.3; done
echo "rows 1-5 were committed before $target, rows 6-8 after it"
# Archive the segment holding the last commits, so recovery can reach past the target.
seg=$(psql -c "select pg_walfile_name(pg_switch_wal())")
until [ "$(psql -c "select last_archived_wal >= '$seg' from pg_stat_archiver")" = t ]; do sleep 0.1; done

say "the backups in the repository"
as_pg "$pgkeep" --config "$conf" list

say "restoring the base backup to $target in $top/restored"
as_pg "$pgkeep" --config "$conf" restore latest --pgdata "$top/restored" \
	--target-time "$target" --archive-mode off
rport=$((port + 1))
while ss -ltn 2>/dev/null | grep -q ":$rport "; do rport=$((rport + 1)); done
as_pg "$pgbin/pg_ctl" -D "$top/restored" -l "$top/restored.log" -w \
	-o "-p $rport -c unix_socket_directories=$top" start >/dev/null
until [ "$(as_pg /usr/bin/psql -h "$top" -p "$rport" -d postgres -XAtqc 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do
	sleep 0.2
done
rows=$(as_pg /usr/bin/psql -h "$top" -p "$rport" -d postgres -XAtqc "select string_agg(id::text, ',' order by id) from orders")
echo "restored cluster (port $rport) has orders: $rows"
as_pg "$pgbin/pg_ctl" -D "$top/restored" -m fast stop >/dev/null
if [ "$rows" != "1,2,3,4,5" ]; then
	echo "quickstart: the restore does not match the target: $rows" >&2
	exit 1
fi
echo "exactly the rows committed before the target: point-in-time restore works"

say "checking every backup can be read back (verify --read-data)"
as_pg "$pgkeep" --config "$conf" verify --read-data

say "done: WAL archived, a base backup and a dump taken, a point-in-time restore checked; all in $top/repo"
echo "the cluster is still running: $pgbin/pg_ctl -D $top/pgdata stop (as postgres) stops it"

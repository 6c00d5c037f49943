#!/bin/sh
# What one `pgkeep wal-push` call costs when PostgreSQL's archiver drives it:
#   contrib/bench/wal-push-start.sh BUILD_DIR [PG_BINDIR]
# Prints hyperfine figures for a segment that is already stored (spool hit,
# and without the spool: key unwrap + compare), then segments/s for a burst
# of 100 ready segments pushed one call per segment, as the archiver does.
# Run as root (PostgreSQL then runs as postgres) or as an ordinary user.
# BENCH_KDF_N sets the scrypt cost of the repository (default 32768, init's).
# BENCH_OLD=1 writes no wal_push_ahead / spool_dir keys (for binaries before them).
set -eu
build=${1:?usage: wal-push-start.sh BUILD_DIR [PG_BINDIR]}
pgbin=${2:-/usr/lib/postgresql/15/bin}
build=$(cd "$build" && pwd)
pgkeep=$build/pgkeep
plugins=${BENCH_PLUGIN_DIR:-$build/plugins/.libs}
kdf_n=${BENCH_KDF_N:-32768}
nburst=${BENCH_SEGMENTS:-100}
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 2; }

d=$(mktemp -d /tmp/pgkeep-bench.XXXXXX)
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$d"
	as() { runuser -u postgres -- "$@"; }
else
	as() { "$@"; }
fi
cleanup() {
	[ -f "$d/pg/postmaster.pid" ] && as "$pgbin/pg_ctl" -D "$d/pg" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$d"
}
trap cleanup EXIT INT TERM

conf() { # FILE AHEAD
	extra=""
	[ -n "${BENCH_OLD:-}" ] || extra="wal_push_ahead = $2
spool_dir = $d/spool"
	as sh -c 'umask 077; cat >"$1"' sh "$1" <<EOF
[global]
repo = bench
passphrase_file = $d/pass
plugin_dir = $plugins
$extra

[repo:bench]
plugin = local
path = $d/repo
EOF
}
as sh -c 'umask 077; od -An -tx1 -N24 /dev/urandom | tr -d " \n" >"$1"' sh "$d/pass"
conf "$d/ahead.conf" 8
conf "$d/single.conf" 0
as "$pgkeep" --config "$d/ahead.conf" init --kdf-n "$kdf_n" >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as "$pgbin/initdb" -D "$d/pg" -A trust -U postgres >/dev/null
cat >>"$d/pg/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$d'
port = $port
wal_level = replica
archive_mode = on
archive_command = ''
max_wal_size = '4GB'
EOF
# An empty archive_command keeps the .ready files: the backlog of a burst.
as "$pgbin/pg_ctl" -D "$d/pg" -l "$d/pg.log" -w start >/dev/null
i=0
echo "create table f(n int, t text);" | as "$pgbin/psql" -XAtq -h "$d" -p "$port" -d postgres
while [ $i -lt "$nburst" ]; do
	echo "insert into f select g, md5(g::text) from generate_series(1, 20000) g;"
	echo "select pg_switch_wal();"
	i=$((i + 1))
done | as "$pgbin/psql" -XAtq -h "$d" -p "$port" -d postgres >/dev/null
as "$pgbin/pg_ctl" -D "$d/pg" -m fast -w stop >/dev/null

cd "$d/pg"
# pgkeep runs as the invoking user (root reads postgres's files), so that
# no runuser start-up is counted.
seg=pg_wal/000000010000000000000001
seg2=pg_wal/000000010000000000000002
"$pgkeep" --config "$d/single.conf" wal-push "$seg"
echo "== one call for a segment already stored (scrypt N=$kdf_n)"
if [ -z "${BENCH_OLD:-}" ]; then
	# The call for segment 1 pushes 2.. ahead and records them; the call
	# for segment 2 then finds its record.
	hyperfine -N -w 3 -r 40 -n "spool hit" \
		--prepare "$pgkeep --config $d/ahead.conf wal-push $seg" \
		"$pgkeep --config $d/ahead.conf wal-push $seg2"
fi
hyperfine -N -w 2 -r 15 -n "no spool (unwrap the key, compare)" \
	"$pgkeep --config $d/single.conf wal-push $seg"
echo "== the floor: process start, pgkeep --version"
hyperfine -N -w 3 -r 40 "$pgkeep --version"

echo "== a burst of $nburst ready segments, one call each as the archiver makes them"
status=$d/pg/pg_wal/archive_status
total=$(ls "$status" | grep -c '\.ready$')
t0=$(date +%s%N)
for r in $(ls "$status" | grep '\.ready$' | sort); do
	name=${r%.ready}
	"$pgkeep" --config "$d/ahead.conf" wal-push "pg_wal/$name" || { echo "push of $name failed" >&2; exit 1; }
	mv "$status/$r" "$status/$name.done"
done
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
echo "$total files in $ms ms: $(( total * 1000 / (ms ? ms : 1) )) files/s"

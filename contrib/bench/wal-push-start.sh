#!/bin/sh
# What one `pgkeep wal-push` call costs when PostgreSQL's archiver drives it:
#   contrib/bench/wal-push-start.sh BUILD_DIR [PG_BINDIR]
# Prints hyperfine figures for a segment that is already stored (spool hit,
# and without the spool: key unwrap + compare), then segments/s for a burst
# of 100 ready segments pushed one call per segment, as the archiver does.
# Run as root (everything then runs as postgres) or as an ordinary user.
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
while [ $i -lt "$nburst" ]; do
	echo "create table if not exists f(n int, t text); insert into f select g, md5(g::text) from generate_series(1, 20000) g;"
	echo "select pg_switch_wal();"
	i=$((i + 1))
done | as "$pgbin/psql" -XAtq -h "$d" -p "$port" -d postgres >/dev/null
as "$pgbin/pg_ctl" -D "$d/pg" -m fast -w stop >/dev/null

cd "$d/pg"
seg=pg_wal/000000010000000000000001
as "$pgkeep" --config "$d/single.conf" wal-push "$seg"
echo "== one call for a segment already stored (scrypt N=$kdf_n)"
run_as=""
[ "$(id -u)" = 0 ] && run_as="runuser -u postgres -- "
if [ -z "${BENCH_OLD:-}" ]; then
	# A spool hit: record the segment, then every call finds it.
	hyperfine -N -w 3 -r 40 -n "spool hit" \
		--prepare "${run_as}$pgkeep --config $d/ahead.conf wal-push $seg" \
		"${run_as}$pgkeep --config $d/ahead.conf wal-push $seg"
	hyperfine -N -w 2 -r 15 -n "no spool (unwrap key, compare)" \
		"${run_as}$pgkeep --config $d/single.conf wal-push $seg"
else
	hyperfine -N -w 2 -r 15 -n "already stored" \
		"${run_as}$pgkeep --config $d/single.conf wal-push $seg"
fi
echo "== startup floor: pgkeep --version"
hyperfine -N -w 3 -r 40 "${run_as}$pgkeep --version"

echo "== a burst of the ready segments, one call each as the archiver makes them"
status=$d/pg/pg_wal/archive_status
total=$(ls "$status" | grep -c '\.ready$')
t0=$(date +%s%N)
for r in $(ls "$status" | grep '\.ready$' | sort); do
	name=${r%.ready}
	as "$pgkeep" --config "$d/ahead.conf" wal-push "pg_wal/$name" || { echo "push of $name failed" >&2; exit 1; }
	mv "$status/$r" "$status/$name.done"
done
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
echo "$total files in $ms ms: $(( total * 1000 / (ms ? ms : 1) )) files/s"

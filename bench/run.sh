#!/bin/bash
# pgkeep against pgBackRest, side by side on one machine and one cluster:
# WAL archiving, archive lag under load, base and incremental backups,
# restore, nightly dumps and peak memory; and pgkeep's memory on backups
# with millions of chunks.  See bench/README.md.
#   bench/run.sh [--quick] [--build DIR] [--keep]
# Writes the table to stdout and into bench/RESULTS.md (between the markers).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
quick=0
keep=0
build=${PGKEEP_BUILD:-}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--keep) keep=1 ;;
	--build) build=$2; shift ;;
	--build=*) build=${1#--build=} ;;
	-h|--help) sed -n '2,6p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# Measured is pgkeep's own BASE_BACKUP client: never a test stand-in.
unset PGKEEP_TEST_BASEBACKUP_PROGRAM
python=/usr/bin/python3
[ -x "$python" ] || python=python3
pgbin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
results=${BENCH_RESULTS:-$here/RESULTS.md}
if [ $quick = 1 ]; then
	scale=${BENCH_SCALE:-10} nseg=${BENCH_SEGMENTS:-40} lag_secs=${BENCH_LAG_SECS:-15}
	dump_scale=${BENCH_DUMP_SCALE:-3}
else
	scale=${BENCH_SCALE:-50} nseg=${BENCH_SEGMENTS:-200} lag_secs=${BENCH_LAG_SECS:-45}
	dump_scale=${BENCH_DUMP_SCALE:-10}
fi
jobs=2
# Phases to run (for trying one part): wal lag base dump rss scale
phases=${BENCH_PHASES:-wal lag base dump rss scale}
# Chunk entries of the scale phase's two synthetic dumps.
scale_sizes=${BENCH_SCALE_SIZES:-100000 2000000}
# Every phase but scale runs against a cluster and compares with pgBackRest.
need_cluster=0
for p in $phases; do [ "$p" = scale ] || need_cluster=1; done

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL and both tools then run as postgres)"
id postgres >/dev/null 2>&1 || die "no postgres user: apt-get install postgresql-15"
[ -x "$pgbin/initdb" ] || die "no PostgreSQL 15 in $pgbin: apt-get install postgresql-15 (or set PG_BINDIR)"
tools="/usr/bin/time python3"
[ $need_cluster = 0 ] || tools="pgbackrest pgbench hyperfine zstd $tools"
for tool in $tools; do
	command -v $tool >/dev/null ||
		die "$tool is missing: apt-get install pgbackrest postgresql-client-15 hyperfine time zstd python3"
done

# pgkeep: a build tree (--build or $PGKEEP_BUILD), else the installed one.
if [ -n "$build" ]; then
	[ -f "$build/pgkeep" ] || die "no pgkeep in $build (build it first: make pgkeep plugins/local.la)"
	[ -f "$build/plugins/.libs/local.so" ] || die "no local plugin in $build/plugins/.libs"
	case " $phases " in *" scale "*)
		[ -x "$build/bench/scale_dump" ] ||
			die "no bench/scale_dump in $build (build it first: make bench/scale_dump)" ;;
	esac
else
	case " $phases " in *" scale "*) die "the scale phase needs a build tree: --build DIR" ;; esac
	command -v pgkeep >/dev/null || die "no pgkeep: pass --build BUILD_DIR or install it"
fi

d=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pgkeep-bench.XXXXXX")
chmod 755 "$d"
chown postgres: "$d"
pgdata=$d/pg
as() { runuser -u postgres -- "$@"; }
cleanup() {
	local pidfile
	for pidfile in "$d"/pg/postmaster.pid; do
		[ -f "$pidfile" ] && as "$pgbin/pg_ctl" -D "$d/pg" -m immediate -w stop >/dev/null 2>&1
	done
	if [ $keep = 1 ]; then
		echo "work directory kept: $d" >&2
	else
		rm -rf "$d"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copies the postgres user can run, whatever the build directory's modes.
as mkdir -p "$d/bin" "$d/plugins" "$d/time" "$d/out"
if [ -n "$build" ]; then
	install -o postgres -m 755 "$build/pgkeep" "$d/bin/pgkeep"
	install -o postgres -m 755 "$build/plugins/.libs/local.so" "$d/plugins/local.so"
	[ ! -x "$build/bench/scale_dump" ] || install -o postgres -m 755 "$build/bench/scale_dump" "$d/bin/scale_dump"
	plugin_line="plugin_dir = $d/plugins"
else
	install -o postgres -m 755 "$(command -v pgkeep)" "$d/bin/pgkeep"
	plugin_line=""
fi
pgkeep=$d/bin/pgkeep

log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
# Seconds between two now() values, with millisecond precision.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
fmt() { awk -v x="$1" -v p="${2:-2}" 'BEGIN { printf "%.*f", p, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
mb() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1e6 }'; }
# Bytes under a directory (apparent sizes), 0 when it is absent.
bytes() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }

# Figures, kept in one file as NAME=VALUE lines for the table at the end.
R=$d/figures
: >"$R"
put() { echo "$1=$2" >>"$R"; log "$1 = $2"; }
get() { awk -F= -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "-" : v) }' "$R"; }

# Run a command as postgres under /usr/bin/time -v; sets T_WALL (s), T_RSS (KiB).
# The RSS is the largest of the command and the children it waited for
# (pg_basebackup, pg_dump), never their sum.
timed() {
	local label=$1 may_fail=0; shift
	[ "$label" != -k ] || { may_fail=1; label=$1; shift; }
	T_STATUS=0
	as /usr/bin/time -v -o "$d/time/$label" "$@" >"$d/out/$label.out" 2>"$d/out/$label.err" ||
		T_STATUS=$?
	if [ $T_STATUS != 0 ]; then
		cat "$d/out/$label.out" "$d/out/$label.err" | grep -v '^\s*Command exited' | tail -n 5 >&2
		[ $may_fail = 1 ] || die "$label failed: $*"
	fi
	T_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
		for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$d/time/$label")
	T_RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$d/time/$label")
	rss_note "$label" "$T_RSS"
}
rss_note() { echo "$1 $2" >>"$d/rss"; }

# ---------------------------------------------------------------- cluster

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
psql_() { as "$pgbin/psql" -XAtq -h "$d" -p "$port" -U postgres "$@"; }
sql() { psql_ -d "${DB:-bench}" -c "$1"; }
pg_start() { as "$pgbin/pg_ctl" -D "$pgdata" -l "$d/pg.log" -w -t 120 start >/dev/null; }
pg_stop() { as "$pgbin/pg_ctl" -D "$pgdata" -m fast -w -t 300 stop >/dev/null; }
status_dir() { echo "$pgdata/pg_wal/archive_status"; }
nready() { find "$(status_dir)" -name '*.ready' | wc -l; }
set_archive() {
	psql_ -d postgres -c "alter system set archive_command = \$\$$1\$\$" -c "select pg_reload_conf()" >/dev/null
	sleep 0.5
}
# Wait until the archiver has nothing left (or fail after $2 seconds).
wait_drained() {
	local limit=${1:-600} t0=$SECONDS
	psql_ -d postgres -c "select pg_switch_wal()" >/dev/null
	while [ "$(nready)" -gt 0 ]; do
		[ $((SECONDS - t0)) -lt "$limit" ] || die "archiving did not drain within $limit s (see $d/pg.log)"
		sleep 0.2
	done
}

if [ $need_cluster = 1 ]; then
log "work directory $d, port $port, scale $scale, $nseg segments"
as "$pgbin/initdb" -D "$pgdata" -A trust -U postgres --data-checksums >/dev/null
cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$d'
port = $port
wal_level = replica
archive_mode = on
archive_command = ''
max_wal_size = '8GB'
checkpoint_timeout = '5min'
shared_buffers = '256MB'
synchronous_commit = off
log_checkpoints = off
EOF
pg_start
psql_ -d postgres -c "create database bench" >/dev/null
log "pgbench -i -s $scale"
as pgbench -i -q -s "$scale" -h "$d" -p "$port" -U postgres bench >/dev/null 2>&1
sql "create table bench_log (id bigserial primary key, at timestamptz, account int, amount numeric, note text)"

# A write load with realistic WAL: pgbench's TPC-B-like transactions and
# bulk inserts of rows that are not blank padding.
cat >"$d/bulk.sql" <<'EOF'
\set n random(1, 100000000)
INSERT INTO bench_log (at, account, amount, note) SELECT now(), (:n + g) % 5000000, round((random() * 10000)::numeric, 2), 'payment ' || md5((:n + g)::text) || ' ref ' || (:n::bigint * g) % 999983 FROM generate_series(1, 400) g;
EOF
chmod 644 "$d/bulk.sql"
load() { # SECONDS
	as pgbench -n -h "$d" -p "$port" -U postgres -c 3 -j 3 -T "$1" \
		-b tpcb-like@1 -f "$d/bulk.sql@2" bench >"$d/out/pgbench.$2" 2>&1 ||
		die "pgbench failed: $(grep -m1 error "$d/out/pgbench.$2")"
}
fi

# ---------------------------------------------------------------- repositories

passfile=$d/pgkeep.pass
as sh -c 'umask 077; od -An -tx1 -N24 /dev/urandom | tr -d " \n" >"$1"' sh "$passfile"
pgkeep_conf() { # NAME [INIT ARGS]: config $d/NAME.conf for repository $d/repo-NAME
	as mkdir -m 700 -p "$d/spool-$1"
	as sh -c 'umask 077; cat >"$1"' sh "$d/$1.conf" <<EOF
[global]
repo = $1
passphrase_file = $passfile
$plugin_line
compression = zstd:3
jobs = $jobs
pgdata = $pgdata
conninfo = host=$d port=$port user=postgres dbname=bench
spool_dir = $d/spool-$1
archive_timeout = 120

[repo:$1]
plugin = local
path = $d/repo-$1
EOF
	as "$pgkeep" --config "$d/$1.conf" init "${@:2}" >/dev/null
}
if [ $need_cluster = 1 ]; then
for n in wal main; do pgkeep_conf $n; done

pgbr_cipher=${BENCH_PGBR_CIPHER:-aes-256-cbc}
pgbr_conf=$d/pgbackrest.conf
as sh -c 'umask 077; cat >"$1"' sh "$pgbr_conf" <<EOF
[global]
compress-type=zst
compress-level=3
process-max=$jobs
start-fast=y
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path=$d/pgbr-lock
spool-path=$d/pgbr-spool
archive-timeout=120
repo1-cipher-type=$pgbr_cipher
$( [ "$pgbr_cipher" = none ] || echo "repo1-cipher-pass=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')" )

[main]
pg1-path=$pgdata
pg1-port=$port
pg1-socket-path=$d
repo1-path=$d/pgbr-main

[walsync]
pg1-path=$pgdata
pg1-port=$port
pg1-socket-path=$d
repo1-path=$d/pgbr-walsync

[walasync]
pg1-path=$pgdata
pg1-port=$port
pg1-socket-path=$d
repo1-path=$d/pgbr-walasync
archive-async=y
EOF
pgbr() { as pgbackrest --config="$pgbr_conf" "$@"; }
for s in main walsync walasync; do pgbr --stanza=$s stanza-create >/dev/null; done

pgkeep_cmd="$pgkeep --config $d/wal.conf wal-push %p"
pgbr_sync_cmd="pgbackrest --config=$pgbr_conf --stanza=walsync archive-push %p"
pgbr_async_cmd="pgbackrest --config=$pgbr_conf --stanza=walasync archive-push %p"
fi

# ---------------------------------------------------------------- WAL archiving

# PostgreSQL's archiver, one call per segment in order, %p relative to
# PGDATA, .ready renamed to .done after each success.
cat >"$d/archiver.sh" <<'EOF'
#!/bin/sh
# archiver.sh STATUS_LIST COMMAND...: COMMAND with %p for each listed segment
set -e
list=$1; shift
cmd=$*
while read -r name; do
	eval "$(printf '%s\n' "$cmd" | sed "s|%p|pg_wal/$name|g")" || { echo "archiving $name failed" >&2; exit 1; }
	mv "pg_wal/archive_status/$name.ready" "pg_wal/archive_status/$name.done"
done <"$list"
EOF
chmod 755 "$d/archiver.sh"

ready_all() { # LIST: mark these segments ready again
	local name
	while read -r name; do
		rm -f "$(status_dir)/$name.done"
		as touch "$(status_dir)/$name.ready"
	done <"$1"
}
done_all() {
	local f
	for f in "$(status_dir)"/*.ready; do
		[ -e "$f" ] && mv "$f" "${f%.ready}.done"
	done
	return 0
}
push_run() { # KEY COMMAND
	local t0 t1
	ready_all "$d/segments"
	sync
	t0=$(now)
	(cd "$pgdata" && as "$d/archiver.sh" "$d/segments" "$2")
	t1=$(now)
	put "$1_secs" "$(elapsed "$t0" "$t1")"
	put "$1_rate" "$(awk -v n="$nseg" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", n / s }')"
}

phase_wal() {
	log "WAL: generating $nseg segments with pgbench"
	psql_ -d bench -c "select pg_switch_wal()" -c "checkpoint" >/dev/null
	done_all
	while [ "$(nready)" -lt "$nseg" ]; do
		load 10 walgen
	done
	pg_stop
	find "$(status_dir)" -name '*.ready' | sed 's|.*/||; s|\.ready$||' | sort | head -n "$nseg" >"$d/segments"
	[ "$(wc -l <"$d/segments")" = "$nseg" ] || die "only $(wc -l <"$d/segments") segments were generated"
	done_all
	put wal_zstd_ratio "$(cd "$pgdata/pg_wal" && head -n 20 "$d/segments" | xargs cat | zstd -3 -c -T1 | wc -c |
		awk -v n=20 '{ printf "%.1f", n * 16777216 / $1 }')"

	log "WAL: pgkeep wal-push, one call per segment"
	push_run pgkeep_push "$pgkeep_cmd"
	# Peak memory of wal-push: the first twenty again into a fresh
	# repository, every call under /usr/bin/time.
	pgkeep_conf rss
	head -n 20 "$d/segments" >"$d/segments20"
	ready_all "$d/segments20"
	(cd "$pgdata" && as "$d/archiver.sh" "$d/segments20" \
		"/usr/bin/time -f %M -a -o $d/rss-walpush $pgkeep --config $d/rss.conf wal-push %p")
	rss_note wal-push "$(sort -n "$d/rss-walpush" | tail -n 1)"
	# The calls hand segments to a background pusher, which /usr/bin/time
	# does not see: it reports its own peak in the spool when it leaves.
	local lock
	for lock in "$d"/spool-rss/push-*/pusher-*.lock; do
		[ -e "$lock" ] && as flock "$lock" true
	done
	rss_note wal-push-pusher "$(cat "$d"/spool-rss/push-*/pusher.stats 2>/dev/null |
		awk '$1 == "max_rss_kib" { print $2 }' | sort -n | tail -n 1)"
	timed wal-fetch "$pgkeep" --config "$d/wal.conf" wal-fetch "$(tail -n 1 "$d/segments")" "$d/out/fetched"
	log "WAL: pgbackrest archive-push (sync)"
	push_run pgbr_sync_push "$pgbr_sync_cmd"
	log "WAL: pgbackrest archive-push (async, process-max=$jobs)"
	push_run pgbr_async_push "$pgbr_async_cmd"
	# Cost of one call for a segment already stored: what every call after
	# a look-ahead costs, and pgBackRest's floor.
	local seg
	seg=pg_wal/$(tail -n 1 "$d/segments")
	(cd "$pgdata" && as hyperfine -N -w 2 -r 15 --export-json "$d/hf-call.json" \
		-n pgkeep "$pgkeep --config $d/wal.conf wal-push $seg" \
		-n pgbackrest "pgbackrest --config=$pgbr_conf --stanza=walsync archive-push $seg" >/dev/null 2>&1)
	put pgkeep_call_ms "$(hf_mean pgkeep "$d/hf-call.json")"
	put pgbr_call_ms "$(hf_mean pgbackrest "$d/hf-call.json")"
	put wal_repo_pgkeep "$(bytes "$d/repo-wal")"
	put wal_repo_pgbr "$(bytes "$d/pgbr-walsync/archive")"
	done_all
	pg_start
}
hf_mean() { # NAME JSON: mean in ms
	"$python" -c 'import json, sys
for r in json.load(open(sys.argv[2]))["results"]:
    if r["command"] == sys.argv[1]:
        print("%.1f" % (r["mean"] * 1000))' "$1" "$2"
}

# ---------------------------------------------------------------- archive lag

phase_lag() {
	local key cmd
	for key in pgkeep pgbr_sync pgbr_async; do
		case $key in
		pgkeep) cmd=$pgkeep_cmd ;;
		pgbr_sync) cmd=$pgbr_sync_cmd ;;
		pgbr_async) cmd=$pgbr_async_cmd ;;
		esac
		set_archive "$cmd"
		wait_drained
		sql "truncate bench_log" >/dev/null
		sql "checkpoint" >/dev/null
		wait_drained
		log "lag: $lag_secs s of pgbench with archive_command = $key"
		local lsn0 lsn1 max=0 n t0 t_end pid
		lsn0=$(sql "select pg_current_wal_lsn()")
		t0=$(now)
		load "$lag_secs" "lag-$key" &
		pid=$!
		while kill -0 $pid 2>/dev/null; do
			n=$(nready)
			[ "$n" -le "$max" ] || max=$n
			sleep 0.25
		done
		wait $pid || die "pgbench failed (see $d/out/pgbench.lag-$key)"
		t_end=$(now)
		lsn1=$(sql "select pg_current_wal_lsn()")
		while :; do
			n=$(nready)
			[ "$n" -le "$max" ] || max=$n
			[ "$n" -gt 0 ] || break
			[ "$(elapsed "$t_end" "$(now)" | cut -d. -f1)" -lt 900 ] || die "$key: archive did not drain in 900 s"
			sleep 0.1
		done
		put "lag_${key}_max_ready" "$max"
		put "lag_${key}_drain_secs" "$(fmt "$(elapsed "$t_end" "$(now)")" 1)"
		put "lag_${key}_wal_mb_s" "$(sql "select round(pg_wal_lsn_diff('$lsn1', '$lsn0') / 1e6 / $(elapsed "$t0" "$t_end"), 1)")"
		put "lag_${key}_tps" "$(awk '/^tps/ { print int($3) }' "$d/out/pgbench.lag-$key")"
	done
	sql "truncate bench_log" >/dev/null
}

# ---------------------------------------------------------------- base backups and restore

pgkeep_backup_bytes() { echo $(($(bytes "$d/repo-main") - $(bytes "$d/repo-main/wal"))); }
pgbr_last_delta() { # repository bytes the newest pgBackRest backup added
	pgbr --stanza=main info --output=json |
		"$python" -c 'import json, sys; print(json.load(sys.stdin)[0]["backup"][-1]["info"]["repository"]["delta"])'
}
# One backup of each tool; KEY names the figures.
backup_pair() { # KEY PGBR_TYPE
	local before
	set_archive "$pgkeep --config $d/main.conf wal-push %p"
	wait_drained
	before=$(pgkeep_backup_bytes)
	log "backup ($1): pgkeep"
	timed "pgkeep_backup_$1" "$pgkeep" --config "$d/main.conf" backup --type=base
	put "pgkeep_$1_secs" "$T_WALL"
	put "pgkeep_$1_bytes" $(($(pgkeep_backup_bytes) - before))
	put "pgkeep_$1_rss_kib" "$T_RSS"
	set_archive "pgbackrest --config=$pgbr_conf --stanza=main archive-push %p"
	wait_drained
	log "backup ($1): pgbackrest --type=$2"
	timed "pgbr_backup_$1" pgbackrest --config="$pgbr_conf" --stanza=main backup --type="$2"
	put "pgbr_$1_secs" "$T_WALL"
	put "pgbr_$1_bytes" "$(pgbr_last_delta)"
}

# The floor is the mean of three runs; so is each tool's full backup.
# pgBackRest takes two more full backups in its stanza (a full backup copies
# everything again); pgkeep takes each into a fresh repository of its own,
# which would otherwise store nothing new, with WAL archived there.
# Nothing is deleted between timed runs (the scratch directory goes at the
# end): on ext4, a file created soon after many others were deleted can take
# longer to get an inode (without a journal, the allocator steps over inodes
# freed in the last minutes), which would charge one run's clean-up to the
# next run.
full_repeats() {
	local i k pk=$(get pgkeep_full_secs) pb=$(get pgbr_full_secs)
	for i in 2 3; do
		k=full-$i
		pgkeep_conf "$k"
		set_archive "$pgkeep --config $d/$k.conf wal-push %p"
		wait_drained
		log "backup (full, run $i): pgkeep"
		timed "pgkeep_backup_$k" "$pgkeep" --config "$d/$k.conf" backup --type=base
		pk="$pk $T_WALL"
		set_archive "pgbackrest --config=$pgbr_conf --stanza=main archive-push %p"
		wait_drained
		log "backup (full, run $i): pgbackrest --type=full"
		timed "pgbr_backup_$k" pgbackrest --config="$pgbr_conf" --stanza=main backup --type=full
		pb="$pb $T_WALL"
	done
	put pgkeep_full_runs "$pk"
	put pgbr_full_runs "$pb"
	put pgkeep_full_secs "$(echo "$pk" | awk '{ for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }')"
	put pgbr_full_secs "$(echo "$pb" | awk '{ for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }')"
	set_archive "$pgkeep --config $d/main.conf wal-push %p"
	wait_drained
}

phase_base() {
	sql "vacuum analyze" >/dev/null
	sql "checkpoint" >/dev/null
	put db_bytes "$(sql "select pg_database_size('bench')")"
	log "base: raw pg_basebackup to /dev/null (the floor)"
	# The end of a backup waits for its WAL to be archived: let a no-op
	# archive it, so that the floor is pg_basebackup alone.
	set_archive "true"
	wait_drained
	as timeout 600 hyperfine -w 1 -r 3 --export-json "$d/hf-floor.json" -n floor \
		"$pgbin/pg_basebackup -h $d -p $port -U postgres -Ft -D - -X none -c fast > /dev/null" >/dev/null 2>&1
	put floor_secs "$(awk -v ms="$(hf_mean floor "$d/hf-floor.json")" 'BEGIN { printf "%.2f", ms / 1000 }')"
	timed floor_rss "$pgbin/pg_basebackup" -h "$d" -p "$port" -U postgres -Ft -D "$d/out/floor" -X none -c fast
	put floor_rss_kib "$T_RSS"
	rm -rf "$d/out/floor"

	backup_pair full full
	full_repeats
	put full_vs_floor "$(ratio "$(get pgkeep_full_secs)" "$(get floor_secs)")"

	log "restore: pgkeep"
	as mkdir -m 700 "$d/restore-pgkeep" "$d/restore-pgbr"
	timed pgkeep_restore "$pgkeep" --config "$d/main.conf" restore latest --pgdata "$d/restore-pgkeep"
	put pgkeep_restore_secs "$T_WALL"
	log "restore: pgbackrest"
	timed pgbr_restore pgbackrest --config="$pgbr_conf" --stanza=main --pg1-path="$d/restore-pgbr" restore
	put pgbr_restore_secs "$T_WALL"
	put restored_pgkeep_bytes "$(bytes "$d/restore-pgkeep")"
	put restored_pgbr_bytes "$(bytes "$d/restore-pgbr")"
	# Kept until the end, as the repositories above.

	# About 1% of the rows, the most recent ones by key (as most updates
	# are), then 1% appended.
	local n
	n=$((scale * 100000 / 100))
	log "update of $n accounts (1%)"
	sql "update pgbench_accounts set abalance = abalance + 7, filler = md5(aid::text) where aid > $((scale * 100000 - n))" >/dev/null
	sql "vacuum pgbench_accounts" >/dev/null
	backup_pair upd1 incr
	log "append of $n accounts (1%)"
	sql "insert into pgbench_accounts select g, 1 + g % $scale, 0, md5(g::text) from generate_series($((scale * 100000 + 1)), $((scale * 100000 + n))) g" >/dev/null
	backup_pair app1 incr
}

# ---------------------------------------------------------------- nightly dumps

# Seven nights of one database.  KIND recent: each day 1% of the accounts
# with the newest keys are updated, 1% new notes appended and the oldest
# 0.2% deleted (changes where most OLTP changes land).  KIND scattered: the
# same amounts spread uniformly over the tables (the worst case for any
# chunk-level dedup: every 1 MiB of the dump holds a changed row).
dump_week() { # KIND
	local kind=$1 db=dump_$1 day rows t0 t1 pgkeep_s=0 gz_s=0 upd del
	log "dumps ($kind): pgbench -i -s $dump_scale $db, plus a table of notes"
	psql_ -d postgres -c "create database $db" >/dev/null
	as pgbench -i -q -s "$dump_scale" -h "$d" -p "$port" -U postgres "$db" >/dev/null 2>&1
	rows=$((dump_scale * 100000))
	DB=$db sql "create table notes as select g as id, now() - g * interval '1 minute' as at,
		'order ' || md5(g::text) || ' for customer ' || (g::bigint * 7919) % 100003 || ' shipped' as body
		from generate_series(1, $rows) g" >/dev/null
	pgkeep_conf "dump-$kind"
	as mkdir -p "$d/gzip-$kind"
	for day in 1 2 3 4 5 6 7; do
		if [ "$day" -gt 1 ]; then
			if [ "$kind" = recent ]; then
				upd="aid > $((rows - rows / 100))"
				del="id <= $(((day - 1) * rows / 500))"
			else
				upd="aid % 100 = $day"
				del="id % 500 = $day"
			fi
			DB=$db sql "update pgbench_accounts set abalance = abalance + $day where $upd" >/dev/null
			DB=$db sql "insert into notes select g, now(), 'order ' || md5(g::text) || ' day $day'
				from generate_series($((rows + day * rows / 100)), $((rows + (day + 1) * rows / 100 - 1))) g" >/dev/null
			DB=$db sql "delete from notes where $del" >/dev/null
			DB=$db sql "vacuum" >/dev/null
		fi
		t0=$(now)
		as sh -c "'$pgbin/pg_dump' -h '$d' -p $port -U postgres $db | gzip > '$d/gzip-$kind/day$day.sql.gz'"
		t1=$(now)
		gz_s=$(awk -v a="$gz_s" -v b="$(elapsed "$t0" "$t1")" 'BEGIN { print a + b }')
		timed "pgkeep_dump_${kind}_day$day" "$pgkeep" --config "$d/dump-$kind.conf" backup --type=dump --db "$db"
		pgkeep_s=$(awk -v a="$pgkeep_s" -v b="$T_WALL" 'BEGIN { print a + b }')
	done
	put "gzip7_${kind}_bytes" "$(bytes "$d/gzip-$kind")"
	put "pgkeep_dump7_${kind}_bytes" "$(($(bytes "$d/repo-dump-$kind") - $(bytes "$d/repo-dump-$kind/keys")))"
	put "gzip7_${kind}_secs" "$(fmt "$gz_s" 1)"
	put "pgkeep_dump7_${kind}_secs" "$(fmt "$pgkeep_s" 1)"
}

phase_dump() {
	dump_week recent
	dump_week scattered
}

# ---------------------------------------------------------------- peak memory of the other commands

phase_rss() {
	log "rss: restore of a dump, verify, info, expire, copy"
	if [ "$(get gzip7_recent_bytes)" != - ]; then
		timed restore-dump "$pgkeep" --config "$d/dump-recent.conf" restore latest --output "$d/out/dump.out"
		rm -f "$d/out/dump.out"
	fi
	# The main repository's WAL has gaps (archive_command pointed at
	# pgBackRest during its backups), which verify rightly reports.
	timed -k verify-read-data "$pgkeep" --config "$d/main.conf" verify --read-data
	timed info "$pgkeep" --config "$d/main.conf" info
	timed expire "$pgkeep" --config "$d/main.conf" expire --dry-run
	# Every backup of the main repository, and the WAL they need, copied
	# into a fresh one.
	as sh -c 'umask 077; cat "$1" >"$2"; printf "\n[repo:copied]\nplugin = local\npath = %s\n" "$3" >>"$2"' \
		sh "$d/main.conf" "$d/copy.conf" "$d/repo-copied"
	as "$pgkeep" --config "$d/copy.conf" --repo copied init >/dev/null
	timed -k copy "$pgkeep" --config "$d/copy.conf" copy --missing --to copied
}

# ---------------------------------------------------------------- memory at scale

# A dump of n chunk entries (one 256-byte chunk, n times: the store holds one
# chunk, the chunk list n entries) at two sizes; each command that reads it
# is measured on both.  Flat memory means the same figure at both sizes.
scale_cmds="restore verify verify-read-data list info copy expire"
phase_scale() {
	local n id
	as sh -c 'umask 077; cat >"$1"' sh "$d/scale.conf" <<EOF
[global]
passphrase_file = $passfile
$plugin_line
compression = zstd:3
jobs = $jobs
$(for n in $scale_sizes; do
	printf '\n[repo:s%s]\nplugin = local\npath = %s\nkeep_last = 1\n' "$n" "$d/repo-s$n"
	printf '\n[repo:c%s]\nplugin = local\npath = %s\nkeep_last = 1\n' "$n" "$d/repo-c$n"
done)
EOF
	for n in $scale_sizes; do
		log "scale: a dump of $n chunk entries"
		as "$pgkeep" --config "$d/scale.conf" --repo "s$n" init >/dev/null
		as "$pgkeep" --config "$d/scale.conf" --repo "c$n" init >/dev/null
		id=$(as "$d/bin/scale_dump" "$d/scale.conf" "s$n" "$n") || die "scale_dump $n failed"
		timed "scale-restore-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" \
			restore "$id" --output "$d/out/scale.dump"
		[ "$(stat -c %s "$d/out/scale.dump")" = $((n * 256)) ] ||
			die "scale: the restored dump does not have $((n * 256)) bytes"
		rm -f "$d/out/scale.dump"
		timed "scale-verify-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" verify
		timed "scale-verify-read-data-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" verify --read-data
		timed "scale-list-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" list
		timed "scale-info-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" info
		timed "scale-copy-$n" "$pgkeep" --config "$d/scale.conf" copy --from "s$n" --to "c$n" "$id"
		timed "scale-expire-$n" "$pgkeep" --config "$d/scale.conf" --repo "s$n" expire
		rm -rf "$d/repo-s$n" "$d/repo-c$n"
	done
}

scale_table() {
	local cmd n kib wall line
	line="| command |"
	for n in $scale_sizes; do line="$line peak RSS, MiB, $n entries |"; done
	for n in $scale_sizes; do line="$line wall, s, $n |"; done
	echo "$line"
	line="| --- |"
	for n in $scale_sizes; do line="$line ---: | ---: |"; done
	echo "$line"
	for cmd in $scale_cmds; do
		line="| $cmd |"
		for n in $scale_sizes; do
			kib=$(awk -v l="scale-$cmd-$n" '$1 == l { print $2 }' "$d/rss")
			line="$line $(awk -v k="${kib:-0}" 'BEGIN { printf "%.1f", k / 1024 }') |"
		done
		for n in $scale_sizes; do
			wall=-
			[ ! -f "$d/time/scale-$cmd-$n" ] || wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
				n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' \
				"$d/time/scale-$cmd-$n")
			line="$line $wall |"
		done
		echo "$line"
	done
}

# ---------------------------------------------------------------- run

for p in $phases; do
	"phase_$p"
done
[ $need_cluster = 0 ] || pg_stop

# ---------------------------------------------------------------- report

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
disk_dev=$(df --output=source "$d" | tail -n 1)
disk=$(lsblk -ndo NAME,MODEL,ROTA,SIZE "$disk_dev" 2>/dev/null | awk '{ $1 = $1; print }' || true)
pgkeep_ver=$("$pgkeep" --version)
rev=${BENCH_REV:-$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo "unknown")}
rss_max_kib=$(awk '$1 ~ /^(pgkeep_|wal-|restore|verify|info|expire)/ && $2 > m { m = $2 } END { print m + 0 }' "$d/rss")

# A row: what, pgkeep, other, ratio pgkeep/other, target, met?
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
meets() { # VALUE OP LIMIT
	[ "$1" = n/a ] || [ "$1" = - ] && { echo "-"; return; }
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = op == ">=" ? v >= l : v <= l; print ok ? "yes" : "**no**" }'
}
table() {
	local r
	echo "| what | pgkeep | other | ratio | target | met |"
	echo "| --- | ---: | ---: | ---: | --- | --- |"
	if [ "$(get pgkeep_push_rate)" != - ]; then
		r=$(ratio "$(get pgkeep_push_rate)" "$(get pgbr_sync_push_rate)")
		row "WAL push, segments/s, vs pgBackRest sync" "$(get pgkeep_push_rate)" "$(get pgbr_sync_push_rate)" "$r" "≥ 2" "$(meets "$r" ">=" 2)"
		r=$(ratio "$(get pgkeep_push_rate)" "$(get pgbr_async_push_rate)")
		row "WAL push, segments/s, vs pgBackRest async ($jobs processes)" "$(get pgkeep_push_rate)" "$(get pgbr_async_push_rate)" "$r" "≥ 1.2" "$(meets "$r" ">=" 1.2)"
		row "one call for a segment already stored, ms" "$(get pgkeep_call_ms)" "$(get pgbr_call_ms)" "$(ratio "$(get pgkeep_call_ms)" "$(get pgbr_call_ms)")" "" ""
		row "WAL stored, MB ($nseg segments = $(mb $((nseg * 16777216))) MB)" "$(mb "$(get wal_repo_pgkeep)")" "$(mb "$(get wal_repo_pgbr)")" "$(ratio "$(get wal_repo_pgkeep)" "$(get wal_repo_pgbr)")" "" ""
	fi
	if [ "$(get lag_pgkeep_max_ready)" != - ]; then
		for k in pgbr_sync pgbr_async; do
			row "archive lag, max .ready files, vs ${k/pgbr_/pgBackRest }" "$(get lag_pgkeep_max_ready)" "$(get lag_${k}_max_ready)" "" "" ""
			row "archive lag, drain after load, s, vs ${k/pgbr_/pgBackRest }" "$(get lag_pgkeep_drain_secs)" "$(get lag_${k}_drain_secs)" "" "" ""
		done
		row "(load during the lag runs: WAL MB/s)" "$(get lag_pgkeep_wal_mb_s)" "$(get lag_pgbr_sync_wal_mb_s) / $(get lag_pgbr_async_wal_mb_s)" "" "" ""
	fi
	if [ "$(get pgkeep_full_secs)" != - ]; then
		r=$(ratio "$(get pgkeep_full_secs)" "$(get pgbr_full_secs)")
		row "full backup, s, mean of 3 (database $(mb "$(get db_bytes)") MB)" "$(get pgkeep_full_secs)" "$(get pgbr_full_secs)" "$r" "≤ 0.8" "$(meets "$r" "<=" 0.8)"
		r=$(ratio "$(get pgkeep_full_secs)" "$(get floor_secs)")
		row "full backup (pgkeep's BASE_BACKUP client), s, vs raw pg_basebackup -Ft -D - → /dev/null (mean of 3)" "$(get pgkeep_full_secs)" "$(get floor_secs)" "$r" "≤ 1.3" "$(meets "$r" "<=" 1.3)"
		row "full backup, stored MB" "$(mb "$(get pgkeep_full_bytes)")" "$(mb "$(get pgbr_full_bytes)")" "$(ratio "$(get pgkeep_full_bytes)" "$(get pgbr_full_bytes)")" "" ""
		r=$(ratio "$(get pgkeep_restore_secs)" "$(get pgbr_restore_secs)")
		row "restore, s" "$(get pgkeep_restore_secs)" "$(get pgbr_restore_secs)" "$r" "≤ 1" "$(meets "$r" "<=" 1)"
		row "second backup after 1% updated, s (pgBackRest incr)" "$(get pgkeep_upd1_secs)" "$(get pgbr_upd1_secs)" "$(ratio "$(get pgkeep_upd1_secs)" "$(get pgbr_upd1_secs)")" "" ""
		r=$(ratio "$(get pgkeep_upd1_bytes)" "$(get pgbr_upd1_bytes)")
		row "second backup after 1% updated, MB added" "$(mb "$(get pgkeep_upd1_bytes)")" "$(mb "$(get pgbr_upd1_bytes)")" "$r" "≤ 1" "$(meets "$r" "<=" 1)"
		row "next backup after 1% appended, s (pgBackRest incr)" "$(get pgkeep_app1_secs)" "$(get pgbr_app1_secs)" "$(ratio "$(get pgkeep_app1_secs)" "$(get pgbr_app1_secs)")" "" ""
		r=$(ratio "$(get pgkeep_app1_bytes)" "$(get pgbr_app1_bytes)")
		row "next backup after 1% appended, MB added" "$(mb "$(get pgkeep_app1_bytes)")" "$(mb "$(get pgbr_app1_bytes)")" "$r" "≤ 1" "$(meets "$r" "<=" 1)"
	fi
	for k in recent scattered; do
		[ "$(get gzip7_${k}_bytes)" != - ] || continue
		r=$(ratio "$(get pgkeep_dump7_${k}_bytes)" "$(get gzip7_${k}_bytes)")
		row "7 nightly dumps, 1%/day $k, MB stored, vs 7 × pg_dump \\| gzip" "$(mb "$(get pgkeep_dump7_${k}_bytes)")" "$(mb "$(get gzip7_${k}_bytes)")" "$r" "≤ 0.3" "$(meets "$r" "<=" 0.3)"
		row "7 nightly dumps, 1%/day $k, s in all" "$(get pgkeep_dump7_${k}_secs)" "$(get gzip7_${k}_secs)" "$(ratio "$(get pgkeep_dump7_${k}_secs)" "$(get gzip7_${k}_secs)")" "" ""
	done
	r=$(awk -v k="$rss_max_kib" 'BEGIN { printf "%.1f", k / 1024 }')
	row "peak RSS of any pgkeep command, MiB" "$r" "" "" "≤ 64" "$(meets "$r" "<=" 64)"
}
rss_table() {
	echo "| pgkeep command | peak RSS, MiB | wall, s |"
	echo "| --- | ---: | ---: |"
	while read -r label kib; do
		case $label in pgbr_*|floor*|scale-*) continue ;; esac
		local wall="-"
		[ -f "$d/time/$label" ] && wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
			for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$d/time/$label")
		printf '| %s | %.1f | %s |\n' "$label" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" "$wall"
	done <"$d/rss"
	printf '| (pg_basebackup alone, for comparison) | %.1f | |\n' "$(awk -v k="$(get floor_rss_kib)" 'BEGIN { print k / 1024 }')"
}

scale_report() {
	cat <<EOF
<!-- bench:scale:begin (written by bench/run.sh's scale phase; everything outside these markers is kept) -->
## Memory at scale

$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $pgkeep_ver (source $rev), default settings (jobs = $jobs).  A dump backup whose stream is one 256-byte chunk repeated (stored once): its chunk list is long, its data small.  Peak RSS from /usr/bin/time; the same figure at both sizes is memory that does not grow with the chunk list.

$(scale_table)
<!-- bench:scale:end -->
EOF
}

report() {
	cat <<EOF
<!-- bench:begin (written by bench/run.sh; everything outside these markers is kept) -->
## Latest run

$(date -u '+%Y-%m-%d %H:%M UTC'), $( [ $quick = 1 ] && echo "**quick mode**, " )pgbench scale $scale, $nseg WAL segments, lag load ${lag_secs} s, dump database scale $dump_scale.

- machine: $(nproc) cores ($cpu), $mem memory, disk ${disk:-$disk_dev}; $(uname -sr)
- $pgkeep_ver (source $rev); $(pgbackrest version); PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }')
- both tools: zstd level 3, $jobs workers (pgkeep jobs=$jobs, pgBackRest process-max=$jobs); pgkeep AES-256-GCM, pgBackRest cipher $pgbr_cipher; repositories on the same local disk
- WAL compresses $(get wal_zstd_ratio)× with zstd -3 (first 20 segments)$( [ "$(get pgkeep_full_runs)" = - ] || printf '\n- full backups, each run, s: pgkeep %s; pgBackRest %s; raw pg_basebackup: mean of 3 (hyperfine); pgkeep reads the server'\''s BASE_BACKUP stream itself over a replication connection (no pg_basebackup process)' "$(get pgkeep_full_runs)" "$(get pgbr_full_runs)")

Ratios are pgkeep / other: for segments/s higher is better, for seconds and bytes lower is better.

$(table)

Peak memory (from /usr/bin/time -v: the largest of the command and the children it waited for, such as pg_dump; wal-push is the largest of all calls during a burst of ready segments):

$(rss_table)
<!-- bench:end -->
EOF
}
# Replace the section of the results file between the markers $2 and $3 by
# the report in file $1, or append it.
splice() {
	if [ -f "$results" ] && grep -q "^<!-- $2" "$results"; then
		awk -v f="$1" -v b="^<!-- $2" -v e="^<!-- $3" '
			$0 ~ b { while ((getline l < f) > 0) print l; skip = 1; next }
			$0 ~ e { skip = 0; next }
			!skip { print }' "$results" >"$d/results.new"
	elif [ -f "$results" ]; then
		{ cat "$results"; echo; cat "$1"; } >"$d/results.new"
	else
		{ echo "# pgkeep benchmark results"; echo; cat "$1"; } >"$d/results.new"
	fi
	cp "$d/results.new" "$results"
}
if [ $need_cluster = 1 ]; then
	report >"$d/report.md"
	cat "$d/report.md"
	splice "$d/report.md" "bench:begin" "bench:end"
fi
case " $phases " in *" scale "*)
	scale_report >"$d/scale.md"
	cat "$d/scale.md"
	splice "$d/scale.md" "bench:scale:begin" "bench:scale:end" ;;
esac
log "results written to $results"

#!/bin/sh
# Bad days for the store.  A repository on a small tmpfs that fills up during
# a base backup and during WAL archiving: one clear line naming the path and
# the full disk, a non-zero exit, no manifest, no temp file left, and once
# space is freed the next run succeeds and verify --read-data passes.  Then a
# store that fails its Nth call (the fault plugin, counting across
# processes) during backups and wal-push, for several N and error kinds:
# whatever fails, a retry succeeds and the repository verifies; and a store
# that never recovers makes wal-fetch exit above 125 after five attempts.

. "${top_srcdir:-.}/tests/lib/integration.sh"

SIZE_MB=96

# The tmpfs the repository lives on.
FS=$T/small
t_mkdir "$FS"
mount -t tmpfs -o "size=${SIZE_MB}m,mode=0700" tmpfs "$FS" || bail_out "cannot mount a tmpfs on $FS"
at_exit "umount -l $FS"
chown postgres:postgres "$FS"
R=$FS/repo

PGKEEP_TEST_REPO_CONF="plugin = local\npath = $R"
pg_init "$T/pg"
pgkeep_conf
pgkeep_init || bail_out "pgkeep init on the tmpfs failed"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'" \
	"max_wal_size = '1GB'"
pg_start
as_pg "$PG_BINDIR/pgbench" -i -q -s 1 -h "$SOCKDIR" -p "$PGPORT" postgres >/dev/null 2>&1 ||
	bail_out "pgbench -i failed"
# Random bytes do not compress: they are what fills the disk.
psql_q "create table noise(b bytea)"
add_noise() {
	# $1: megabytes
	psql_q "insert into noise select decode(string_agg(md5(random()::text), ''), 'hex')
		from generate_series(1, $1 * 1024 * 1024 / 16) g group by g % $1"
}
add_noise 2

free_kb() { df -k --output=avail "$FS" | tail -n 1 | tr -d ' '; }
# Leave about $1 KiB free on the tmpfs.
fill_to() {
	local avail
	rm -f "$FS/filler"
	avail=$(free_kb)
	[ "$avail" -gt "$1" ] || return 0
	dd if=/dev/zero of="$FS/filler" bs=1024 count=$((avail - $1)) status=none 2>/dev/null
	return 0
}
unfill() { rm -f "$FS/filler"; }
quiet_run() { pgkeep_run "$@" >/dev/null; }
quiet_run_conf() {
	local conf=$1
	shift
	as_pg "$PGKEEP" --config "$conf" "$@" >/dev/null
}
temp_files() { find "$R" -name '*.tmp.*' | wc -l; }
manifests() { find "$R/backups" -type f 2>/dev/null | wc -l; }

# --------------------------------------------------------------- full during a backup

pgkeep_run backup --type=base >/dev/null 2>&1 || bail_out "first backup failed"
before=$(manifests)
add_noise 4
fill_to 1500
pgkeep_run backup --type=base >"$T/out" 2>"$T/err"
rc=$?
cmp_ok "$rc" -ne 0 "a base backup onto a full disk fails"
last=$(tail -n 1 "$T/err")
like "$last" "no space left.*$R/.*No space left on device" \
	"... with one clear line naming the path and the full disk"
diag "$last"
is "$(grep -c 'pgkeep' "$T/err")" 1 "... and no more than that line"
is "$(manifests)" "$before" "no manifest: the failed backup does not exist"
is "$(temp_files)" 0 "no temp file is left on the repository"
unfill
ok "with space again, the next backup succeeds" quiet_run backup --type=base 2>/dev/null
ok "verify --read-data passes" quiet_run verify --read-data

# --------------------------------------------------------------- full during wal-push

failed0=$(psql_q "select failed_count from pg_stat_archiver")
fill_to 1500
add_noise 3
seg=$(psql_q "select pg_walfile_name(pg_switch_wal())")
archive_failed() { [ "$(psql_q "select failed_count > $failed0 from pg_stat_archiver")" = t ]; }
wait_until 300 archive_failed
ok "archive_command fails while the disk is full" \
	[ "$(psql_q "select failed_count > $failed0 from pg_stat_archiver")" = t ]
failing=$(psql_q "select last_failed_wal from pg_stat_archiver")
like "$(grep 'pgkeep: wal-push' "$PGDATA.log" | tail -n 1)" "no space left.*$R/.*No space left on device" \
	"the server log has pgkeep's line naming the path and the full disk"
(cd "$PGDATA" && as_pg "$PGKEEP" --config "$PGKEEP_CONF" wal-push "pg_wal/$failing") >/dev/null 2>"$T/err"
rc=$?
cmp_ok "$rc" -ne 0 "wal-push by hand of $failing fails too"
is "$(wc -l <"$T/err" | tr -d ' ')" 1 "... with one line: $(cat "$T/err")"
ok "no object for $failing is visible" [ ! -e "$R/wal/${failing%????????????????}/$failing" ]
is "$(temp_files)" 0 "no temp file is left"
unfill
ok "with space again, the archiver catches up past $seg" wait_archived "$seg"
t_mkdir "$T/fetch"
ok "the segment that failed is stored complete" \
	sh -c "runuser -u postgres -- '$PGKEEP' --config '$PGKEEP_CONF' wal-fetch '$failing' '$T/fetch/$failing' &&
		[ \$(stat -c %s '$T/fetch/$failing') -eq 16777216 ]"
ok "verify --read-data passes" quiet_run verify --read-data

# --------------------------------------------------------------- a store failing the Nth call

# fault_conf N CODE: the same repository through the fault plugin.
fault_conf() {
	rm -f "$T/fault.state"
	PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $R\nfail_at = $1\nfail_code = $2\nfail_state = $T/fault.state" \
		pgkeep_conf "$T/fault.conf"
}
fault_failed=0
fault_runs=0
bad=0
for spec in 1:io 2:nospc 5:io 9:retry 17:io 30:corrupt 60:io 120:nospc; do
	n=${spec%%:*}
	code=${spec#*:}
	psql_q "insert into pgbench_history select 1, 1, 1, g, now() from generate_series(1, 20000) g"
	fault_conf "$n" "$code"
	before=$(manifests)
	if as_pg "$PGKEEP" --config "$T/fault.conf" backup --type=base >/dev/null 2>"$T/err"; then
		[ "$(manifests)" -eq $((before + 1)) ] || { bad=$((bad + 1)); diag "N=$n: no manifest after success"; }
	else
		fault_failed=$((fault_failed + 1))
		[ "$(manifests)" -eq "$before" ] || { bad=$((bad + 1)); diag "N=$n: a manifest after a failure"; }
		grep -q 'injected failure' "$T/err" || { bad=$((bad + 1)); diag "N=$n: $(cat "$T/err")"; }
		pgkeep_run backup --type=base >/dev/null 2>"$T/err" ||
			{ bad=$((bad + 1)); diag "N=$n: retry failed: $(cat "$T/err")"; }
	fi
	fault_runs=$((fault_runs + 1))
	[ "$(temp_files)" -eq 0 ] || { bad=$((bad + 1)); diag "N=$n: temp files left"; }
	pgkeep_run verify --read-data >"$T/err" 2>&1 ||
		{ bad=$((bad + 1)); diag "N=$n: verify: $(tail -n 3 "$T/err")"; }
done
is "$bad" 0 "base backup failing at call N (8 values of N, 5 error kinds): retry succeeds, repository verifies"
cmp_ok "$fault_failed" -ge 6 "the injected failure hit $fault_failed of $fault_runs backups"

# wal-push through the failing store, into a second repository, of copies
# of finished segments (the archiver keeps pushing to the first one).
W=$T/wrepo
PGKEEP_TEST_REPO_CONF="plugin = local\npath = $W" pgkeep_conf "$T/w.conf"
as_pg "$PGKEEP" --config "$T/w.conf" init --kdf-n 1024 >/dev/null 2>&1 || bail_out "init $W failed"
# wfault_conf N CODE
wfault_conf() {
	rm -f "$T/fault.state"
	PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $W\nfail_at = $1\nfail_code = $2\nfail_state = $T/fault.state" \
		pgkeep_conf "$T/wfault.conf"
}
t_mkdir "$T/walcopy"
wbad=0
wfailed=0
for spec in 1:io 2:nospc 3:retry 4:io 6:corrupt; do
	n=${spec%%:*}
	code=${spec#*:}
	psql_q "insert into pgbench_history select 1, 1, 1, $n, now() from generate_series(1, 5000)"
	seg=$(psql_q "select pg_walfile_name(pg_switch_wal())")
	cp "$PGDATA/pg_wal/$seg" "$T/walcopy/$seg" && chown postgres "$T/walcopy/$seg"
	wfault_conf "$n" "$code"
	if ! as_pg "$PGKEEP" --config "$T/wfault.conf" wal-push "$T/walcopy/$seg" 2>"$T/err"; then
		wfailed=$((wfailed + 1))
		[ ! -e "$W/wal/${seg%????????????????}/$seg" ] ||
			{ wbad=$((wbad + 1)); diag "N=$n: a wal object after a failed push"; }
		as_pg "$PGKEEP" --config "$T/w.conf" wal-push "$T/walcopy/$seg" 2>"$T/err" ||
			{ wbad=$((wbad + 1)); diag "N=$n: retry: $(cat "$T/err")"; }
	fi
	as_pg "$PGKEEP" --config "$T/w.conf" wal-fetch "$seg" "$T/fetch/$seg" &&
		cmp -s "$T/fetch/$seg" "$T/walcopy/$seg" || { wbad=$((wbad + 1)); diag "N=$n: fetch differs"; }
	rm -f "$T/fetch/$seg" "$T/walcopy/$seg"
	[ "$(find "$W" -name '*.tmp.*' | wc -l)" -eq 0 ] ||
		{ wbad=$((wbad + 1)); diag "N=$n: temp files left"; }
done
is "$wbad" 0 "wal-push failing at call N (5 values): retry succeeds, the segment reads back identical"
cmp_ok "$wfailed" -ge 4 "the injected failure hit $wfailed of 5 pushes"
ok "the WAL repository passes verify --read-data" \
	quiet_run_conf "$T/w.conf" verify --read-data
# A store that stays unreachable: every get fails as transient.  The plugin
# retries (five attempts of the request, include/pgkeep/storage.h) and pgkeep
# adds none; wal-fetch then exits above 125, never 1 (end of the archive).
rm -f "$T/fault.state"
PGKEEP_TEST_REPO_CONF="plugin = fault\npath = $W\nfail_ops = get\nfail_every = 1\nfail_code = retry\nretry_wait_ms = 10\nfail_state = $T/fault.state" \
	pgkeep_conf "$T/wdown.conf"
run as_pg "$PGKEEP" --config "$T/wdown.conf" wal-fetch 000000010000000000000002 "$T/fetch/down"
cmp_ok "$rc" -gt 125 "wal-fetch from a store that stays unreachable exits above 125 ($rc)"
is "$(cat "$T/fault.state" 2>/dev/null)" 5 "... after the plugin's 5 attempts, none added by pgkeep"
like "$err" "injected failure of get" "... naming the failure"
ok "... writing no destination" [ ! -e "$T/fetch/down" ]
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
ok "the archiver kept up meanwhile" wait_archived "$last"
ok "verify --read-data passes at the end" quiet_run verify --read-data

done_testing

#!/bin/sh
# Point-in-time restore of a cluster with tablespaces, on the server
# PG_BINDIR runs (15, or 16-18 through PGKEEP_TEST_PG_SERVER_BINDIR): two
# extra tablespaces with rows in each, WAL archived by wal-push, a base
# backup, then a ledger of single-row commits spread over the tablespaces.
# Restores to a target time and to an LSN between two commits, into new
# locations with --tablespace-map, start and hold exactly the rows
# committed up to the target, in every tablespace; the server's manifest
# was verified by the restore itself; amcheck (in Debian's 15 and in the
# 16-18 server builds alike) finds every B-tree index clean.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# Every table's rows, in one text to compare.
contents() {
	psql_q "select 'main', string_agg(id::text || ':' || note, ',' order by id) from t_main
		union all select 'one', string_agg(id::text || ':' || note, ',' order by id) from t_one
		union all select 'two', string_agg(id::text || ':' || note, ',' order by id) from t_two"
}

# bt_index_check on every valid B-tree index of the current cluster.
amcheck_all() {
	psql_q "create extension if not exists amcheck;
		select count(bt_index_check(c.oid, true)) from pg_index i
		join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam
		where a.amname = 'btree' and i.indisvalid and i.indisready" >"$T/amcheck.out" ||
		return 1
	cmp_ok "$(cat "$T/amcheck.out")" -gt 10 "... on $(cat "$T/amcheck.out") indexes"
}

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start
MAJOR=$(psql_q "select current_setting('server_version_num')::int / 10000")
diag "PostgreSQL $MAJOR"

t_mkdir "$T/spc1" "$T/spc2"
psql_q "create tablespace one location '$T/spc1'; " || bail_out "create tablespace one failed"
psql_q "create tablespace two location '$T/spc2'" || bail_out "create tablespace two failed"
psql_q "create table t_main(id int primary key, note text);
	create table t_one(id int primary key, note text) tablespace one;
	create table t_two(id int, note text) tablespace two;
	create index t_two_note on t_two(note) tablespace one;
	insert into t_main select g, 'main ' || g from generate_series(1, 1000) g;
	insert into t_one select g, 'one ' || g from generate_series(1, 2000) g;
	insert into t_two select g, 'two ' || g from generate_series(1, 3000) g" ||
	bail_out "filling the tablespaces failed"
OID1=$(psql_q "select oid from pg_tablespace where spcname = 'one'")
OID2=$(psql_q "select oid from pg_tablespace where spcname = 'two'")
is "$(psql_q "select count(*) from pg_available_extensions where name = 'amcheck'")" 1 \
	"the server has amcheck"

run pgkeep_run backup --type=base --checksums=md5
is "$rc" 3 "--checksums other than sha256 or crc32c is a usage error"
like "$err" "--checksums must be sha256 or crc32c, not 'md5'" "... saying which are"
run pgkeep_run backup --type=base --checksums=crc32c
is "$rc" 0 "a base backup of a cluster with two extra tablespaces succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)

# The ledger: one row per transaction, round the three tablespaces; after
# each commit "N|time|insert LSN".
i=1
while [ $i -le 9 ]; do
	case $((i % 3)) in 0) tbl=t_main ;; 1) tbl=t_one ;; *) tbl=t_two ;; esac
	echo "insert into $tbl values (10000 + $i, 'ledger $i');"
	echo "select $i, clock_timestamp(), pg_current_wal_insert_lsn();"
	echo "\\o /dev/null"
	echo "select pg_sleep(0.1);"
	echo "\\o"
	i=$((i + 1))
done | psql_q >"$T/ledger" || bail_out "the ledger failed"
ok "the WAL up to the last commit is archived by wal-push" archive_current_wal
TIME4=$(awk -F'|' '$1 == 4 { print $2 }' "$T/ledger")
LSN7=$(awk -F'|' '$1 == 7 { print $3 }' "$T/ledger")
# What the cluster held at those points: the backup's rows and the ledger's first N.
upto() {
	psql_q "select 'main', string_agg(id::text || ':' || note, ',' order by id) from t_main
			where id < 10000 or id <= 10000 + $1
		union all select 'one', string_agg(id::text || ':' || note, ',' order by id) from t_one
			where id < 10000 or id <= 10000 + $1
		union all select 'two', string_agg(id::text || ':' || note, ',' order by id) from t_two
			where id < 10000 or id <= 10000 + $1"
}
want4=$(upto 4)
want7=$(upto 7)
pg_stop || bail_out "cannot stop the cluster"

# restore_to NAME TARGET-OPTION VALUE WANT: into new locations, started, rows exact.
restore_to() {
	local r=$T/r-$1
	run pgkeep_run -v restore "$B1" --pgdata "$r" --tablespace-map "$T/spc1=$T/$1-one" \
		--tablespace-map "$T/spc2=$T/$1-two" "$2" "$3" --archive-mode=off
	is "$rc" 0 "restore to $1 into new locations succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
	like "$err" "backup $B1: [0-9]+ files match the server's manifest" \
		"... having checked every file against the server's manifest"
	ok "... whose checksums are CRC32C, as --checksums=crc32c asked" \
		grep -q '"Checksum-Algorithm": "CRC32C"' "$r/backup_manifest"
	is "$(readlink "$r/pg_tblspc/$OID1") $(readlink "$r/pg_tblspc/$OID2")" \
		"$T/$1-one $T/$1-two" "... the tablespaces linked to their new locations"
	ok "the cluster restored to $1 starts and recovery ends" pg_start_restored "$r"
	is "$(contents)" "$4" "every row is exact at $1, in every tablespace"
	ok "amcheck finds every B-tree index clean at $1" amcheck_all
	pg_stop || bail_out "cannot stop the cluster restored to $1"
}

restore_to time --target-time "$TIME4" "$want4"
restore_to lsn --target-lsn "$LSN7" "$want7"
like "$want4" "ledger 4" "(the expected rows at the time hold the ledger's fourth commit)"
unlike_5=$(printf '%s' "$want4" | grep -c "ledger 5")
is "$unlike_5" 0 "(... and not its fifth)"

done_testing

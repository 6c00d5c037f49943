#!/bin/sh
# Tablespaces: a cluster with two extra tablespaces and rows in each is
# backed up (one stream per tablespace, its OID and location in the
# manifest); after more commits it is restored with --tablespace-map into
# new locations, started, and every row is there, in the tablespaces too,
# while the original tablespace directories are left untouched.  Refused:
# a non-empty target, a malformed or duplicate map, a map naming no
# tablespace.  A copy to another repository restores the same way; drill
# (on a second, delta, backup) maps the tablespaces into its scratch
# directory.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# Every table's rows, in a form compared as text.
contents() {
	psql_q "select 'main', string_agg(id::text || ':' || note, ',' order by id) from t_main
		union all select 'one', string_agg(id::text || ':' || note, ',' order by id) from t_one
		union all select 'two', string_agg(id::text || ':' || note, ',' order by id) from t_two
		union all select 'idx', count(*)::text from t_two where note like 'two%'"
}

# restore removes tablespace_map (see pgkeep.1), which the server's manifest lists.
verify_restored() {
	if grep -q '"PostgreSQL-Backup-Manifest-Version": 1,' "$1/backup_manifest"; then
		as_pg "$PG_BINDIR/pg_verifybackup" -q -n -i tablespace_map "$1"
	else
		/usr/bin/python3 "${top_srcdir:-.}/tests/integration/verify-manifest.py" "$1" \
			tablespace_map >/dev/null
	fi
}

# A listing of a directory's files with their checksums: "untouched" is exact.
fingerprint() {
	(cd "$1" && find . -type f -exec sha256sum {} + | sort -k 2)
}

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start
PG1=$PGDATA

t_mkdir "$T/spc one" "$T/spc=two"
SPC1="$T/spc one"
SPC2="$T/spc=two"
psql_q "create tablespace one location '$SPC1'" || bail_out "create tablespace one failed"
psql_q "create tablespace two location '$SPC2'" || bail_out "create tablespace two failed"
psql_q "create table t_main(id int primary key, note text)" || bail_out "create table failed"
psql_q "create table t_one(id int primary key, note text) tablespace one" ||
	bail_out "create table in tablespace one failed"
psql_q "create table t_two(id int, note text) tablespace two;
	create index t_two_note on t_two(note) tablespace one" ||
	bail_out "create table in tablespace two failed"
psql_q "insert into t_main select g, 'main ' || g from generate_series(1, 1000) g;
	insert into t_one select g, 'one ' || g from generate_series(1, 2000) g;
	insert into t_two select g, 'two ' || g from generate_series(1, 3000) g" ||
	bail_out "inserts failed"
OID1=$(psql_q "select oid from pg_tablespace where spcname = 'one'")
OID2=$(psql_q "select oid from pg_tablespace where spcname = 'two'")

run pgkeep_run backup --type=base
is "$rc" 0 "a base backup of a cluster with two extra tablespaces succeeds"
[ "$rc" -eq 0 ] || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)

run pgkeep_run verify --read-data
is "$rc" 0 "verify --read-data reads every stream back, the tablespaces' too"
[ "$rc" -eq 0 ] || diag "$err"

# More commits after the backup, in every tablespace, one per transaction.
for i in 1 2 3 4 5; do
	psql_q "insert into t_main values (10000 + $i, 'after $i')"
	psql_q "insert into t_one values (10000 + $i, 'after $i')"
	psql_q "insert into t_two values (10000 + $i, 'two after $i')"
done
psql_q "update t_one set note = 'changed' where id = 7"
psql_q "delete from t_two where id = 9"
ok "the WAL up to the last commit is archived" archive_current_wal
want=$(contents)
# Stopped, so that only a restore could change the original tablespaces.
pg_stop || bail_out "cannot stop the cluster"
before1=$(fingerprint "$SPC1")
before2=$(fingerprint "$SPC2")

# ---------------------------------------------------------------- refusals

ESC2=$(printf '%s' "$SPC2" | sed 's/=/\\=/g')

t_mkdir "$T/busy"
as_pg touch "$T/busy/somefile"
run pgkeep_run restore "$B1" --pgdata "$T/rbusy" --tablespace-map "$SPC1=$T/busy" \
	--tablespace-map "$(printf '%s' "$SPC2" | sed 's/=/\\=/g')=$T/new2"
cmp_ok "$rc" -ne 0 "a tablespace target that is not empty is refused"
like "$err" "tablespace directory $T/busy is not empty" "... naming the directory"
ok "... before the data directory is written" [ ! -e "$T/rbusy/PG_VERSION" ]
ok "... and the target keeps its file" [ -f "$T/busy/somefile" ]

run pgkeep_run restore "$B1" --pgdata "$T/rorig"
cmp_ok "$rc" -ne 0 "without a map, the original (live, non-empty) locations are refused"
like "$err" "is not empty" "... as not empty"

run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a=$T/b" \
	--tablespace-map "$T/a=$T/c"
is "$rc" 3 "an OLDDIR mapped twice is a usage error"
like "$err" "mapped twice" "... saying so"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a=$T/c" \
	--tablespace-map "$T/b=$T/c"
is "$rc" 3 "two tablespaces mapped to one NEWDIR is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "relative=$T/c"
is "$rc" 3 "a relative OLDDIR is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a=c"
is "$rc" 3 "a relative NEWDIR is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a=$T/../c"
is "$rc" 3 "a NEWDIR with '..' is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a"
is "$rc" 3 "a map without '=' is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/a=$T/b=$T/c"
is "$rc" 3 "a map with two '=' is a usage error"
run pgkeep_run restore "$B1" --pgdata "$T/rx" --tablespace-map "$T/nowhere=$T/c"
cmp_ok "$rc" -ne 0 "a map naming no tablespace of the backup is refused"
like "$err" "has no tablespace at $T/nowhere" "... naming it"
run pgkeep_run restore "$B1" --pgdata "$T/rin" --tablespace-map "$SPC1=$T/rin/base/x" \
	--tablespace-map "$ESC2=$T/new3"
cmp_ok "$rc" -ne 0 "a NEWDIR inside the data directory is refused"
like "$err" "inside the data directory" "... saying so"
ok "... before making it" [ ! -e "$T/rin/base" ]
ok "nothing was written for the refused restores" [ ! -e "$T/rx/PG_VERSION" ]

# ---------------------------------------------------------------- the restore

run pgkeep_run restore "$B1" --pgdata "$T/r1" --tablespace-map "$SPC1=$T/new/one" \
	--tablespace-map "$ESC2/=$T/new2" --archive-mode=off
is "$rc" 0 "restore with --tablespace-map for both tablespaces succeeds"
[ "$rc" -eq 0 ] || diag "$err"
is "$(readlink "$T/r1/pg_tblspc/$OID1")" "$T/new/one" "pg_tblspc/$OID1 links to the new location"
is "$(readlink "$T/r1/pg_tblspc/$OID2")" "$T/new2" "pg_tblspc/$OID2 links to the new location"
ok "the server sent a tablespace_map (TABLESPACE_MAP), in its manifest" \
	grep -q '"Path": "tablespace_map"' "$T/r1/backup_manifest"
ok "restore removed it, so PostgreSQL keeps the new links" [ ! -e "$T/r1/tablespace_map" ]
is "$(ls "$T/r1/pg_tblspc" | sort | tr '\n' ' ')" "$(printf '%s\n' "$OID1" "$OID2" | sort | tr '\n' ' ')" \
	"pg_tblspc holds the two links restore wrote, nothing from the tar"
is "$(stat -c '%a %U' "$T/new/one") $(stat -c '%a %U' "$T/new2")" "700 postgres 700 postgres" \
	"the new tablespace directories are 0700, owned by the restoring user"
ok "tablespace one's files are in the new location" \
	sh -c "ls '$T/new/one'/PG_*/*/ | grep -q ."
ok "pg_verifybackup accepts the restored files, tablespaces included" verify_restored "$T/r1"
ok "by default the server's manifest gives SHA-256 checksums" \
	grep -q '"Checksum-Algorithm": "SHA256"' "$T/r1/backup_manifest"
ok "PostgreSQL starts on the restored directory and recovery ends" pg_start_restored "$T/r1"
got=$(contents)
is "$got" "$want" "every row is exact, in the main directory and in both tablespaces"
is "$(psql_q "select string_agg(spcname || '=' || pg_tablespace_location(oid), ',' order by spcname)
	from pg_tablespace where spcname in ('one', 'two')")" "one=$T/new/one,two=$T/new2" \
	"the restored cluster's tablespaces are at the new locations"
ok "amcheck finds the index in the tablespace clean" \
	psql_q "create extension if not exists amcheck; select bt_index_check('t_two_note'::regclass, true)"
psql_q "insert into t_one values (99999, 'written after restore'); checkpoint" >/dev/null
is "$(fingerprint "$SPC1")" "$before1" "the original tablespace one is untouched"
is "$(fingerprint "$SPC2")" "$before2" "the original tablespace two is untouched"

# ---------------------------------------------------------------- copy

# A copy keeps each tablespace stream's OID and location.
as_pg sh -c 'cat >>"$1"' sh "$PGKEEP_CONF" <<EOF

[repo:b]
plugin = local
path = $T/rb
EOF
ok "init repository b" pgkeep_run --repo b init --kdf-n 1024
run pgkeep_run copy --to b "$B1"
is "$rc" 0 "the backup is copied to repository b"
[ "$rc" -eq 0 ] || diag "$err"
run pgkeep_run --repo b restore "$B1" --pgdata "$T/rb1" --tablespace-map "$SPC1=$T/b/one" \
	--tablespace-map "$ESC2=$T/b/two" --archive-mode=off
is "$rc" 0 "the copy restores with --tablespace-map"
[ "$rc" -eq 0 ] || diag "$err"
is "$(readlink "$T/rb1/pg_tblspc/$OID1") $(readlink "$T/rb1/pg_tblspc/$OID2")" \
	"$T/b/one $T/b/two" "... with its tablespaces where the map says"
ok "... every file as the server listed it" verify_restored "$T/rb1"

# ---------------------------------------------------------------- drill

pg_use "$PG1"
pg_start
psql_q "insert into t_two values (20000, 'two second backup')"
run pgkeep_run backup --type=base
is "$rc" 0 "a second base backup (a delta) of the cluster with tablespaces"
[ "$rc" -eq 0 ] || diag "$err"
ok "its WAL is archived" archive_current_wal
pg_stop || bail_out "cannot stop the cluster"
before1=$(fingerprint "$SPC1")
before2=$(fingerprint "$SPC2")

out=$(pgkeep_run drill --dir "$T" --timeout 600 2>&1)
is "$?" 0 "drill passes on the cluster with tablespaces"
diag "$out"
is "$(find "$T" -maxdepth 1 -name 'pgkeep-drill.*' | wc -l)" 0 "the scratch copy is removed"
is "$(fingerprint "$SPC1")" "$before1" "drill leaves the original tablespace one untouched"
is "$(fingerprint "$SPC2")" "$before2" "drill leaves the original tablespace two untouched"

# ---------------------------------------------------------------- no map

# As on a new host: the original locations are free, and each tablespace
# goes back there (the stopped cluster's own are moved aside first).
mv "$SPC1" "$T/aside1" && mv "$SPC2" "$T/aside2" || bail_out "cannot move the tablespaces aside"
run pgkeep_run restore "$B1" --pgdata "$T/r3" --archive-mode=off
is "$rc" 0 "without a map, the tablespaces go back to their free original locations"
[ "$rc" -eq 0 ] || diag "$err"
is "$(readlink "$T/r3/pg_tblspc/$OID1")|$(readlink "$T/r3/pg_tblspc/$OID2")" "$SPC1|$SPC2" \
	"... with the links to them"
ok "... every file as the server listed it" verify_restored "$T/r3"

done_testing

#!/bin/sh
# Chunk deltas on real dumps: a database where each day about 1% of the rows
# change at random (updates and deletes spread over the tables, new rows at
# the end) touches nearly every chunk of the next dump; stored as deltas of
# the previous dump's chunks it costs a small part of the first.  Every
# dump restores exactly; `delta = no` shows what the deltas save; expire
# keeps the bases the remaining backup needs and drops the rest with their
# deltas/ records; a missing base is named by verify and by restore; a
# damaged previous manifest only costs the next dump its deltas.

. "${top_srcdir:-.}/tests/lib/integration.sh"

stored_of() { # INFO_JSON ID
	python3 -c 'import json, sys
info = json.load(open(sys.argv[1]))
print([b for b in info["backups"] if b["id"] == sys.argv[2]][0]["stored_size"])' "$1" "$2"
}

# A day of changes: DAY picks which rows, so each day touches others.
change_day() {
	psql_db shop "
update accounts set balance = balance + $1 where id % 100 = $1;
delete from notes where id % 500 = $1;
insert into notes select g, now(), 'order ' || md5(g::text) || ' day $1'
	from generate_series(200000 + $1 * 2000, 200000 + $1 * 2000 + 1999) g;" &&
		psql_db shop "vacuum" || bail_out "changes of day $1 failed"
}

# dump DAY CONFIG: a dump of shop; sets ID and STORED.
dump() {
	run as_pg "$PGKEEP" --config "$2" backup --type=dump --db shop
	ID=$(printf '%s\n' "$out" | head -n 1)
	is "$rc" 0 "day $1: dump $ID"
	[ "$rc" -eq 0 ] || diag "$err"
	as_pg "$PGKEEP" --config "$PGKEEP_CONF" info --json >"$T/info.json"
	STORED=$(stored_of "$T/info.json" "$ID")
}

# restored_equals ID: the dump restored from the repository is the database.
restored_equals() {
	rm -f "$T/out/r.dump"
	run pgkeep_run restore "$1" --output "$T/out/r.dump"
	is "$rc" 0 "restore $1 --output succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
	as_pg "$PG_BINDIR/pg_restore" -f - "$T/out/r.dump" | unrestrict >"$T/out/r.sql"
	as_pg "$PG_BINDIR/pg_dump" -h "$SOCKDIR" -p "$PGPORT" -d shop | unrestrict >"$T/out/db.sql"
	ok "... and is the database, row for row" cmp -s "$T/out/r.sql" "$T/out/db.sql"
}

count_records() {
	find "$TEST_REPO_PATH/deltas" -type f 2>/dev/null | wc -l
}

pg_init "$T/pg"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start
t_mkdir "$T/out"

psql_q "create database shop" || bail_out "create database failed"
psql_db shop "
create table accounts (id int primary key, branch int, balance bigint, filler char(60));
insert into accounts select g, g % 10, 0, '' from generate_series(1, 200000) g;
create table notes (id int, at timestamptz, body text);
insert into notes select g, now() - g * interval '1 minute',
	'order ' || md5(g::text) || ' for customer ' || (g::bigint * 7919) % 100003
	from generate_series(1, 200000) g;" || bail_out "filling the database failed"

dump 1 "$PGKEEP_CONF"
D1=$ID S1=$STORED
is "$(count_records)" 0 "the first dump has nothing to be a delta of: no records"

change_day 2
dump 2 "$PGKEEP_CONF"
D2=$ID S2=$STORED
diag "first dump stored $S1 bytes, the next day's $S2"
cmp_ok "$((S2 * 8))" -lt "$S1" "with 1% of rows changed at random, day 2 stores less than 1/8 of day 1"
R2=$(count_records)
cmp_ok "$R2" -gt 0 "changed chunks are deltas, each with a deltas/ record ($R2)"
restored_equals "$D2"

change_day 3
dump 3 "$PGKEEP_CONF"
D3=$ID S3=$STORED
cmp_ok "$((S3 * 8))" -lt "$S1" "day 3 too ($S3 bytes)"
restored_equals "$D3"

# The same change without deltas: what they save, measured on the same data.
sed 's/^\[global\]$/[global]\ndelta = no/' "$PGKEEP_CONF" >"$T/nodelta.conf"
chown postgres "$T/nodelta.conf"
chmod 600 "$T/nodelta.conf"
change_day 4
dump 4 "$T/nodelta.conf"
D4=$ID S4=$STORED
diag "day 4 with delta = no stored $S4 bytes"
cmp_ok "$S4" -gt "$((S3 * 4))" "delta = no stores changed chunks whole (over 4x day 3)"
restored_equals "$D4"

change_day 5
dump 5 "$PGKEEP_CONF"
D5=$ID
restored_equals "$D5"

# ---------------------------------------------------------------- expire keeps the bases

PGKEEP_TEST_REPO_CONF="plugin = local\npath = $TEST_REPO_PATH\nkeep_last = 1" \
	pgkeep_conf "$T/keep1.conf"
before=$(count_records)
run as_pg "$PGKEEP" --config "$T/keep1.conf" expire --grace 0
is "$rc" 0 "expire with keep_last = 1 succeeds"
[ "$rc" -eq 0 ] || diag "$err"
like "$out" "removed 4 backup" "... and removes the four older dumps"
after=$(count_records)
cmp_ok "$after" -lt "$before" "records of removed chunks are gone ($before -> $after)"
cmp_ok "$after" -gt 0 "the remaining dump's deltas keep theirs"
run pgkeep_run verify --read-data
is "$rc" 0 "verify --read-data: every delta of the remaining dump has its base"
[ "$rc" -eq 0 ] || diag "$out $err"
restored_equals "$D5"

# ---------------------------------------------------------------- a missing base

rec=$(find "$TEST_REPO_PATH/deltas" -type f | head -n 1)
name=${rec##*/}
base=${name#*-}
chunk=${name%%-*}
mv "$TEST_REPO_PATH/chunks/$(printf %.2s "$base")/$base" "$T/base.saved"
run pgkeep_run verify
ok "verify fails when a base is missing" [ "$rc" -ne 0 ]
like "$out$err" "chunk $chunk is stored as a delta of chunk $base, which is missing" \
	"... naming the delta and its base"
rm -f "$T/out/r.dump"
run pgkeep_run restore "$D5" --output "$T/out/r.dump"
ok "restore fails" [ "$rc" -ne 0 ]
like "$err" "base chunk $base missing" "... naming the base"
ok "... and leaves no partial file" [ ! -e "$T/out/r.dump" ]
mv "$T/base.saved" "$TEST_REPO_PATH/chunks/$(printf %.2s "$base")/$base"
run pgkeep_run verify
is "$rc" 0 "with the base back, verify passes again"

# ---------------------------------------------------------------- a damaged reference

repo_corrupt_object "backups/$D5.manifest" || bail_out "cannot damage the manifest"
change_day 6
run pgkeep_run backup --type=dump --db shop
is "$rc" 0 "a damaged previous manifest does not stop the next dump"
like "$err" "no deltas in this backup: .*$D5" "... which stores whole chunks, saying why"

done_testing

#!/bin/sh
# Logical backups: pg_dump of a database with several tables, types and a
# large object goes into the repository; restored into a new database, a
# plain pg_dump of it is identical to one of the source.  Also: --output
# writes the dump file itself, an unchanged database dumps again at almost
# no cost, and --all keeps the globals and every database.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# A plain-text dump of DB into FILE (pg_dump's own, for comparison).
plain_dump() {
	as_pg "$PG_BINDIR/pg_dump" -h "$SOCKDIR" -p "$PGPORT" -d "$1" | unrestrict >"$2"
}

stored_of() {
	python3 -c 'import json, sys
info = json.load(open(sys.argv[1]))
print([b for b in info["backups"] if b["id"] == sys.argv[2]][0]["stored_size"])' "$1" "$2"
}

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start

psql_q "create database src" || bail_out "create database failed"
psql_db src "
create type mood as enum ('sad', 'ok', 'happy');
create table people (
	id serial primary key,
	name text not null,
	born date,
	mood mood,
	score numeric(12, 4),
	tags text[],
	doc jsonb,
	photo bytea,
	seen timestamptz default now(),
	uid uuid
);
create index on people (name);
insert into people (name, born, mood, score, tags, doc, photo, uid)
select 'person ' || g, date '1970-01-01' + g, (array['sad','ok','happy'])[g % 3 + 1]::mood,
       g * 1.2345, array['t' || g, 'x'], jsonb_build_object('n', g, 'odd', g % 2 = 1),
       decode(md5(g::text), 'hex'), md5(g::text)::uuid
from generate_series(1, 20000) g;
create table orders (id bigint generated always as identity primary key,
	person int references people(id), amount money, note varchar(40), at interval);
insert into orders (person, amount, note, at)
select g % 20000 + 1, g * 0.01, repeat('n', g % 40), make_interval(secs => g)
from generate_series(1, 50000) g;
create view rich as select person, sum(amount) from orders group by person;
comment on table people is 'dump test: every row matters';
create table blobs (name text, obj oid);
insert into blobs select 'lo', lo_from_bytea(0, convert_to(repeat('large object ', 50000), 'UTF8'));
" || bail_out "filling the source database failed"

# ---------------------------------------------------------------- dump and restore

run pgkeep_run backup --type=dump --db src
is "$rc" "0" "pgkeep backup --type=dump --db src succeeds"
[ "$rc" -eq 0 ] || diag "$err"
D1=$(printf '%s\n' "$out" | head -n 1)
like "$D1" '^[0-9]{8}T[0-9]{6}Z-dump$' "it prints the backup id ($D1)"
diag "$(printf '%s\n' "$out" | sed -n 2p)"

run pgkeep_run restore "$D1" --dbname copy --create
is "$rc" "0" "restore --dbname copy --create succeeds"
[ "$rc" -eq 0 ] || diag "$err"
plain_dump src "$T/src.sql"
plain_dump copy "$T/copy.sql"
ok "pg_dump of the source and of the restored database are identical" \
	cmp -s "$T/src.sql" "$T/copy.sql"
cmp -s "$T/src.sql" "$T/copy.sql" || diag "$(diff "$T/src.sql" "$T/copy.sql" | head -n 20)"
is "$(psql_db copy "select length(lo_get(obj)) from blobs")" "650000" \
	"the large object is back, whole"
is "$(psql_db copy "select count(*), sum(score) from people")" \
	"$(psql_db src "select count(*), sum(score) from people")" "the rows are the same"

run pgkeep_run restore "$D1" --dbname copy --create
ok "--create into an existing database is refused" [ "$rc" -ne 0 ]
like "$err" "database copy exists" "... saying why"
run pgkeep_run restore "$D1" --dbname nosuchdb
ok "restoring into a missing database without --create is refused" [ "$rc" -ne 0 ]
like "$err" "does not exist" "... saying why"

# ---------------------------------------------------------------- --output

t_mkdir "$T/out"
run pgkeep_run restore latest --output "$T/out/src.dump"
is "$rc" "0" "restore latest --output FILE succeeds"
as_pg "$PG_BINDIR/pg_restore" -f - "$T/out/src.dump" | unrestrict >"$T/out/from-file.sql"
ok "the file is a custom-format dump pg_restore reads" [ -s "$T/out/from-file.sql" ]
ok "... equal to the source" cmp -s "$T/src.sql" "$T/out/from-file.sql"
run pgkeep_run restore latest --output "$T/out/src.dump"
ok "an existing --output file is not replaced without --force" [ "$rc" -ne 0 ]

# ---------------------------------------------------------------- dedup of an unchanged dump

run pgkeep_run backup --type=dump --db src
D2=$(printf '%s\n' "$out" | head -n 1)
is "$rc" "0" "a second dump of the unchanged database succeeds ($D2)"
pgkeep_run info --json >"$T/info.json"
s1=$(stored_of "$T/info.json" "$D1")
s2=$(stored_of "$T/info.json" "$D2")
diag "first dump stored $s1 bytes, second $s2 bytes"
# Only the chunk holding the archive header (with its timestamp) is new.
cmp_ok "$((s2 * 4))" -lt "$s1" "... and stores less than a quarter of the first"

# ---------------------------------------------------------------- --all

psql_q "create role dumptester login" || bail_out "create role failed"
run pgkeep_run backup --type=dump --all
is "$rc" "0" "pgkeep backup --type=dump --all succeeds"
[ "$rc" -eq 0 ] || diag "$err"
A1=$(printf '%s\n' "$out" | head -n 1)
run pgkeep_run restore "$A1" --dbname copy2 --create
ok "restoring an --all backup without --stream is refused" [ "$rc" -ne 0 ]
like "$err" "src.dump" "... listing its streams"
run pgkeep_run restore "$A1" --stream src.dump --dbname copy2 --create
is "$rc" "0" "restore --stream src.dump --dbname copy2 --create succeeds"
plain_dump copy2 "$T/copy2.sql"
ok "... and the database is identical to the source" cmp -s "$T/src.sql" "$T/copy2.sql"
run pgkeep_run restore "$A1" --stream globals.sql --output -
like "$out" "CREATE ROLE dumptester" "the globals hold the roles"

run pgkeep_run list
like "$out" "$D1 +dump" "pgkeep list shows the dumps"
like "$out" "database src" "... with their database"

done_testing

#!/bin/sh
# Seed migration: existing pg_dump files — plain SQL, gzip'd plain SQL and a
# custom-format archive compressed by pg_dump — go into the repository as
# dump backups with the time given; list shows them; each restores into a
# new database whose pg_dump equals the source's; --output gives back the
# plain SQL byte for byte.  A file that is no dump is refused clearly and
# leaves no backup behind.

. "${top_srcdir:-.}/tests/lib/integration.sh"

plain_dump() {
	as_pg "$PG_BINDIR/pg_dump" -h "$SOCKDIR" -p "$PGPORT" -d "$1" | unrestrict >"$2"
}

# The id a dump taken at local time $1 gets.
id_for() {
	printf '%s-dump\n' "$(date -u -d "$1" +%Y%m%dT%H%M%SZ)"
}

backup_count() {
	pgkeep_run info --json | python3 -c 'import json, sys
print(len(json.load(sys.stdin)["backups"]))'
}

# field ID KEY: a backup's field from info --json.
field() {
	pgkeep_run info --json | python3 -c 'import json, sys
b = [b for b in json.load(sys.stdin)["backups"] if b["id"] == sys.argv[1]]
print(b[0][sys.argv[2]] if b else "(none)")' "$1" "$2"
}

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start

psql_q "create database src" || bail_out "create database failed"
psql_db src "
create table people (id int primary key, name text, born date, doc jsonb, photo bytea);
insert into people select g, 'person ' || g, date '1970-01-01' + g,
	jsonb_build_object('n', g), decode(md5(g::text), 'hex')
from generate_series(1, 30000) g;
create table notes (id bigint generated always as identity, body text);
insert into notes (body) select repeat('note ', g % 50) from generate_series(1, 20000) g;
create view named as select name from people where id % 7 = 0;
comment on table people is 'import test';
" || bail_out "filling the source database failed"

D=$T/dumps
t_mkdir "$D"
plain_dump src "$D/want.sql"
as_pg "$PG_BINDIR/pg_dump" -h "$SOCKDIR" -p "$PGPORT" -d src -f "$D/src.sql" ||
	bail_out "pg_dump (plain) failed"
as_pg sh -c 'gzip -c "$1" >"$2"' sh "$D/src.sql" "$D/src.sql.gz" || bail_out "gzip failed"
# Default compression: pg_dump compresses a custom archive itself.
as_pg "$PG_BINDIR/pg_dump" -h "$SOCKDIR" -p "$PGPORT" -d src -Fc -f "$D/src.dump" ||
	bail_out "pg_dump (custom) failed"
# An old file's modification time is the default time of a plain dump.
touch -d '2022-06-01 12:00:00' "$D/src.sql"

# ---------------------------------------------------------------- importing

T_PLAIN='2023-01-02 03:00:00'
T_GZ='2023-01-03 03:00:00'
T_CUSTOM='2023-01-04 03:00:00'

run pgkeep_run import-dump "$D/src.sql" --db src --time "$T_PLAIN" --label old-plain
is "$rc" "0" "import-dump of a plain SQL dump succeeds"
[ "$rc" -eq 0 ] || diag "$err"
ID_PLAIN=$(printf '%s\n' "$out" | head -n 1)
is "$ID_PLAIN" "$(id_for "$T_PLAIN")" "its id is made from --time"
like "$out" "as a sql dump of src" "the summary names the format and database"

run pgkeep_run import-dump "$D/src.sql.gz" --db src --time "$T_GZ"
is "$rc" "0" "import-dump of a gzip'd plain SQL dump succeeds"
[ "$rc" -eq 0 ] || diag "$err"
ID_GZ=$(printf '%s\n' "$out" | head -n 1)
is "$ID_GZ" "$(id_for "$T_GZ")" "the gzip'd dump's id is made from --time"

run pgkeep_run import-dump "$D/src.dump" --time "$T_CUSTOM"
is "$rc" "0" "import-dump of a custom-format dump succeeds"
[ "$rc" -eq 0 ] || diag "$err"
ID_CUSTOM=$(printf '%s\n' "$out" | head -n 1)
is "$ID_CUSTOM" "$(id_for "$T_CUSTOM")" "the custom dump's id is made from --time"
like "$out" "as a custom dump of src" "the database name comes from the custom header"
like "$err" "compressed by pg_dump: stored as is" "a note says pg_dump's compression weakens dedup"

# No --time: the custom header's creation time (just now), the plain file's mtime.
run pgkeep_run import-dump "$D/src.dump" --db other
ID_NOW=$(printf '%s\n' "$out" | head -n 1)
now=$(date +%s)
made=$(date -u -d "$(printf '%s' "$ID_NOW" | sed -E 's/^(....)(..)(..)T(..)(..)(..)Z.*/\1-\2-\3 \4:\5:\6Z/')" +%s)
cmp_ok "$((now - made))" -lt 600 "without --time a custom dump keeps the time in its header"
is "$(field "$ID_NOW" dbname)" "other" "--db overrides the header's database name"
run pgkeep_run import-dump "$D/src.sql"
ID_MTIME=$(printf '%s\n' "$out" | head -n 1)
is "$ID_MTIME" "$(id_for '2022-06-01 12:00:00')" "without --time a plain dump takes the file's modification time"
is "$(field "$ID_MTIME" dbname)" "unknown" "a plain dump without --db is of database 'unknown'"

# ---------------------------------------------------------------- list and info

list=$(pgkeep_run list)
for pair in "$ID_PLAIN|$T_PLAIN" "$ID_GZ|$T_GZ" "$ID_CUSTOM|$T_CUSTOM"; do
	id=${pair%%|*}
	when=${pair#*|}
	like "$(printf '%s\n' "$list" | grep "^$id ")" "^$id +dump +$when .*database src" \
		"list shows $id as a dump of src taken $when"
done
is "$(field "$ID_PLAIN" label)" "old-plain" "the label is kept"
is "$(field "$ID_GZ" label)" "imported" "the default label says imported"
is "$(field "$ID_GZ" size)" "$(stat -c %s "$D/src.sql")" \
	"a gzip'd dump is stored decompressed (its size is the plain file's)"
is "$(field "$ID_CUSTOM" size)" "$(stat -c %s "$D/src.dump")" \
	"a custom dump is stored byte for byte"

# ---------------------------------------------------------------- restoring

n=0
for id in "$ID_PLAIN" "$ID_GZ" "$ID_CUSTOM"; do
	n=$((n + 1))
	run pgkeep_run restore "$id" --dbname "r$n" --create
	is "$rc" "0" "restore of imported $id into a new database succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
	plain_dump "r$n" "$D/got$n.sql"
	ok "pg_dump of the restored $id equals the source's" cmp -s "$D/want.sql" "$D/got$n.sql"
done

rm -f "$D/out.sql"
run pgkeep_run restore "$ID_GZ" --output "$D/out.sql"
is "$rc" "0" "restore --output of the gzip'd import succeeds"
ok "--output gives back the decompressed SQL byte for byte" cmp -s "$D/src.sql" "$D/out.sql"
run pgkeep_run restore "$ID_CUSTOM" --output "$D/out.dump"
ok "--output of the custom import is the original archive" cmp -s "$D/src.dump" "$D/out.dump"

# Other compressors libarchive reads: xz and bzip2 (made with Python's own
# modules, so no extra tool is needed).
for codec in xz:lzma bz2:bz2; do
	ext=${codec%%:*}
	as_pg python3 -c 'import sys, importlib
m = importlib.import_module(sys.argv[1])
data = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(m.compress(data))' "${codec#*:}" "$D/src.sql" "$D/src.sql.$ext"
	run pgkeep_run import-dump "$D/src.sql.$ext" --db src --time '2023-02-01 00:00:00' --progress=none
	is "$rc" "0" "import-dump of a $ext-compressed plain dump succeeds"
	[ "$rc" -eq 0 ] || diag "$err"
	id=$(printf '%s\n' "$out" | head -n 1)
	rm -f "$D/out.$ext.sql"
	pgkeep_run restore "$id" --output "$D/out.$ext.sql" >/dev/null 2>&1
	ok "the $ext-compressed import restores to the plain SQL byte for byte" \
		cmp -s "$D/src.sql" "$D/out.$ext.sql"
done

# ---------------------------------------------------------------- refusing

before=$(backup_count)
as_pg sh -c 'head -c 300000 /dev/urandom >"$1"' sh "$D/random.bin"
run pgkeep_run import-dump "$D/random.bin" --db src
cmp_ok "$rc" -ne 0 "a random file is refused"
like "$err" "random.bin is not a pg_dump file: neither a custom-format archive" \
	"the error says what the file is not"
is "$(printf '%s\n' "$err" | wc -l)" "1" "the refusal is one line"
as_pg sh -c 'gzip -c "$1" >"$2"' sh "$D/random.bin" "$D/random.bin.gz"
run pgkeep_run import-dump "$D/random.bin.gz"
cmp_ok "$rc" -ne 0 "a gzip'd random file is refused"
like "$err" "random.bin.gz \\(gzip-decompressed\\) is not a pg_dump file" \
	"the error says it looked inside the gzip"
as_pg sh -c 'head -c 1000 "$1" >"$2"' sh "$D/src.sql.gz" "$D/truncated.sql.gz"
run pgkeep_run import-dump "$D/truncated.sql.gz"
cmp_ok "$rc" -ne 0 "a truncated gzip file is refused"
like "$err" "truncated.sql.gz" "the error names the truncated file"
run pgkeep_run import-dump "$D/nonexistent.sql"
cmp_ok "$rc" -ne 0 "a missing file is refused"
like "$err" "cannot open .*nonexistent.sql" "the error names the missing file"
is "$(backup_count)" "$before" "refused imports leave no backup behind"

verify_data() {
	pgkeep_run verify --read-data >&2
}
ok "verify --read-data accepts the repository with imported dumps" verify_data

done_testing

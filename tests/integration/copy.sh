#!/bin/sh
# Two repositories of one cluster: a (local, where backups and WAL go) and b
# (local, or the store PGKEEP_TEST_STORE names).  A base backup and a
# dump are copied to b; after ~1% of the rows change, a second base backup is
# copied and sends only a few chunks (counted from copy's report and in b's
# store); a point-in-time restore from b alone, with a moved away, brings
# back exactly the rows committed before the target.  Then each repository's
# own retention (keep_last 1 on a, 3 on b) through expire --all-repos,
# list/info --all-repos saying where each backup is, verify --read-data on
# both, and copies between repositories of different clusters refused.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# Chunk objects in b's store.
b_chunks() {
	if [ -n "${S3_DIR:-}" ]; then
		find "$S3_DIR/data/$S3_BUCKET/${S3_TEST_PREFIX:+$S3_TEST_PREFIX/}chunks" \
			-name '*._S3rver_object' 2>/dev/null | wc -l
	else
		find "$T/rb/chunks" -type f 2>/dev/null | wc -l
	fi
}

# "N chunk(s) sent" from copy's last line.
chunks_sent() {
	printf '%s\n' "$1" | tail -n 1 | sed -n 's/.*: \([0-9]*\) chunk(s) sent.*/\1/p'
}

# Repository c belongs to another cluster: init records pg2's identifier.
pg_init "$T/pg2"
pgkeep_conf "$T/c.conf"
as_pg sh -c 'cat >>"$1"' sh "$T/c.conf" <<EOF
[repo:c]
plugin = local
path = $T/rc
EOF
ok "init repository c for another cluster" \
	as_pg "$PGKEEP" --config "$T/c.conf" --repo c init --kdf-n 1024

pg_init "$T/pg1"
if [ -n "$PGKEEP_TEST_REPO_CONF" ]; then
	B_BODY=$(printf '%b' "$PGKEEP_TEST_REPO_CONF")
else
	B_BODY="plugin = local
path = $T/rb"
fi
# write_conf FILE B_BODY: a (local), b (B_BODY), c (another cluster's).
write_conf() {
	as_pg sh -c 'umask 077; cat >"$1"' sh "$1" <<EOF
[global]
repo = a
passphrase_file = $T/passphrase
plugin_dir = $PGKEEP_TEST_PLUGIN_DIR
spool_dir = $T/spool
conninfo = host=$SOCKDIR port=$PGPORT dbname=postgres
pgdata = $PGDATA

[repo:a]
plugin = local
path = $T/ra
keep_last = 1

[repo:b]
$2
keep_last = 3

[repo:c]
plugin = local
path = $T/rc
EOF
}
write_conf "$PGKEEP_CONF" "$B_BODY"
for r in a b; do
	ok "init repository $r" pgkeep_run --repo $r init --kdf-n 1024
done
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_start
PG1=$PGDATA

# ~30 MB of rows, frozen, so that later reads set no hint bits and a
# second backup differs only where rows changed.
psql_q "create table t(id int primary key, v text)" || bail_out "create table failed"
psql_q "insert into t select g, md5(g::text) || md5((g * 7)::text) from generate_series(1, 300000) g" ||
	bail_out "loading rows failed"
psql_q "create table m(id int, at timestamptz default clock_timestamp())"
psql_q "vacuum (freeze, analyze)"
psql_q "checkpoint"

run pgkeep_run backup --type=base
is "$rc" 0 "base backup 1 into a" || diag "$err"
B1=$(printf '%s\n' "$out" | head -n 1)
run pgkeep_run backup --type=dump
is "$rc" 0 "dump into a" || diag "$err"
D1=$(printf '%s\n' "$out" | head -n 1)

# ---------------------------------------------------------------- first copy

before=$(b_chunks)
t0=$(date +%s%3N)
run pgkeep_run copy --missing --to b
t1=$(date +%s%3N)
is "$rc" 0 "copy --missing --to b" || diag "$err"
diag "first copy took $((t1 - t0)) ms:" "$out"
like "$out" "copied $B1: " "... copies the base backup"
like "$out" "copied $D1: " "... and the dump"
sent1=$(chunks_sent "$out")
after=$(b_chunks)
cmp_ok "${sent1:-0}" -gt 10 "the first copy sends the chunks ($sent1)"
is "$((after - before))" "$sent1" "b's store holds exactly as many new chunk objects as copy reports"
like "$out" "[1-9][0-9]* WAL file\\(s\\) sent" "... and the WAL the base backup needs"

run pgkeep_run --repo b list
like "$out" "$B1 +base" "b lists the copied base backup"
like "$out" "$D1 +dump" "... and the dump"

run pgkeep_run copy --missing --to b
is "$rc" 0 "copy --missing again" || diag "$err"
like "$out" "copied 0 backup\\(s\\).*: 0 chunk\\(s\\) sent" "... has nothing to copy"
run pgkeep_run copy --to b "$B1"
like "$out" "$B1 is already in b" "copy ID of a backup b has says so"
run pgkeep_run copy --to b 20200101T000000Z-base
fails "copy of an unknown id fails" [ "$rc" -eq 0 ]
like "$err" "has no backup 20200101T000000Z-base" "... naming it"

# ---------------------------------------------------------------- ~1% changed, second copy

psql_q "update t set v = 'changed ' || v where id <= 3000"
psql_q "checkpoint"
run pgkeep_run backup --type=base
is "$rc" 0 "base backup 2 into a, after 1% of the rows changed" || diag "$err"
B2=$(printf '%s\n' "$out" | head -n 1)

# The target lies between two commits after the backup.
psql_q "insert into m(id) values (1)"
sleep 1.1
target=$(psql_q "select clock_timestamp()")
sleep 1.1
psql_q "insert into m(id) values (2)"
last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
ok "the WAL past the target is archived in a" wait_archived "$last"

# A store that fails in the middle of the copy (b seen through the fault
# plugin, which wraps the local one: the local case only): no manifest, and
# the next run finishes the job.
if [ -z "$PGKEEP_TEST_REPO_CONF" ]; then
	write_conf "$T/fault.conf" "plugin = fault
path = $T/rb
fail_ops = put_commit
fail_at = 5
fail_code = io"
	partial0=$(b_chunks)
	run as_pg "$PGKEEP" --config "$T/fault.conf" copy --missing --to b
	fails "a copy whose target fails midway fails" [ "$rc" -eq 0 ]
	like "$err" "backup $B2: stream" "... naming the backup and the stream"
	ok "... and leaves no manifest in b" [ ! -e "$T/rb/backups/$B2.manifest" ]
	diag "chunks stored before the failure: $(( $(b_chunks) - partial0 ))"
fi

before=$(b_chunks)
t0=$(date +%s%3N)
run pgkeep_run copy --missing --to b
t1=$(date +%s%3N)
is "$rc" 0 "second copy --missing --to b" || diag "$err"
diag "second copy took $((t1 - t0)) ms:" "$out"
like "$out" "copied $B2: " "... copies base backup 2"
sent2=$(chunks_sent "$out")
after=$(b_chunks)
is "$((after - before))" "$sent2" "b's store holds exactly the chunks copy reports ($sent2)"
cmp_ok "$((sent2 * 4))" -lt "$sent1" "the second copy sends few chunks ($sent2 against $sent1)"

# ---------------------------------------------------------------- copy's caches cut short

# The two base backups again, into two fresh local repositories: e with
# copy's own caches, f with them cut to 8 chunk ids (PGKEEP_TEST_COPY_IDS).
# Past its caches a copy fetches and names again the chunks its map of names
# lacks, and asks the target about each chunk instead of listing them; it
# sends exactly the same chunks.
for r in e f; do
	as_pg sh -c 'umask 077; cat "$1" >"$2"; printf "\n[repo:%s]\nplugin = local\npath = %s\n" "$3" "$4" >>"$2"' \
		sh "$PGKEEP_CONF" "$T/$r.conf" "$r" "$T/r$r"
	ok "init repository $r" as_pg "$PGKEEP" --config "$T/$r.conf" --repo $r init --kdf-n 1024
done
for b in "$B1" "$B2"; do
	run as_pg "$PGKEEP" --config "$T/e.conf" copy --to e "$b"
	is "$rc" 0 "copy $b to e" || diag "$err"
	sent_e=$(chunks_sent "$out")
	run as_pg env PGKEEP_TEST_COPY_IDS=8 "$PGKEEP" --config "$T/f.conf" -v copy --to f "$b"
	is "$rc" 0 "copy $b to f, with caches of 8 chunk ids" || diag "$err"
	is "$(chunks_sent "$out")" "$sent_e" "... sends the same $sent_e chunks"
done
like "$err" "repository f holds more than 8 chunks: copy asks it about each chunk" \
	"... asking f about each chunk once f holds more than the cache"
like "$err" "copy keeps 8 of the chunk names both repositories share" \
	"... and keeping 8 of the names it learnt from base backup 1"
is "$(find "$T/rf/chunks" -type f | wc -l)" "$(find "$T/re/chunks" -type f | wc -l)" \
	"e and f hold as many chunks"
run as_pg "$PGKEEP" --config "$T/f.conf" --repo f verify --read-data
is "$rc" 0 "verify --read-data of f" || diag "$out" "$err"

# ---------------------------------------------------------------- point-in-time restore from b alone

mv "$T/ra" "$T/ra.away"
run pgkeep_run --repo b restore latest --pgdata "$T/r1" --target-time "$target" --archive-mode=off
is "$rc" 0 "restore --repo b latest --target-time, with a moved away" || diag "$err"
like "$out" "restored backup $B2" "... from the copy of base backup 2"
ok "PostgreSQL recovers from b's WAL alone" pg_start_restored "$T/r1"
is "$(psql_q "select string_agg(id::text, ',' order by id) from m")" "1" \
	"exactly the rows committed before the target"
is "$(psql_q "select count(*) from t where v like 'changed %'")" "3000" "... and the changed rows"
is "$(psql_q "select count(*) from t")" "300000" "... and every row of t"
pg_stop
mv "$T/ra.away" "$T/ra"
pg_use "$PG1"

# ---------------------------------------------------------------- where each backup is

run pgkeep_run list --all-repos
is "$rc" 0 "list --all-repos" || diag "$err"
like "$out" "$B2 .* a,b\$" "... base backup 2 is in a and b"

# ---------------------------------------------------------------- retention per repository

run pgkeep_run expire --all-repos --grace 0
is "$rc" 0 "expire --all-repos" || diag "$err"
diag "$out"
ok "a (keep_last = 1) dropped base backup 1" [ ! -e "$T/ra/backups/$B1.manifest" ]
run pgkeep_run --repo a list
case $out in *"$B1"*) fail "a no longer lists base backup 1" ;; *) pass "a no longer lists base backup 1" ;; esac
like "$out" "$B2" "a keeps base backup 2"
run pgkeep_run --repo b list
like "$out" "$B1" "b (keep_last = 3) keeps base backup 1"

run pgkeep_run list --all-repos
like "$out" "$B1 .* b\$" "list --all-repos: base backup 1 is only in b"
like "$out" "not in every repository" "... and says that some backup is not everywhere"
run pgkeep_run info --all-repos --json
is "$rc" 0 "info --all-repos --json" || diag "$err"
printf '%s\n' "$out" >"$T/info.json"
check=$(python3 - "$T/info.json" "$B1" "$B2" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1]))
b1, b2 = sys.argv[2], sys.argv[3]
repos = {r["name"]: r for r in info["repositories"]}
top = {b["id"]: b for b in info["backups"]}
ok = (info["repository"] == "a" and b1 not in top and top[b2]["repositories"] == ["a", "b"]
      and top[b2]["type"] == "base" and top[b2]["wal_start"]
      and sorted(repos) == ["a", "b", "c"]
      and [b["repositories"] for b in repos["b"]["backups"] if b["id"] == b1] == [["b"]]
      and repos["b"]["wal"]["count"] > 0)
print("ok" if ok else "bad: %r" % (info,))
EOF
)
is "$check" "ok" "info --all-repos --json: top-level fields of a, repositories[], where each backup is"

run pgkeep_run verify --all-repos --read-data
is "$rc" 0 "verify --all-repos --read-data passes on every repository" || diag "$out" "$err"
like "$out" "repository a is consistent" "... a"
like "$out" "repository b is consistent \\(3 backup" "... b, with its three backups"
run pgkeep_run verify --all-repos --json
check=$(printf '%s\n' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], [r["repository"] for r in d["repositories"]])')
is "$check" "True ['a', 'b', 'c']" "verify --all-repos --json gathers one object per repository"

# ---------------------------------------------------------------- another cluster

run pgkeep_run copy --from c --to b --missing
fails "copy from another cluster's repository is refused" [ "$rc" -eq 0 ]
like "$err" "cannot copy from c to b: they hold different clusters" "... saying why"
run pgkeep_run copy --to c --missing
fails "copy to another cluster's repository is refused" [ "$rc" -eq 0 ]
is "$(find "$T/rc" -path '*backups*' -type f | wc -l)" "0" "... and nothing was written"

done_testing

#!/bin/sh
# verify --read-data on damaged storage: a backup whose chunk is damaged is
# reported as damaged on its own line and in the JSON (with counts), never
# as "data verified"; a sound backup beside it still is; a missing chunk is
# counted apart; the exit status is non-zero.  Backups come from
# import-dump, so no cluster is needed.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pgkeep_conf
ok "pgkeep init" pgkeep_init
repo_is_local || bail_out "this test damages objects of the local repository"

# import_random NAME: a plain SQL dump of random text, several chunks long.
import_random() {
	{ echo "-- PostgreSQL database dump"; head -c 4000000 /dev/urandom | base64; } >"$T/$1.sql"
	chmod 644 "$T/$1.sql"
	pgkeep_run import-dump "$T/$1.sql" --db "$1" --progress=none | head -n 1
}

chunks() {
	(cd "$TEST_REPO_PATH" && find chunks -type f | sort)
}

A=$(import_random a)
chunks >"$T/chunks.a"
B=$(import_random b)
chunks >"$T/chunks.ab"
C=$(import_random c)
chunks >"$T/chunks.abc"
like "$A $B $C" '^[0-9TZ]+-dump(-[0-9]+)? [0-9TZ]+-dump(-[0-9]+)? [0-9TZ]+-dump(-[0-9]+)?$' \
	"three dumps imported"
[ "$(wc -l <"$T/chunks.a")" -ge 3 ] || bail_out "dump a has fewer than 3 chunks"

run pgkeep_run verify --read-data
is "$rc" 0 "verify --read-data passes on sound storage" || diag "$out" "$err"
like "$out" "backup $A: data verified" "... each backup's line says data verified"

# Two chunks of a damaged, one chunk of b removed, c left alone.
repo_corrupt_object "$(sed -n 1p "$T/chunks.a")"
repo_corrupt_object "$(sed -n 2p "$T/chunks.a")"
gone=$(grep -vxF -f "$T/chunks.a" "$T/chunks.ab" | head -n 1)
[ -n "$gone" ] || bail_out "no chunk of b to remove"
mv "$TEST_REPO_PATH/$gone" "$T/gone.chunk"
run pgkeep_run verify --read-data
cmp_ok "$rc" -ne 0 "verify --read-data exits non-zero on damaged and missing chunks"
like "$out" "backup $A: damaged: 2 chunks" "a's line says what was found: 2 damaged chunks"
like "$out" "problem: backup $A: stream a.sql: chunk [0-9a-f]{64} is damaged" \
	"... each damaged chunk a problem naming backup, stream and chunk"
like "$out" "backup $B: missing: 1 chunk" "b's line says its chunk is missing"
ok "a's line does not say data verified" sh -c "! printf '%s\n' \"\$1\" | grep -q 'backup $A: data verified'" sh "$out"
ok "the problems count both damaged chunks and the missing one" \
	sh -c "printf '%s\n' \"\$1\" | grep -q 'verify: 3 problem(s)'" sh "$out"
like "$out" "backup $C: data verified" "c, untouched, is still data verified"

run pgkeep_run verify --read-data --json
cmp_ok "$rc" -ne 0 "verify --read-data --json exits non-zero too"
printf '%s\n' "$out" >"$T/verify.json"
got=$(python3 - "$T/verify.json" "$A" "$C" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
b = {x["id"]: x for x in d["backups"]}
a, c = b[sys.argv[2]], b[sys.argv[3]]
print(a["damaged_chunks"], a["damaged_streams"], a["missing_chunks"], a["data_verified"],
      c["damaged_chunks"], c["data_verified"], d["ok"], len(d["problems"]))
EOF
)
is "$got" "2 1 0 False 0 True False 3" \
	"JSON: a has damaged_chunks 2, damaged_streams 1, data_verified false; c is verified"

mv "$T/gone.chunk" "$TEST_REPO_PATH/$gone"
run pgkeep_run verify --read-data --json
got=$(printf '%s\n' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = {x["id"]: x for x in d["backups"]}
print(" ".join("%d/%d" % (b[i]["missing_chunks"], b[i]["damaged_chunks"]) for i in sys.argv[1:]))' "$A" "$B" "$C")
is "$got" "0/2 0/0 0/0" "with the chunk back, only a's damage remains (missing/damaged of a, b, c)"

done_testing

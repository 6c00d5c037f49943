#!/bin/sh
# Progress: on a terminal, backup and restore draw a live line (bytes, %,
# MB/s, ETA) rewritten in place and cleared at the end; --progress=json
# writes one JSON object per line whose bytes only grow, ending in a done
# event that counts every byte; with stderr not a terminal, auto mode
# writes nothing, and --progress=none nothing even on a terminal.  A base
# backup shows the wait for the server's checkpoint until the server
# streams, then its bytes against the server's own estimate.

. "${top_srcdir:-.}/tests/lib/integration.sh"

# on_tty OUT ERR CMD...: run CMD with its stderr on a pseudo-terminal,
# stdout into OUT and what the terminal showed into ERR; CMD's status.
on_tty() {
	python3 - "$@" <<'EOF'
import os, pty, subprocess, sys
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
master, slave = pty.openpty()
with open(out, "wb") as o:
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=slave)
os.close(slave)
shown = bytearray()
while True:
    try:
        data = os.read(master, 65536)
    except OSError:  # EIO: every writer has closed the terminal
        break
    if not data:
        break
    shown += data
with open(err, "wb") as e:
    e.write(shown)
sys.exit(p.wait())
EOF
}

# check_json FILE KIND: every line is a JSON object; progress bytes never
# shrink; one done event, last, with ok true.  Prints "NPROGRESS DONEBYTES
# DONETOTAL" for further checks, or a complaint on stderr and status 1.
check_json() {
	python3 - "$@" <<'EOF'
import json, sys
path, command = sys.argv[1], sys.argv[2]
events = []
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    try:
        e = json.loads(line)
    except ValueError as exc:
        sys.exit("line %d is not JSON (%s): %r" % (n, exc, line))
    if not isinstance(e, dict):
        sys.exit("line %d is not an object" % n)
    events.append(e)
if not events:
    sys.exit("no events")
last = 0
for e in events[:-1]:
    if e.get("event") != "progress":
        sys.exit("unexpected event before the end: %r" % e)
    for k in ("bytes", "total", "rate", "eta_s", "elapsed_s"):
        if k not in e:
            sys.exit("progress event lacks %s: %r" % (k, e))
    if e["command"] != command:
        sys.exit("wrong command: %r" % e)
    if e["bytes"] < last:
        sys.exit("bytes went down: %r" % e)
    last = e["bytes"]
done = events[-1]
if done.get("event") != "done" or done.get("ok") is not True:
    sys.exit("the last event is not a successful done: %r" % done)
if done["bytes"] < last:
    sys.exit("done counts fewer bytes than progress did: %r" % done)
print(len(events) - 1, done["bytes"], done["total"])
EOF
}

size_of() {
	pgkeep_run info --json | python3 -c 'import json, sys
print([b for b in json.load(sys.stdin)["backups"] if b["id"] == sys.argv[1]][0]["size"])' "$1"
}

pg_init "$T/pg1"
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_start

# Enough data that a backup spans a few reports; random text resists zstd,
# so the pipeline takes its time.
psql_q "create table filler as
	select g as id, md5(random()::text) || md5(random()::text) || repeat(md5(g::text), 4) as v
	from generate_series(1, 1500000) g" || bail_out "cannot fill the database"
psql_q "checkpoint" >/dev/null

PK="$PGKEEP --config $PGKEEP_CONF"

# ---------------------------------------------------------------- a terminal

on_tty "$T/base.out" "$T/base.tty" runuser -u postgres -- $PK backup --type=base
is "$?" "0" "backup --type=base on a terminal succeeds"
BASE=$(head -n 1 "$T/base.out")
like "$BASE" "^[0-9]{8}T[0-9]{6}Z-base" "stdout still carries the backup id first"
tty=$(tr '\r' '\n' <"$T/base.tty")
like "$tty" "backup: [0-9.]+ [kMG]?B / [0-9.]+ [kMG]?B +[0-9]+% +[0-9]+\.[0-9] MB/s +ETA [0-9]+m[0-9]{2}s" \
	"the terminal shows a progress line with bytes, total, %, MB/s and an ETA"
like "$tty" "backup: [0-9.]+ [kMG]B / " "a progress line shows bytes already read"
like "$tty" "backup: waiting for the server's checkpoint \([0-9]+ s\)" \
	"before the server sends a byte, the line shows the wait for its checkpoint"
cmp_ok "$(grep -o "$(printf '\r')" "$T/base.tty" | wc -l)" -ge 2 \
	"the line is rewritten in place (carriage returns)"
ok "the line is cleared at the end (the last thing shown is an erase)" \
	sh -c 'tail -c 4 "$1" | od -An -c | grep -q "033   \[   K"' sh "$T/base.tty"

t_mkdir "$T/r1"
on_tty "$T/r1.out" "$T/r1.tty" runuser -u postgres -- $PK restore "$BASE" --pgdata "$T/r1/data"
is "$?" "0" "restore on a terminal succeeds"
tty=$(tr '\r' '\n' <"$T/r1.tty")
like "$tty" "restore: [0-9.]+ [kMG]?B / [0-9.]+ [kMG]?B +[0-9]+% +[0-9]+\.[0-9] MB/s +ETA " \
	"restore shows a progress line too"
like "$(cat "$T/r1.out")" "^restored backup $BASE" "restore's summary is on stdout, apart"

on_tty "$T/none.out" "$T/none.tty" runuser -u postgres -- $PK backup --type=dump --progress=none
is "$?" "0" "backup --progress=none on a terminal succeeds"
is "$(wc -c <"$T/none.tty")" "0" "--progress=none shows nothing even on a terminal"

# ---------------------------------------------------------------- not a terminal

pgkeep_run backup --type=dump >"$T/auto.out" 2>"$T/auto.err"
is "$?" "0" "backup with stderr in a file succeeds"
is "$(wc -c <"$T/auto.err")" "0" "auto mode writes nothing when stderr is not a terminal"
t_mkdir "$T/r2"
pgkeep_run restore "$BASE" --pgdata "$T/r2/data" >"$T/auto.out" 2>"$T/auto.err"
is "$(wc -c <"$T/auto.err")" "0" "restore in auto mode writes nothing to a file either"

# ---------------------------------------------------------------- JSON

pgkeep_run backup --type=base --progress=json >"$T/json.out" 2>"$T/json.err"
is "$?" "0" "backup --type=base --progress=json succeeds"
JBASE=$(head -n 1 "$T/json.out")
like "$JBASE" "^[0-9]{8}T[0-9]{6}Z-base" "the backup id is on stdout, apart from the events"
if res=$(check_json "$T/json.err" backup); then
	pass "every backup progress line is a JSON object, bytes never shrink, done comes last"
else
	fail "every backup progress line is a JSON object, bytes never shrink, done comes last"
	diag "$(head -c 2000 "$T/json.err")"
	res="0 0 0"
fi
set -- $res
cmp_ok "$1" -ge 2 "the backup reported progress more than once"
is "$2" "$(size_of "$JBASE")" "done counts every byte of the backup"
cmp_ok "$3" -gt 100000000 "the total is the server's estimate of the data directory's size"
ok "the first event waits for the server's checkpoint, before any byte" python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).readline())
sys.exit(0 if e.get("waiting") == "waiting for the server\x27s checkpoint" and e["bytes"] == 0
         and e["total"] is None else 1)' "$T/json.err"
ok "once the server streams, no event waits any more" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
streaming = [e for e in ev if e["bytes"] > 0 or e["total"] is not None]
sys.exit(0 if streaming and all("waiting" not in e for e in streaming) else 1)' "$T/json.err"
ok "a progress event has bytes between 0 and the end" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
done = ev[-1]["bytes"]
sys.exit(0 if any(0 < e["bytes"] < done for e in ev[:-1]) else 1)' "$T/json.err"

t_mkdir "$T/r3"
pgkeep_run restore "$JBASE" --pgdata "$T/r3/data" --progress=json >"$T/rj.out" 2>"$T/rj.err"
is "$?" "0" "restore --progress=json succeeds"
if res=$(check_json "$T/rj.err" restore); then
	pass "every restore progress line is a JSON object, bytes never shrink, done comes last"
else
	fail "every restore progress line is a JSON object, bytes never shrink, done comes last"
	diag "$(head -c 2000 "$T/rj.err")"
	res="0 0 0"
fi
set -- $res
is "$2" "$(size_of "$JBASE")" "restore's done event counts every byte delivered"
is "$3" "$2" "restore's total is exact: the manifest's stream size"

pgkeep_run restore "$JBASE" --pgdata "$T/r3/data" --progress=json >/dev/null 2>"$T/rf.err"
cmp_ok "$?" -ne 0 "a restore into a non-empty directory fails"
like "$(grep '^{' "$T/rf.err" | tail -n 1)" '"event":"done".*"ok":false' \
	"a failed command ends its JSON with done, ok false"

fails "--progress with a bad mode is refused" pgkeep_run backup --type=dump --progress=loud

done_testing

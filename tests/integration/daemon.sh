#!/bin/sh
# pgkeep daemon: a dump job scheduled every minute runs twice, never two at
# once; `pgkeep schedule` shows the next runs; SIGTERM in the middle of a job
# stops the daemon cleanly and leaves no partial backup (no manifest).

. "${top_srcdir:-.}/tests/lib/integration.sh"

backups() { pgkeep_run info --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["backups"]))'; }
count() { grep -c "$1" "$T/daemon.log"; }

pg_init "$T/pg"
pg_start
pgkeep_conf
ok "init" pgkeep_init
psql_q "create table t as select g, md5(g::text) v from generate_series(1, 50000) g" || bail_out "data"
printf '\n[schedule]\ndump = * * * * *\n' | as_pg sh -c "cat >> '$PGKEEP_CONF'"

out=$(pgkeep_run schedule 2>&1)
is "$?" 0 "schedule prints the jobs"
like "$out" "dump +\* \* \* \* \* +[0-9]{4}-" "with the next run of the dump job"

# The shell around it records the daemon's exit status.
as_pg sh -c "'$PGKEEP' --config '$PGKEEP_CONF' daemon >'$T/daemon.log' 2>&1; echo \$? >'$T/daemon.rc'" &
at_exit "pkill -KILL -f -- '--config $PGKEEP_CONF daemon'"

# Two runs take up to two minutes and a bit; the deadline only bounds a hang.
ran_twice() { [ "$(count 'job dump finished: ok')" -ge 2 ]; }
wait_until 600 ran_twice
cmp_ok "$(count 'job dump finished: ok')" -ge 2 "the dump job ran twice"
is "$(backups)" "$(count 'job dump finished: ok')" "each run left exactly one backup"
# Never two at once: every "started" is followed by its "finished" before the next start.
seq=$(grep -oE 'job dump (started|finished)' "$T/daemon.log" | awk '{print $3}' | tr '\n' ' ')
like "$seq" "^(started finished )+(started )?$" "runs never overlap ($seq)"

# Make the next run slow (a store that answers slowly), then stop the daemon mid-job.
before=$(backups)
as_pg sed -i 's/^plugin = local$/plugin = fault\ndelay_ms = 300/' "$PGKEEP_CONF"
job_running() { [ "$(count 'job dump started')" -gt "$(count 'job dump finished')" ]; }
wait_until 300 job_running
sleep 2
cmp_ok "$(count 'job dump started')" -gt "$(count 'job dump finished')" "a job is running"
pkill -TERM -f -- "$PGKEEP --config $PGKEEP_CONF daemon"
wait_until 300 test -s "$T/daemon.rc"
is "$(cat "$T/daemon.rc" 2>/dev/null)" 0 "the daemon exits 0 on SIGTERM"
like "$(cat "$T/daemon.log")" "received SIGTERM" "and logs why"
like "$(tail -n 1 "$T/daemon.log")" "stopped" "its last line says it stopped"
as_pg sed -i 's/^plugin = fault$/plugin = local/; /^delay_ms = /d' "$PGKEEP_CONF"
is "$(backups)" "$before" "the interrupted job left no backup"
ok "verify passes" pgkeep_run verify
[ "$(backups)" = "$before" ] || diag "$(cat "$T/daemon.log")"

done_testing

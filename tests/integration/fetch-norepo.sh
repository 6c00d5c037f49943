#!/bin/sh
# A repository that is not there is not the end of the archive.  wal-fetch
# against a missing path, an empty (unmounted) directory, or one without a
# key slot exits above 125 with one line naming the repository, and creates
# nothing.  Then, end to end: a restored cluster whose restore_command gets
# the first segment from the real repository and the rest from an empty
# directory (then from a vanished path) must stop recovery, not promote onto
# a new timeline; pointed back at the real repository, it recovers every row.

. "${top_srcdir:-.}/tests/lib/integration.sh"

repo_is_local_default() { [ -z "$PGKEEP_TEST_REPO_CONF" ]; }
repo_is_local_default || { echo "1..0 # SKIP needs the default local repository"; exit 0; }

# conf_at FILE PATH: the test's config with the repository at PATH instead.
conf_at() {
	sed "s|^path = .*|path = $2|" "$PGKEEP_CONF" | as_pg sh -c 'umask 077; cat >"$1"' sh "$1"
}

pg_init "$T/pg1"
pgkeep_conf
ok "pgkeep init" pgkeep_init
pg_conf "archive_command = '\"$PGKEEP\" --config $PGKEEP_CONF wal-push %p'"
pg_start
PG1=$PGDATA

# ---------------------------------------------------------------- wal-fetch alone

SEG=000000010000000000000001
t_mkdir "$T/empty" "$T/slotless" "$T/fetched"
cp "$TEST_REPO_PATH/pgkeep.json" "$T/slotless/" && chown postgres "$T/slotless/pgkeep.json"
conf_at "$T/gone.conf" "$T/gone"
conf_at "$T/empty.conf" "$T/empty"
conf_at "$T/slotless.conf" "$T/slotless"

# fetch_status CONF: run wal-fetch of a segment with CONF; rc, err set.
fetch_status() {
	run as_pg "$PGKEEP" --config "$1" wal-fetch "$SEG" "$T/fetched/$SEG"
}

fetch_status "$T/gone.conf"
cmp_ok "$rc" -gt 125 "a repository path that does not exist: exit above 125"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... with one line"
like "$err" "repository test.*$T/gone does not exist" "... naming the repository and its path"
ok "... and the path is not created" [ ! -e "$T/gone" ]

fetch_status "$T/empty.conf"
cmp_ok "$rc" -gt 125 "an empty (unmounted) repository directory: exit above 125"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... with one line"
like "$err" "repository test has no pgkeep.json" "... naming the repository"
is "$(ls -A "$T/empty")" "" "... and nothing is written there"

fetch_status "$T/slotless.conf"
cmp_ok "$rc" -gt 125 "a repository with no key slot: exit above 125"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... with one line"
like "$err" "repository test has no key slot" "... naming the repository"

run as_pg "$PGKEEP" --config "$PGKEEP_CONF" -v wal-fetch 00000001000000FF000000FF "$T/fetched/x"
is "$rc" 1 "a segment missing from a repository that opened: exit 1"
is "$err" "pgkeep: wal-fetch: wal/00000001/00000001000000FF000000FF is not in the archive" \
	"... with one line at -v"
run as_pg "$PGKEEP" --config "$PGKEEP_CONF" wal-fetch 00000001000000FF000000FF "$T/fetched/x"
is "$rc:$err" "1:" "... and none without -v"

# ---------------------------------------------------------------- the archive

rows() {
	psql_q "select count(*) || ':' || coalesce(max(id), 0) from t"
}

psql_q "create table t(id int primary key, note text)" || bail_out "create table failed"
psql_q "insert into t select g, 'before' from generate_series(1, 100) g" || bail_out "insert failed"
run pgkeep_run backup --type=base
is "$rc" 0 "a base backup"
[ "$rc" -eq 0 ] || diag "$err"
# Rows in several segments after the backup: each one the archive must serve.
for k in 1 2 3 4 5; do
	psql_q "insert into t select g, 'after $k' from generate_series($k * 1000, $k * 1000 + 99) g" ||
		bail_out "insert failed"
	last=$(psql_q "select pg_walfile_name(pg_switch_wal())")
done
ok "the WAL of five more segments is archived" wait_archived "$last"
want=$(rows)
is "$want" "600:5099" "the primary holds 600 rows"
pg_stop

run pgkeep_run restore latest --pgdata "$T/r" --archive-mode=off
is "$rc" 0 "the backup is restored"
[ "$rc" -eq 0 ] || diag "$err"

# restore_command: the first segment from the real repository, every later
# call from the config named in $T/later (recording what each call did).
cat >"$T/fetch-wrapper" <<EOF
#!/bin/sh
conf=$PGKEEP_CONF
if [ -e "$T/first-served" ]; then conf=\$(cat "$T/later"); fi
"$PGKEEP" --config "\$conf" wal-fetch "\$1" "\$2"
rc=\$?
case "\$1" in
*.history) ;;
*) [ \$rc -eq 0 ] && touch "$T/first-served" ;;
esac
echo "\$1 \$conf \$rc" >>"$T/fetch.log"
exit \$rc
EOF
chmod 755 "$T/fetch-wrapper" && chown postgres "$T/fetch-wrapper"
printf "restore_command = '%s %%f %%p'\n" "$T/fetch-wrapper" >>"$T/r/postgresql.auto.conf"
port=$(free_port) || bail_out "no free port"
printf '%s\n' "$port" >"$T/r.port"
at_exit "runuser -u postgres -- '$PG_BINDIR/pg_ctl' -D '$T/r' -m immediate -w stop"
pg_use "$T/r"

# recover_with CONF LOG: start recovery with later calls going to CONF; wait
# until the server is gone (recovery stopped) or has left recovery.
recover_with() {
	local i=0
	printf '%s\n' "$1" >"$T/later"
	rm -f "$T/first-served"
	as_pg "$PG_BINDIR/pg_ctl" -D "$T/r" -l "$2" -o "-p $port" start >/dev/null 2>&1
	while [ $i -lt 600 ]; do
		sleep 0.2
		i=$((i + 1))
		[ -f "$T/r/postmaster.pid" ] || return 0
		[ "$(psql_q "select pg_is_in_recovery()" 2>/dev/null)" = f ] && return 0
	done
	return 1
}

cluster_state() {
	"$PG_BINDIR/pg_controldata" -D "$T/r" | sed -n 's/^Database cluster state: *//p'
}

for bad in empty gone; do
	recover_with "$T/$bad.conf" "$T/r.$bad.log"
	ok "$bad repository: the server stops rather than finishing recovery" [ ! -f "$T/r/postmaster.pid" ]
	fails "... no new timeline selected" grep -q "selected new timeline ID" "$T/r.$bad.log"
	fails "... no end of recovery" grep -q "archive recovery complete" "$T/r.$bad.log"
	like "$(grep 'wal-fetch' "$T/r.$bad.log" | head -n 1)" "error: cannot fetch .*repository test" \
		"... the log names the repository that failed"
	is "$(cluster_state)" "in archive recovery" "... the data directory is still in archive recovery"
	ok "... a first segment did come from the real repository" [ -e "$T/first-served" ]
	if [ -f "$T/r/postmaster.pid" ]; then
		as_pg "$PG_BINDIR/pg_ctl" -D "$T/r" -m immediate -w stop >/dev/null 2>&1
	fi
done
ok "the vanished repository path was not created" [ ! -e "$T/gone" ]
is "$(ls -A "$T/empty")" "" "nothing was written into the empty directory"

recover_with "$PGKEEP_CONF" "$T/r.real.log"
is "$(psql_q "select pg_is_in_recovery()" 2>/dev/null)" f \
	"pointed back at the real repository, recovery completes"
is "$(rows)" "$want" "every row is back ($want)"
[ "$(rows)" = "$want" ] || diag "$(cat "$T/fetch.log")"
like "$(grep 'selected new timeline ID' "$T/r.real.log")" "selected new timeline ID: 2" \
	"... and only then a new timeline is chosen"

done_testing

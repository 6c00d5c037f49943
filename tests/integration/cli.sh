#!/bin/sh
# The command line: every command's help (`pgkeep help COMMAND` and `pgkeep
# COMMAND --help`, one text) lists each option of its table and the parser
# takes each one; unknown commands and options are refused naming the
# nearest; global options work after the command too; each message carries
# "pgkeep: COMMAND:" once; --all-repos --json gathers exactly what each
# repository alone prints.  No cluster is needed.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pgkeep_conf
ok "pgkeep init" pgkeep_init

dump=$("$PGKEEP" help --dump-options)
commands=$("$PGKEEP" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
cmp_ok "$(printf '%s\n' "$commands" | wc -l)" -ge 18 "pgkeep help lists the commands"
cmp_ok "$(printf '%s\n' "$dump" | wc -l)" -ge 50 "the option tables are dumped"

# accepted COMMAND OPTION ARG: the parser knows it (whatever the value or the
# missing config then say).
accepted() {
	local c=$1 o=$2 a=$3
	if [ "$a" = - ]; then
		run "$PGKEEP" --config "$T/none.conf" "$c" "$o"
	else
		run "$PGKEEP" --config "$T/none.conf" "$c" "$o" "$T/x"
	fi
	! printf '%s\n' "$err" | grep -qE "unknown option|ambiguous|needs an argument|takes no argument"
}

for c in $commands; do
	help=$("$PGKEEP" help "$c")
	run "$PGKEEP" "$c" --help
	is "$out" "$help" "$c --help is pgkeep help $c" && is "$rc" 0 "... and succeeds"
	while read -r _ o s a; do
		[ "$o" = --help ] && continue
		printf '%s\n' "$help" | grep -qE -- "(^|[ ,])$o([ =]|\$)"
		t_result $? "help $c lists $o"
		if [ "$s" != - ]; then
			printf '%s\n' "$help" | grep -qE -- "(^| )$s, $o"
			t_result $? "help $c lists $s with $o"
		fi
		ok "the parser of $c takes $o" accepted "$c" "$o" "$a" || diag "$err"
	done <<EOF
$(printf '%s\n' "$dump" | awk -v c="$c" '$1 == c || $1 == "pgkeep"')
EOF
	# Nothing the help shows is unknown to the table.
	for o in $(printf '%s\n' "$help" | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+'); do
		printf '%s\n' "$dump" | awk -v c="$c" -v o="$o" '($1 == c || $1 == "pgkeep") && $2 == o {f = 1} END {exit !f}'
		t_result $? "help $c shows $o, which the table has"
	done
done

run "$PGKEEP" inf
is "$rc" 3 "an unknown command is a usage error"
is "$err" "pgkeep: unknown command 'inf'; did you mean 'info'?" "... naming the nearest command"
run "$PGKEEP" help restor
is "$err" "pgkeep: unknown command 'restor'; did you mean 'restore'?" "help of an unknown command: the same"
run "$PGKEEP" frobnicate
is "$err" "pgkeep: unknown command 'frobnicate' (see 'pgkeep help')" "a command far from any: no guess"

run pgkeep_run backup --type=base --lable x
is "$rc" 3 "an unknown option is a usage error"
is "$err" "pgkeep: backup: error: unknown option '--lable'; did you mean '--label'?" \
	"... naming the nearest option, with the prefix once"
run pgkeep_run expire --dry-rn
like "$err" "did you mean '--dry-run'\\?" "expire --dry-rn: did you mean --dry-run"
run pgkeep_run list --cnofig x
like "$err" "did you mean '--config'\\?" "a global option is suggested too"
run pgkeep_run verify --re
like "$err" "'--re' is ambiguous: --read-data or --repo" "an ambiguous prefix is refused"
run pgkeep_run expire --dry --json
is "$rc" 0 "a unique prefix is taken (--dry for --dry-run)" || diag "$err"
run pgkeep_run restore latest --pgdata
like "$err" "^pgkeep: restore: error: option '--pgdata' needs an argument\$" "a missing argument is named"
run pgkeep_run list --all-repos=yes
like "$err" "option '--all-repos' takes no argument" "so is an argument too many"
run "$PGKEEP" wal-fetch 000000010000000000000001
is "$rc" 128 "wal-fetch: a bad command line stops recovery (exit 128), never 'not found'"
run "$PGKEEP" wal-fetch --bogus a b
is "$rc" 128 "... also an unknown option"

# Global options after the command.
run as_pg "$PGKEEP" list --config "$PGKEEP_CONF"
is "$rc" 0 "--config after the command is used" || diag "$err"
run as_pg "$PGKEEP" list --repo nope --config "$PGKEEP_CONF"
like "$err" "no repository named 'nope'" "... and --repo"
run as_pg "$PGKEEP" list -c "$PGKEEP_CONF" -v
like "$err" "repository test has no backups" "... and -v (info messages)"
run as_pg "$PGKEEP" list -q -c "$PGKEEP_CONF"
is "$err" "" "... and -q"
run pgkeep_run restore latest -- --pgdata
like "$err" "name one backup" "after '--' nothing is an option"

# Every stderr line of a failing command: the prefix once.
run pgkeep_run copy --to test --missing
is "$(printf '%s\n' "$err" | grep -c '^pgkeep: copy: error: ')" "$(printf '%s\n' "$err" | wc -l)" \
	"copy: every message starts with 'pgkeep: copy: error: '" || diag "$err"
ok "... once" sh -c '! printf "%s\n" "$1" | grep -q "copy: .*copy:"' sh "$err"

# --all-repos --json holds what each repository alone gives.
pgkeep_conf "$T/two.conf"
as_pg sh -c 'printf "\n[repo:second]\nplugin = local\npath = %s\n" "$1" >>"$2"' sh "$T/repo2" "$T/two.conf"
ok "a second repository" as_pg "$PGKEEP" --config "$T/two.conf" --repo second init --kdf-n 1024
for c in "expire --dry-run" "verify"; do
	run as_pg "$PGKEEP" --config "$T/two.conf" $c --all-repos --json
	is "$rc" 0 "$c --all-repos --json" || diag "$err"
	all=$out
	for r in test second; do
		one=$(as_pg "$PGKEEP" --config "$T/two.conf" --repo "$r" $c --json 2>/dev/null)
		same=$(python3 -c 'import json, sys
a = json.loads(sys.argv[1]); one = json.loads(sys.argv[2])
print([x for x in a["repositories"] if x["repository"] == sys.argv[3]] == [one])' "$all" "$one" "$r")
		is "$same" True "$c --all-repos --json: repository $r as alone"
	done
done
run as_pg "$PGKEEP" --config "$T/two.conf" --repo test verify --all-repos
is "$rc" 3 "--all-repos with --repo is a usage error"

done_testing

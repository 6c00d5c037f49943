#!/bin/sh
# The manual agrees with the program: every command `pgkeep help` lists, and
# every option `pgkeep help COMMAND` shows, is in pgkeep(1); every [global]
# setting the config parser knows is in pgkeep.conf(5).

set -u
: "${top_srcdir:?}" "${PGKEEP:?}"
man1=$top_srcdir/doc/pgkeep.1
man5=$top_srcdir/doc/pgkeep.conf.5
n=0 failed=0
result() { # STATUS DESC
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
# man source writes "-" as "\-".
in_man() { sed 's/\\-/-/g; s/\\(em/-/g' "$1" | grep -qF -- "$2"; }

commands=$("$PGKEEP" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ -n "$commands" ]
result $? "pgkeep help lists commands"
for c in $commands; do
	in_man "$man1" ".B $c"
	result $? "pgkeep(1) documents the command $c"
	for o in $("$PGKEEP" help "$c" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		in_man "$man1" "$o"
		result $? "pgkeep(1) documents $c $o"
	done
done
# The [global] keys, read from the parser's own table.
keys=$(sed -n '/global_names\[G_COUNT\] = {/,/};/p' "$top_srcdir/src/common/config.c" |
	grep -oE '"[a-z_]+"' | tr -d '"')
[ -n "$keys" ]
result $? "the parser's [global] keys are found"
for k in $keys; do
	in_man "$man5" ".B $k"
	result $? "pgkeep.conf(5) documents $k"
done
echo "1..$n"
[ $failed -eq 0 ]

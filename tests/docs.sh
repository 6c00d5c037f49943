#!/bin/sh
# The manual agrees with the program: every command `pgkeep help` lists, and
# every option `pgkeep help COMMAND` shows, is in pgkeep(1); every [global]
# setting the config parser knows is in pgkeep.conf(5).

set -u
: "${top_srcdir:?}" "${PGKEEP:?}"
man1=$top_srcdir/doc/pgkeep.1
man5=$top_srcdir/doc/pgkeep.conf.5
. "$top_srcdir/tests/lib/tap.sh"
# man source writes "-" as "\-".
in_man() { sed 's/\\-/-/g; s/\\(em/-/g' "$1" | grep -qF -- "$2"; }

commands=$("$PGKEEP" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
ok "pgkeep help lists commands" [ -n "$commands" ]
for c in $commands; do
	ok "pgkeep(1) documents the command $c" in_man "$man1" ".B $c"
	for o in $("$PGKEEP" help "$c" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		ok "pgkeep(1) documents $c $o" in_man "$man1" "$o"
	done
done
# The [global] keys, read from the parser's own table.
keys=$(sed -n '/global_names\[G_COUNT\] = {/,/};/p' "$top_srcdir/src/common/config.c" |
	grep -oE '"[a-z_]+"' | tr -d '"')
ok "the parser's [global] keys are found" [ -n "$keys" ]
for k in $keys; do
	ok "pgkeep.conf(5) documents $k" in_man "$man5" ".B $k"
done
done_testing

#!/bin/sh
# The manual agrees with the program: every command `pgkeep help` lists is
# in pgkeep(1), and every option of its option table (the one that parses and
# prints its help, dumped by `pgkeep help --dump-options`) is in the
# command's own entry there, the global options under GLOBAL OPTIONS; every
# [global] setting the config parser knows is in pgkeep.conf(5).

set -u
: "${top_srcdir:?}" "${PGKEEP:?}"
man1=$top_srcdir/doc/pgkeep.1
man5=$top_srcdir/doc/pgkeep.conf.5
. "$top_srcdir/tests/lib/tap.sh"
# man source writes "-" as "\-".
in_man() { sed 's/\\-/-/g; s/\\(em/-/g' "$1" | grep -qF -- "$2"; }

commands=$("$PGKEEP" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
ok "pgkeep help lists commands" [ -n "$commands" ]
dump=$("$PGKEEP" help --dump-options)
ok "pgkeep help --dump-options lists the option tables" [ -n "$dump" ]
# man_entry COMMAND: its entry under COMMANDS (".TP", ".B COMMAND ..." up to
# the next command's), or the GLOBAL OPTIONS section for "pgkeep".
man_entry() {
	sed 's/\\-/-/g; s/\\(em/-/g' "$man1" | awk -v want="$1" -v cmds=" $(echo $commands) " '
		/^\.SH / { on = want == "pgkeep" && $0 == ".SH GLOBAL OPTIONS"; tp = 0; next }
		tp && /^\.B / && index(cmds, " " $2 " ") { on = $2 == want }
		{ tp = $0 == ".TP" }
		on'
}
# in_entry TEXT: the entry in $entry mentions TEXT.
in_entry() { printf '%s\n' "$entry" | grep -qF -- "$1"; }
for c in pgkeep $commands; do
	entry=$(man_entry "$c")
	if [ "$c" != pgkeep ]; then
		ok "pgkeep(1) documents the command $c" [ -n "$entry" ]
	fi
	for o in $(printf '%s\n' "$dump" | awk -v c="$c" '$1 == c {print $2}'); do
		ok "pgkeep(1) documents $c $o where it describes $c" in_entry "$o"
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

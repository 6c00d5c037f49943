#!/bin/sh
# After `make install DESTDIR=DIR`: the binary, the plugins, the header, the
# manual pages and the systemd units are all there, every manual page renders
# without a warning, and systemd-analyze accepts every unit.
#
#   tests/install-check.sh DESTDIR PREFIX UNITDIR
set -u
dest=$1 prefix=$2 unitdir=$3
# The Makefile's value may still name ${prefix} (the default is under it).
unitdir=$(printf '%s\n' "$unitdir" | sed "s|\${prefix}|$prefix|")
. "$(dirname "$0")/lib/tap.sh"
# check DESC CMD...: ok, with CMD's complaint shown when it fails.
check() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>"$dest.err"; then
		pass "$desc"
	else
		fail "$desc"
		diag_file "$dest.err"
	fi
}
renders() { out=$(groff -man -Tutf8 -ww -z "$1" 2>&1) && [ -z "$out" ] || { echo "$out" >&2; return 1; }; }

check "pgkeep installed" test -x "$dest$prefix/bin/pgkeep"
check "it runs" "$dest$prefix/bin/pgkeep" --version
check "the units are under the prefix unless configured elsewhere" test -f "$dest$unitdir/pgkeep-expire.timer"
for p in local s3 b2 sftp; do
	check "plugin $p installed" test -f "$dest$prefix/lib/pgkeep/$p.so"
done
check "no libtool archives beside the plugins" sh -c "! ls '$dest$prefix'/lib/pgkeep/*.la 2>/dev/null | grep -q ."
check "the fault-injecting test plugin is not installed" test ! -e "$dest$prefix/lib/pgkeep/fault.so"
check "the plugin header installed" test -f "$dest$prefix/include/pgkeep/storage.h"
for m in man1/pgkeep.1 man5/pgkeep.conf.5 man7/pgkeep-plugin.7; do
	check "$m installed" test -f "$dest$prefix/share/man/$m"
	check "$m renders without warnings" renders "$dest$prefix/share/man/$m"
done

# systemd-analyze checks that ExecStart exists: point the copies at the
# installed binary; a template is checked through an instance.
units=$(mktemp -d)
for u in "$dest$unitdir"/pgkeep*; do
	sed "s|^ExecStart=$prefix/bin/pgkeep|ExecStart=$dest$prefix/bin/pgkeep|" "$u" >"$units/$(basename "$u")"
done
mv "$units/pgkeep-backup@.service" "$units/pgkeep-backup@dump.service"
cp "$units/pgkeep-backup@dump.service" "$units/pgkeep-backup@base.service"
for u in "$units"/*; do
	check "systemd-analyze verify $(basename "$u")" systemd-analyze verify --man=no "$u"
done
check "the backup service runs as postgres" grep -q '^User=postgres$' "$units/pgkeep-backup@dump.service"
for h in ProtectSystem PrivateTmp NoNewPrivileges; do
	check "the backup service sets $h" grep -q "^$h=" "$units/pgkeep-backup@dump.service"
done
rm -rf "$units" "$dest.err"
done_testing

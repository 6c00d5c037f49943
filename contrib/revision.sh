#!/bin/sh
# Write the source revision into a C header for `pgkeep --version`, touching
# the header only when the revision changed (so a build does not recompile
# for nothing).  A release tarball carries the revision in .revision; a git
# checkout asks git; anything else says "unknown".
#
#   contrib/revision.sh SRCDIR OUTPUT
set -eu
srcdir=$1
out=$2

if [ -f "$srcdir/.revision" ]; then
	rev=$(cat "$srcdir/.revision")
elif rev=$(git -C "$srcdir" describe --always --dirty --abbrev=12 2>/dev/null); then
	:
else
	rev=unknown
fi
case $rev in
*[!A-Za-z0-9._+-]*) rev=unknown ;;
esac

new="#define PGKEEP_REVISION \"$rev\""
if [ -f "$out" ] && [ "$(cat "$out")" = "$new" ]; then
	exit 0
fi
mkdir -p "$(dirname "$out")"
printf '%s\n' "$new" >"$out.tmp"
mv "$out.tmp" "$out"

#!/bin/sh
# `pgkeep --version` (and `pgkeep version`) name the release and the source
# revision the binary was built from: in a git checkout, what git describes.

. "${top_srcdir:-.}/tests/lib/integration.sh"

v=$("$PGKEEP" --version)
like "$v" '^pgkeep [0-9]+\.[0-9]+\.[0-9]+ \(revision [0-9A-Za-z._+-]+\)$' "--version names release and revision"
is "$("$PGKEEP" version)" "$v" "pgkeep version says the same"
rev=$(printf '%s\n' "$v" | sed -n 's/.*(revision \(.*\))$/\1/p')
if [ -f "$top_srcdir/.revision" ]; then
	is "$rev" "$(cat "$top_srcdir/.revision")" "a release tarball's revision is its .revision"
elif want=$(git -C "$top_srcdir" describe --always --dirty --abbrev=12 2>/dev/null); then
	# The binary may predate uncommitted edits made since the build.
	is "${rev%-dirty}" "${want%-dirty}" "the revision is the checkout's ($want)"
else
	is "$rev" "unknown" "outside git and without .revision the revision is unknown"
fi

done_testing

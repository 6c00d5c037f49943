#!/bin/sh
# The Debian packages, end to end: build them from a copy of the tree with
# dpkg-buildpackage, check them with lintian, install them into a fresh
# Debian 12 root (debootstrap) beside PostgreSQL 15 and its stock cluster
# (made by pg_createcluster, config in /etc/postgresql/15/main), take a dump
# backup and restore it with the installed files, then purge the packages and
# find nothing of them left behind.  TAP output.  Needs root and Debian's
# package mirror.
#
#   tests/package.sh SRCDIR [WORKDIR]
#
# The minimal root is cached in $PGKEEP_TEST_PG_CACHE (default
# /var/cache/pgkeep-test) so that later runs do not fetch it again.
set -u

src=$(cd "$1" && pwd)
work=${2:-$(mktemp -d /tmp/pgkeep-package.XXXXXX)}
cache=${PGKEEP_TEST_PG_CACHE:-/var/cache/pgkeep-test}
root=$work/root
n=0 failed=0

ok() { # DESC CMD...
	desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$work/last.out" 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' "$work/last.out" | tail -n 40
		failed=$((failed + 1))
	fi
}
bail_out() {
	echo "Bail out! $*"
	exit 1
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_postgres() { in_root runuser -u postgres -- "$@"; }

cleanup() {
	for m in "$root/dev/pts" "$root/dev" "$root/proc" "$root/sys"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	# Never remove through a mount that is still there (/dev is bound in).
	if grep -q " $root/" /proc/mounts; then
		echo "# $root still has mounts; left in place" >&2
	elif [ -z "${KEEP_TEST_DIR:-}" ]; then
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP needs root (debootstrap, chroot)"; exit 0; }

# ------------------------------------------------------------ build and lint

mkdir -p "$work/pkg/pgkeep"
tar -C "$src" --exclude=./build --exclude='./build-*' --exclude=./.git -cf - . |
	tar -C "$work/pkg/pgkeep" -xf -
# The package's pgkeep --version names the revision it was built from.
sh "$src/contrib/revision.sh" "$src" "$work/rev.h"
sed -n 's/^#define PGKEEP_REVISION "\(.*\)"$/\1/p' "$work/rev.h" >"$work/pkg/pgkeep/.revision"
rm -f "$work/pkg/pgkeep/configure" "$work/pkg/pgkeep/config.status"

build() {
	cd "$work/pkg/pgkeep" &&
		DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b
}
ok "dpkg-buildpackage -us -uc -b builds the packages" build
v=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
for p in pgkeep pgkeep-plugin-s3 pgkeep-plugin-b2 pgkeep-plugin-sftp; do
	ok "$p ${v} built" test -f "$work/pkg/${p}_${v}_amd64.deb"
done
ok "lintian reports no error" lintian --fail-on error "$work/pkg/pgkeep_${v}_amd64.changes"
deps=$(dpkg-deb -f "$work/pkg/pgkeep_${v}_amd64.deb" Depends)
ok "the agent's package pulls no libcurl or libssh2" sh -c "! echo '$deps' | grep -Eq 'libcurl|libssh2'"
ok "the S3 plugin's package pulls libcurl" sh -c "dpkg-deb -f '$work/pkg/pgkeep-plugin-s3_${v}_amd64.deb' Depends | grep -q libcurl"
ok "the SFTP plugin's package pulls libssh2" sh -c "dpkg-deb -f '$work/pkg/pgkeep-plugin-sftp_${v}_amd64.deb' Depends | grep -q libssh2"
[ "$failed" -eq 0 ] || bail_out "the packages did not build"

# ------------------------------------------------------------ a fresh root

mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || bail_out "no Debian mirror found in /etc/apt"
mkdir -p "$cache" "$root"
if [ ! -s "$cache/bookworm-minbase.tar" ]; then
	debootstrap --variant=minbase bookworm "$work/boot" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$work/debootstrap.log"; bail_out "debootstrap failed"; }
	tar -C "$work/boot" -cf "$cache/bookworm-minbase.tar.tmp" . &&
		mv "$cache/bookworm-minbase.tar.tmp" "$cache/bookworm-minbase.tar"
	rm -rf "$work/boot"
fi
tar -C "$root" -xf "$cache/bookworm-minbase.tar" || bail_out "cannot unpack the minimal root"
mount -t proc proc "$root/proc" && mount --bind /dev "$root/dev" &&
	mount --bind /dev/pts "$root/dev/pts" && mount -t sysfs sys "$root/sys" ||
	bail_out "cannot mount /proc, /dev and /sys in the root"
# No service starts inside the root on its own (the test starts the cluster).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null

install_pg() {
	in_root apt-get update -qq &&
		in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null'
}
ok "PostgreSQL 15 installs in the fresh root (its cluster made by pg_createcluster)" install_pg
ok "the stock cluster keeps its config in /etc/postgresql/15/main" test -f "$root/etc/postgresql/15/main/postgresql.conf"

# What the root holds before pgkeep, to compare after the purge.  dpkg's and
# apt's own records, logs and the test's cluster data change by themselves.
snapshot() {
	(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run \
		-o -path ./tmp -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache \
		-o -path ./var/log -o -path ./var/lib/postgresql -o -path ./etc/ld.so.cache \) -prune -o -print) |
		sort
}
snapshot >"$work/before.txt"

# ------------------------------------------------------------ install and use

mkdir -p "$root/tmp/debs"
cp "$work/pkg/"*_"${v}"_*.deb "$root/tmp/debs/"
rm -f "$root/tmp/debs/"*-dbgsym_*.deb
install_pgkeep() {
	in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/debs/pgkeep_*.deb /tmp/debs/pgkeep-plugin-*.deb >/dev/null'
}
ok "the packages install with apt" install_pgkeep
ok "pgkeep --version names the revision" sh -c "chroot '$root' pgkeep --version | grep -q '(revision $(cat "$work/pkg/pgkeep/.revision"))'"
# (owners read inside the root: its postgres has its own uid)
ok "/etc/pgkeep belongs to postgres" sh -c "[ \"\$(chroot '$root' stat -c %U:%a /etc/pgkeep)\" = postgres:750 ]"
ok "/var/spool/pgkeep belongs to postgres" sh -c "[ \"\$(chroot '$root' stat -c %U /var/spool/pgkeep)\" = postgres ]"
ok "the units are installed" test -f "$root/lib/systemd/system/pgkeep-backup@.service"
ok "no timer is enabled by the package" sh -c "! ls '$root'/etc/systemd/system/*.wants/pgkeep* 2>/dev/null | grep -q ."
ok "the plugin READMEs are in /usr/share/doc/pgkeep" test -f "$root/usr/share/doc/pgkeep/README.s3.md.gz"
ok "the manual pages are installed" test -f "$root/usr/share/man/man5/pgkeep.conf.5.gz"

ok "the stock cluster starts" in_root pg_ctlcluster 15 main start
cat >"$root/etc/pgkeep/pgkeep.conf" <<'EOF'
[global]
repo = local
passphrase_file = /etc/pgkeep/passphrase
conninfo = host=/var/run/postgresql dbname=postgres

[repo:local]
plugin = local
path = /var/lib/postgresql/pgkeep-repo
keep_last = 3
EOF
echo "correct horse battery staple for the package test" >"$root/etc/pgkeep/passphrase"
in_root chown postgres:postgres /etc/pgkeep/pgkeep.conf /etc/pgkeep/passphrase
chmod 600 "$root/etc/pgkeep/pgkeep.conf" "$root/etc/pgkeep/passphrase"

ok "pgkeep init with the installed files" as_postgres pgkeep init
ok "a database with rows" as_postgres psql -q -X -v ON_ERROR_STOP=1 -c "create database app" \
	-c "\\c app" -c "create table t (id int primary key, v text)" \
	-c "insert into t select g, md5(g::text) from generate_series(1, 5000) g"
ok "pgkeep backup --type=dump of the database" as_postgres pgkeep backup --type=dump --db app
ok "pgkeep restore of the dump into a new database" as_postgres pgkeep restore latest --dbname app_restored --create
rows_sum() { as_postgres psql -X -A -t -d "$1" -c "select count(*), md5(string_agg(v, ',' order by id)) from t"; }
want=$(rows_sum app)
ok "the restored rows are the backed-up ones ($want)" sh -c "[ '$(rows_sum app_restored)' = '$want' ] && [ -n '$want' ]"
ok "pgkeep verify with the installed plugin" as_postgres pgkeep verify
ok "the stock cluster stops" in_root pg_ctlcluster 15 main stop

# ------------------------------------------------------------ purge

rm -f "$root/etc/pgkeep/pgkeep.conf" "$root/etc/pgkeep/passphrase"
purge() {
	in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove pgkeep pgkeep-plugin-s3 pgkeep-plugin-b2 pgkeep-plugin-sftp >/dev/null'
}
ok "the packages purge, with the libraries only they pulled in" purge
ok "dpkg knows none of them any more" sh -c "! chroot '$root' dpkg -l 'pgkeep*' 2>/dev/null | grep -q '^[a-z][a-z] '"
ok "/etc/pgkeep and /var/spool/pgkeep are gone" sh -c "[ ! -e '$root/etc/pgkeep' ] && [ ! -e '$root/var/spool/pgkeep' ]"
snapshot >"$work/after.txt"
ok "nothing of pgkeep is left behind in the root" diff "$work/before.txt" "$work/after.txt"

echo "1..$n"
[ "$failed" -eq 0 ]

#!/bin/sh
# pgkeep starts without libpq and libarchive and all they pull in (Kerberos,
# LDAP, GnuTLS, ICU, libxml2): wal-push and wal-fetch run once per segment.
# The ELF NEEDED entries say what every start maps; the dynamic loader's
# trace (LD_DEBUG=files) says what a command opened later.  Commands that
# need a library still get it and work.

. "${top_srcdir:-.}/tests/lib/integration.sh"

HEAVY='libpq|libarchive|libgssapi_krb5|libldap|libgnutls|libicu|libxml2'

# lacks TEXT ERE: no line of TEXT matches ERE.
lacks() {
	! printf '%s\n' "$1" | grep -Eq "$2"
}

# opened CMD...: runs CMD with the loader tracing; sets rc, and libs to the
# libraries it opened, one a line.
opened() {
	LD_DEBUG=files "$@" >"$T/opened.out" 2>"$T/opened.err"
	rc=$?
	libs=$(sed -n 's/.*file=\([^ ]*\) .*/\1/p' "$T/opened.err" | sort -u)
}

needed=$(${READELF:-readelf} -d "$PGKEEP" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
[ -n "$needed" ] || bail_out "readelf -d $PGKEEP shows no NEEDED entries (not an ELF program?)"
diag "NEEDED: $(echo $needed)"
ok "pgkeep's NEEDED entries name none of libpq, libarchive and their dependencies" \
	lacks "$needed" "^($HEAVY)"

opened "$PGKEEP" --version
is "$rc" "0" "pgkeep --version works"
ok "pgkeep --version opens none of them" lacks "$libs" "^($HEAVY)"

pg_init "$T/pg1"
pg_start
pgkeep_conf
ok "pgkeep init" pgkeep_init

# pgkeep as postgres in the data directory (relative %p, as the archiver runs it).
pgkeep_traced() {
	as_pg env -C "$PGDATA" LD_DEBUG=files "$PGKEEP" --config "$PGKEEP_CONF" "$@"
}

seg=$(psql_q "select pg_walfile_name(pg_current_wal_lsn())")
psql_q "select pg_switch_wal()" >/dev/null
opened pgkeep_traced wal-push "pg_wal/$seg"
is "$rc" "0" "wal-push works" || diag "$(grep -v "^ *[0-9]*:" "$T/opened.err" | tail -n 5)"
ok "wal-push opens neither libpq nor libarchive" lacks "$libs" "^($HEAVY)"
opened pgkeep_traced wal-fetch "$seg" "$T/seg"
is "$rc" "0" "wal-fetch works"
ok "wal-fetch opens neither libpq nor libarchive" lacks "$libs" "^($HEAVY)"

# A dump: libpq for the connection, not libarchive.
opened pgkeep_traced backup --type=dump
is "$rc" "0" "backup --type=dump works" || diag "$(grep -v "^ *[0-9]*:" "$T/opened.err" | tail -n 5)"
like "$libs" "libpq\.so" "backup --type=dump opened libpq when it connected"
ok "backup --type=dump did not open libarchive" lacks "$libs" "^libarchive"

# A compressed dump file: libarchive, not libpq.
as_pg sh -c 'printf -- "--\n-- PostgreSQL database dump\n--\n\nselect 1;\n" | gzip >"$1"' \
	sh "$T/one.sql.gz"
opened pgkeep_traced import-dump "$T/one.sql.gz" --db postgres
is "$rc" "0" "import-dump of a gzip'd file works" || diag "$(grep -v "^ *[0-9]*:" "$T/opened.err" | tail -n 5)"
like "$libs" "libarchive\.so" "import-dump opened libarchive to decompress"
ok "import-dump did not open libpq" lacks "$libs" "^libpq"

done_testing

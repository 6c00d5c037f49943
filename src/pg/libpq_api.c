/*
 * The libpq table and the two calls that load libpq before handing out
 * anything of it (see libpq_api.h).
 */
#include "config.h"
#include "common/error.h"
#include "pg/libpq_api.h"

struct pgk_libpq pgk_libpq;

#define PGK_LIBPQ_SYM(f) { #f, (void **)&pgk_libpq.fn_##f },
static const struct lazylib_sym libpq_syms[] = { PGK_LIBPQ_FUNCS(PGK_LIBPQ_SYM) };

struct lazylib libpq_lazylib = {
	.soname = PGK_LIBPQ_SONAME,
	.purpose = "needed to talk to PostgreSQL",
	.syms = libpq_syms,
	.nsyms = sizeof(libpq_syms) / sizeof(libpq_syms[0]),
};

int libpq_load(void)
{
	return lazylib_load(&libpq_lazylib);
}

int libpq_connect(PGconn **out, const char *const *keys, const char *const *vals,
		  int expand_dbname)
{
	int rc = libpq_load();

	if (rc < 0)
		return rc;
	*out = pgk_libpq.fn_PQconnectdbParams(keys, vals, expand_dbname);
	if (!*out)
		return pgk_error(PGKEEP_ENOMEM, "out of memory connecting to PostgreSQL");
	return 0;
}

int libpq_conninfo_parse(PQconninfoOption **out, const char *conninfo, char **errmsg)
{
	int rc = libpq_load();

	if (rc < 0)
		return rc;
	*out = pgk_libpq.fn_PQconninfoParse(conninfo, errmsg);
	return 0;
}

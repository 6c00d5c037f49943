/*
 * The libarchive table and the two calls that load libarchive before
 * handing out an archive (see libarchive_api.h).
 */
#include "config.h"
#include "common/error.h"
#include "pg/libarchive_api.h"

struct pgk_libarchive pgk_libarchive;

#define PGK_LIBARCHIVE_SYM(f) { #f, (void **)&pgk_libarchive.fn_##f },
static const struct lazylib_sym libarchive_syms[] = { PGK_LIBARCHIVE_FUNCS(PGK_LIBARCHIVE_SYM) };

struct lazylib libarchive_lazylib = {
	.soname = PGK_LIBARCHIVE_SONAME,
	.purpose = "needed for tar streams and compressed dumps",
	.syms = libarchive_syms,
	.nsyms = sizeof(libarchive_syms) / sizeof(libarchive_syms[0]),
};

int libarchive_load(void)
{
	return lazylib_load(&libarchive_lazylib);
}

/* libarchive's constructors return NULL only when memory runs out. */
static int new_archive(struct archive **out, struct archive *a)
{
	*out = a;
	return a ? 0 : pgk_error(PGKEEP_ENOMEM, "out of memory creating a libarchive handle");
}

int libarchive_read_new(struct archive **out)
{
	int rc = libarchive_load();

	return rc < 0 ? rc : new_archive(out, pgk_libarchive.fn_archive_read_new());
}

int libarchive_write_disk_new(struct archive **out)
{
	int rc = libarchive_load();

	return rc < 0 ? rc : new_archive(out, pgk_libarchive.fn_archive_write_disk_new());
}

/*
 * libpq and libarchive opened on first use: nothing is loaded until asked,
 * a library that cannot be opened (or lacks a function) fails the entry
 * points with one message naming it, and once loaded the tables work.
 */
#include <dlfcn.h>
#include <string.h>

#include "config.h"
#include "common/error.h"
#include "common/lazylib.h"
#include "pg/libarchive_api.h"
#include "pg/libpq_api.h"
#include "pg/pgconn.h"
#include "tap.h"

#define MISSING "libdoesnotexist.so.9"

static bool in_process(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);

	if (h)
		dlclose(h);
	return h != NULL;
}

/* The message is ours up to the reason, which is dlerror()'s. */
static void is_load_error(int rc, const char *soname, const char *purpose, const char *reason,
			  const char *what)
{
	char want[PGKEEP_ERRLEN];
	const char *msg = pgk_errmsg();
	size_t n;

	n = (size_t)snprintf(want, sizeof(want), "cannot load %s (%s): ", soname, purpose);
	is_int(rc, PGKEEP_EIO, "%s: fails with PGKEEP_EIO", what);
	if (!ok(strncmp(msg, want, n) == 0 && strstr(msg + n, reason), "%s: says why", what))
		diag("got '%s', want '%s...%s...'", msg, want, reason);
}

static void test_nothing_loaded_at_start(void)
{
	ok(!in_process(PGK_LIBPQ_SONAME), "%s is not in the process at start", PGK_LIBPQ_SONAME);
	ok(!in_process(PGK_LIBARCHIVE_SONAME), "%s is not in the process at start",
	   PGK_LIBARCHIVE_SONAME);
	ok(!pgk_libpq.fn_PQexec && !pgk_libarchive.fn_archive_read_free, "the tables are empty");
}

static void test_libpq_missing(void)
{
	const char *soname = libpq_lazylib.soname;
	const char *purpose = "needed to talk to PostgreSQL";
	struct pgconn *c = NULL;
	char **env = NULL;

	libpq_lazylib.soname = MISSING;
	is_load_error(pgconn_open(&c, "host=/nonexistent", NULL), MISSING, purpose,
		      MISSING ": cannot open shared object file", "pgconn_open without libpq");
	ok(!c, "no connection handed out");
	is_load_error(pgconn_child_env("host=/tmp", NULL, NULL, &env), MISSING, purpose,
		      MISSING ": cannot open shared object file", "pgconn_child_env without libpq");
	ok(!pgk_libpq.fn_PQexec, "the table stays empty");
	libpq_lazylib.soname = soname;
}

static void test_libpq_loaded(void)
{
	char **env = NULL, **e;
	bool host = false;

	if (!ok(libpq_load() == 0, "libpq loads"))
		diag("%s", pgk_errmsg());
	is_int(libpq_load(), 0, "and again (a no-op)");
	ok(in_process(PGK_LIBPQ_SONAME), "%s is in the process now", PGK_LIBPQ_SONAME);
	is_str(PQresStatus(PGRES_TUPLES_OK), "PGRES_TUPLES_OK", "a call through the table");
	is_int(pgconn_child_env("host=/tmp port=5433", NULL, NULL, &env), 0,
	       "pgconn_child_env parses a conninfo through libpq");
	for (e = env; e && *e; e++)
		host |= strcmp(*e, "PGHOST=/tmp") == 0;
	ok(host, "and sets PGHOST");
	pgconn_env_free(env);
}

static void test_libarchive_missing(void)
{
	const char *soname = libarchive_lazylib.soname;
	struct archive *a = NULL;

	libarchive_lazylib.soname = MISSING;
	is_load_error(libarchive_read_new(&a), MISSING, "needed for tar streams and compressed dumps",
		      MISSING ": cannot open shared object file", "libarchive_read_new without libarchive");
	ok(!a, "no archive handed out");
	is_load_error(libarchive_write_disk_new(&a), MISSING,
		      "needed for tar streams and compressed dumps",
		      MISSING ": cannot open shared object file",
		      "libarchive_write_disk_new without libarchive");
	libarchive_lazylib.soname = soname;
}

/* A one-file ustar archive: "hello" holding "hi!\n". */
static size_t make_tar(unsigned char *tar, size_t size)
{
	unsigned int sum = 0;
	size_t i;

	memset(tar, 0, size);
	strcpy((char *)tar, "hello");
	strcpy((char *)tar + 100, "0000644");
	strcpy((char *)tar + 108, "0000000");
	strcpy((char *)tar + 116, "0000000");
	strcpy((char *)tar + 124, "00000000004");
	strcpy((char *)tar + 136, "00000000000");
	tar[156] = '0';
	memcpy(tar + 257, "ustar\00000", 8);
	memset(tar + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += tar[i];
	snprintf((char *)tar + 148, 8, "%06o", sum);
	memcpy(tar + 512, "hi!\n", 4);
	return 512 * 4;
}

static void test_libarchive_loaded(void)
{
	unsigned char tar[2048];
	struct archive_entry *e;
	struct archive *a = NULL;
	char data[16] = { 0 };
	size_t len = make_tar(tar, sizeof(tar));

	if (!ok(libarchive_read_new(&a) == 0, "libarchive loads"))
		diag("%s", pgk_errmsg());
	ok(in_process(PGK_LIBARCHIVE_SONAME), "%s is in the process now", PGK_LIBARCHIVE_SONAME);
	if (!a)
		return;
	archive_read_support_format_tar(a);
	is_int(archive_read_open_memory(a, tar, len), ARCHIVE_OK, "a tar opens from memory");
	is_int(archive_read_next_header(a, &e), ARCHIVE_OK, "its first header reads");
	is_str(archive_entry_pathname(e), "hello", "the entry's name");
	is_int(archive_entry_size(e), 4, "the entry's size");
	is_int(archive_read_data(a, data, sizeof(data)), 4, "its data reads");
	is_str(data, "hi!\n", "and is right");
	archive_read_free(a);
}

static void test_missing_symbol(void)
{
	void *clear = NULL, *missing = NULL;
	const struct lazylib_sym syms[] = {
		{ "PQclear", &clear },
		{ "PQnoSuchFunction", &missing },
	};
	struct lazylib lib = { PGK_LIBPQ_SONAME, "testing", syms, 2, NULL };

	is_load_error(lazylib_load(&lib), PGK_LIBPQ_SONAME, "testing",
		      "undefined symbol: PQnoSuchFunction", "a function the library lacks");
	ok(!lib.handle && !clear && !missing, "nothing is kept of a library that failed");
}

int main(void)
{
	test_nothing_loaded_at_start();
	test_libpq_missing();
	test_libpq_loaded();
	test_libarchive_missing();
	test_libarchive_loaded();
	test_missing_symbol();
	return done_testing();
}

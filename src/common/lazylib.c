/*
 * dlopen() on first use, for libraries that only some commands need; see
 * lazylib.h.  The per-library tables are in pg/libpq_api.c and
 * pg/libarchive_api.c.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "common/error.h"
#include "common/lazylib.h"

static pthread_mutex_t lazylib_lock = PTHREAD_MUTEX_INITIALIZER;

static int load_error(const struct lazylib *lib)
{
	const char *why = dlerror();

	return pgk_error(PGKEEP_EIO, "cannot load %s (%s): %s", lib->soname, lib->purpose,
			 why ? why : "unknown error");
}

static void clear_slots(const struct lazylib *lib)
{
	size_t i;

	for (i = 0; i < lib->nsyms; i++)
		*lib->syms[i].slot = NULL;
}

static int lazylib_open(struct lazylib *lib)
{
	void *h;
	size_t i;
	int rc;

	(void)dlerror();
	h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return load_error(lib);
	for (i = 0; i < lib->nsyms; i++) {
		/*
		 * Through void ** because ISO C has no conversion from void * to
		 * a function pointer; POSIX guarantees the representation (the
		 * dlsym() rationale suggests exactly this).
		 */
		*lib->syms[i].slot = dlsym(h, lib->syms[i].name);
		if (!*lib->syms[i].slot) {
			rc = load_error(lib);
			clear_slots(lib);
			dlclose(h);
			return rc;
		}
	}
	lib->handle = h;
	return 0;
}

int lazylib_load(struct lazylib *lib)
{
	int rc = 0;

	/* Two threads may want the same library; the lookups take microseconds. */
	pthread_mutex_lock(&lazylib_lock);
	if (!lib->handle)
		rc = lazylib_open(lib);
	pthread_mutex_unlock(&lazylib_lock);
	return rc;
}

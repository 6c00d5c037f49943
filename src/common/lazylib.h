/*
 * Libraries only some commands need (libpq, libarchive), opened the first
 * time one of them does: wal-push and wal-fetch, run once per segment, then
 * start without mapping them and the dozens of libraries they pull in.
 */
#ifndef PGK_LAZYLIB_H
#define PGK_LAZYLIB_H

#include <stddef.h>

/* A function to look up, and the function pointer that receives it. */
struct lazylib_sym {
	const char *name;
	void **slot;
};

struct lazylib {
	const char *soname;		/* from configure: "libpq.so.5" */
	const char *purpose;		/* for the error: "needed to talk to PostgreSQL" */
	const struct lazylib_sym *syms;
	size_t nsyms;
	void *handle;			/* set once every symbol was found */
};

/*
 * Open lib with dlopen(RTLD_NOW | RTLD_LOCAL) and fill every slot; a no-op
 * once that worked.  On failure nothing stays open, every slot is NULL, the
 * message names the library, its purpose and dlerror()'s reason, and a later
 * call tries again.  Safe to call from any thread.
 */
int lazylib_load(struct lazylib *lib);

#endif

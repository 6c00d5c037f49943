/*
 * Do-nothing calls shared by the deliberately broken plugins the loader
 * tests must refuse (or, for old.c, accept with its missing slots NULL).
 */
#ifndef PGK_TEST_BAD_COMMON_H
#define PGK_TEST_BAD_COMMON_H

#include <pgkeep/storage.h>

static inline int bad_open(void **h, const struct pgkeep_option *o, size_t n, char *err)
{
	*h = (void *)1;
	return 0;
}
static inline void bad_close(void *h) {}
static inline int bad_put_begin(void *h, const char *k, uint64_t sz, unsigned fl, void **p, char *err)
{
	return pgkeep_fail(err, PGKEEP_EIO, "bad plugin cannot store %s", k);
}
static inline int bad_put_write(void *p, const void *b, size_t n, char *err) { return PGKEEP_EIO; }
static inline int bad_put_commit(void *p, char *err) { return PGKEEP_EIO; }
static inline void bad_put_abort(void *p) {}
static inline int bad_get(void *h, const char *k, uint64_t off, uint64_t len, pgkeep_sink_fn s,
		   void *pl, char *err)
{
	return pgkeep_fail(err, PGKEEP_ENOTFOUND, "no %s here", k);
}
static inline int bad_stat(void *h, const char *k, struct pgkeep_stat *st, char *err)
{
	return PGKEEP_ENOTFOUND;	/* deliberately without a message */
}
static inline int bad_list(void *h, const char *p, pgkeep_list_fn cb, void *pl, char *err) { return 0; }
static inline int bad_remove(void *h, const char *k, char *err) { return 0; }
static inline int bad_lock_until(void *h, const char *k, int64_t until, char *err) { return 0; }

#define BAD_CALLS                                                              \
	.open = bad_open, .close = bad_close, .put_begin = bad_put_begin,      \
	.put_write = bad_put_write, .put_commit = bad_put_commit,              \
	.put_abort = bad_put_abort, .stat = bad_stat, .list = bad_list,        \
	.remove = bad_remove

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

#endif

/*
 * A storage plugin, loaded and opened: the agent's only way to the store.
 * These wrappers add context to the plugin's message (plugin, repository,
 * key) through pgk_error; they never retry (the plugin owns retrying).
 */
#ifndef PGK_STORE_H
#define PGK_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <pgkeep/storage.h>

#include "common/mem.h"

struct pgk_store {
	struct pgkeep_storage_ops ops;	/* copied, zero-extended to our size */
	void *handle;
	void *dl;			/* dlopen handle */
	char *path;			/* the plugin file */
	char *repo_name;		/* for messages */
};

/*
 * Find `plugin` ("local", "s3", ...) as NAME.so in plugin_dir (when not NULL),
 * then in $PGKEEP_PLUGIN_DIR, then in the installed plugin directory; load
 * it, check its ABI and mandatory calls, and open it with opts.  A file that
 * is not a plugin, one built for a newer ABI, or one missing a mandatory call
 * is refused with a message naming the file and the reason.
 */
int store_open(struct pgk_store **out, const char *repo_name, const char *plugin,
	       const char *plugin_dir, const struct pgkeep_option *opts, size_t nopts);
/*
 * The same with flags.  STORE_OPEN_CREATE (pgkeep init only) lets a plugin
 * with PGKEEP_FEAT_CREATE_ROOT make the repository's root, by passing it
 * the option create=yes; no other command, and no config, may pass it.
 */
#define STORE_OPEN_CREATE (1u << 0)
int store_open_flags(struct pgk_store **out, const char *repo_name, const char *plugin,
		     const char *plugin_dir, const struct pgkeep_option *opts, size_t nopts,
		     unsigned flags);
/* Load and check a plugin file without opening it (for tests and `check`). */
int store_load(struct pgk_store **out, const char *path);
void store_close(struct pgk_store *st);

bool store_has_feature(const struct pgk_store *st, uint64_t feat);

/* Whole-object helpers. */
int store_put(struct pgk_store *st, const char *key, const void *buf, size_t len,
	      unsigned flags);
int store_get(struct pgk_store *st, const char *key, struct pgk_buf *out);

/*
 * What a get may take: at most max bytes, else PGKEEP_ECORRUPT as soon as
 * more arrive.  check (when not NULL) sees the first head_len bytes (or
 * the whole object, when shorter, at its end) before more are taken; it
 * returns 0 or an error (message set) that stops the transfer, and may
 * lower *max for the rest.  A buffer that cannot grow gives PGKEEP_ENOMEM.
 */
struct store_cap {
	uint64_t max;
	size_t head_len;
	int (*check)(void *arg, const void *head, size_t len, uint64_t *max);
	void *arg;
};

int store_get_capped(struct pgk_store *st, const char *key, const struct store_cap *cap,
		     struct pgk_buf *out);
int store_stat(struct pgk_store *st, const char *key, struct pgkeep_stat *out);
int store_list(struct pgk_store *st, const char *prefix, pgkeep_list_fn cb, void *payload);
int store_remove(struct pgk_store *st, const char *key);
/* PGKEEP_EUNSUPPORTED when the plugin has no lock support. */
int store_lock_until(struct pgk_store *st, const char *key, int64_t until);
/*
 * When the object is locked, *until receives the date, else 0.
 * PGKEEP_EUNSUPPORTED when the plugin cannot tell.
 */
int store_locked_until(struct pgk_store *st, const char *key, int64_t *until);

#endif

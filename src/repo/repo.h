/*
 * An opened repository: its store, its keys, and what it records.  The
 * keys it holds, and their layout in the store, are in repo/layout.h.
 */
#ifndef PGK_REPO_H
#define PGK_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/keys.h"
#include "repo/object.h"
#include "repo/store.h"

struct repo {
	struct pgk_store *store;	/* owned */
	char *name;
	struct repo_keys keys;
	int compress_level;
	bool delta;			/* backups may store chunks as deltas */
	uint64_t sysid;			/* 0 until known */
};

/* Create a repository in an empty store: master key, first key slot, pgkeep.json. */
int repo_init(struct pgk_store *store, const char *name, const char *pass,
	      const struct kdf_params *kp);

/* The key agent repo_open asks before unwrapping a key slot, and tells
 * the key it unwrapped (repo/keycache.h): the config's settings. */
struct repo_key_agent {
	int ttl;		/* [global] key_cache: seconds; <= 0: no agent */
	const char *spool_dir;	/* [global] spool_dir, whose base holds its socket; NULL: default */
};

/* Open: read pgkeep.json, unwrap a key slot with the passphrase (agent NULL:
 * without the key agent). Takes ownership of store (closed on failure too). */
int repo_open(struct repo **out, struct pgk_store *store, const char *name,
	      const char *pass, int compress_level, const struct repo_key_agent *agent);
void repo_close(struct repo *r);

/*
 * The repository belongs to one cluster.  The first call records sysid
 * (if-absent, so two first users agree); later calls compare and refuse a
 * different one with a clear error naming both identifiers.
 */
int repo_check_sysid(struct repo *r, uint64_t sysid);

/* Seal and store one object. flags: PGKEEP_PUT_IF_ABSENT. */
int repo_put(struct repo *r, const char *key, enum obj_kind kind, const void *data,
	     size_t len, unsigned flags);
/* Fetch, verify and open one object. PGKEEP_ENOTFOUND when absent. */
int repo_get(struct repo *r, const char *key, enum obj_kind kind, struct pgk_buf *plain);

#endif

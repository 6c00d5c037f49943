/*
 * An opened repository: its store, its keys, and what it records.
 *
 * Layout (keys in the store):
 *   pgkeep.json                 format, creation time, cipher (clear text, written once)
 *   keys/SLOTID.json            one key slot per passphrase
 *   meta/sysid                  the cluster's system identifier (object, written once)
 *   wal/TTTTTTTT/NAME           WAL segments, .partial, .backup (TTTTTTTT = timeline)
 *   wal/history/TTTTTTTT.history timeline history files
 *   chunks/XX/ID                deduplicated backup chunks (XX = first two hex of ID)
 *   deltas/XX/ID-BASE           chunk ID is stored as a delta of chunk BASE (no content)
 *   lists/SET/STREAM-SEQ        a backup's chunk lists, in pieces (see lists.h), written
 *                               as it runs; SET is random per backup, named by its manifest
 *   backups/ID.manifest         one per completed backup, written last
 *   locks/...                   lock files of running commands
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

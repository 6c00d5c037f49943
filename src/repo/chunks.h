/*
 * Chunk objects: a backup stream's deduplicated pieces, stored whole under
 * chunks/XX/ID or as a delta of up to four whole chunks (with one
 * deltas/XX/ID-BASE record per base, see repo/gc.h).  Naming, sealing,
 * storing and reading one chunk; cutting streams into chunks is the
 * pipeline's.
 */
#ifndef PGK_CHUNKS_H
#define PGK_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/layout.h"
#include "repo/object.h"
#include "repo/repo.h"

/* Key of a chunk object: chunks/XX/ID (XX = the id's first two hex digits). */
#define CHUNK_KEY_MAX LAYOUT_CHUNK_KEY_MAX
void chunk_key(const char *id, char *key, size_t keylen);

/* Key of the record that chunk id is stored as a delta of base: deltas/XX/ID-BASE. */
#define DELTA_KEY_MAX LAYOUT_DELTA_KEY_MAX
void delta_key(const char *id, const char *base, char *key, size_t keylen);

/* 1 when the repository has chunk id, 0 when not, or an error. */
int chunk_exists(struct repo *r, const char *id);

/* Seal chunk id's plaintext whole, or as a delta of bases, into out (appended). */
int chunk_seal(struct repo *r, const char *id, const void *plain, size_t len,
	       struct pgk_buf *out);
int chunk_seal_delta(struct repo *r, const char *id, const struct obj_bases *bases,
		     const void *plain, size_t len, struct pgk_buf *out);

/*
 * Store sealed chunk id, if absent.  bases (NULL for a whole chunk) are
 * the bases it was sealed against: their records are written first, so a
 * delta never exists without them.  0 when stored, 1 when another writer
 * stored the same chunk meanwhile, or an error.
 */
int chunk_store(struct repo *r, const char *id, const struct obj_bases *bases,
		const void *sealed, size_t len);

/*
 * Fetch chunk id's object into obj (reset first), its key into key.  A
 * chunk that should be there and is not means a damaged repository
 * (PGKEEP_ECORRUPT); `role` says which ("chunk", "base chunk").
 */
int chunk_fetch(struct repo *r, const char *id, const char *role, struct pgk_buf *obj,
		char key[CHUNK_KEY_MAX]);

/* Read whole chunk id (never a delta) into plain, appended; obj is scratch. */
int chunk_read_whole(struct repo *r, const char *id, struct pgk_buf *obj, struct pgk_buf *plain);

/*
 * Read chunk id of size bytes into plain (reset first), stored whole or as
 * a delta of its base, and prove it is that chunk.  obj is scratch space.
 * A missing chunk or base is PGKEEP_ECORRUPT.
 */
int chunk_read(struct repo *r, const char *id, uint32_t size, struct pgk_buf *obj,
	       struct pgk_buf *plain);

#endif

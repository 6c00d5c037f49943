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
 * A delta's bases together stay under this, so that a worker's memory stays
 * bounded (with the chunk itself, a zstd window of 2^24).
 */
#define CHUNK_BASES_BYTES_MAX ((size_t)6 << 20)

/*
 * Add the whole chunk(s) behind chunk id to bs: id itself, or when it is a
 * delta, its own bases (a base is never a delta).  Stops, returning 0,
 * where the bases would grow past their limits; *stored adds the bytes the
 * bases take in the store.  cand and obj are scratch space.
 */
int chunk_add_bases(struct repo *r, const char *id, struct obj_bases *bs, struct pgk_buf *cand,
		    struct pgk_buf *obj, uint64_t *stored);

/*
 * Read chunk id of size bytes into plain (reset first), stored whole or as
 * a delta of its base, and prove it is that chunk.  obj is scratch space.
 * A missing chunk or base is PGKEEP_ECORRUPT.
 */
int chunk_read(struct repo *r, const char *id, uint32_t size, struct pgk_buf *obj,
	       struct pgk_buf *plain);

#endif

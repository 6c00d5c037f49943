/*
 * Object format, version 2.  Every stored object (chunk, WAL file, manifest,
 * chunk list, repository metadata) is:
 *
 *   offset  size  field
 *   0       8     magic "PGKEEP\x00\x02" (last byte: format version)
 *   8       1     kind (OBJ_*)
 *   9       1     compression (0 none, 1 zstd, 2 delta)
 *   10      1     cipher (1 AES-256-GCM)
 *   11      1     reserved, zero
 *   12      8     key id
 *   20      12    nonce
 *   32      8     plaintext length, big-endian
 *   40      ...   ciphertext of the (compressed) body
 *   end-16  16    GCM tag
 *
 * The GCM additional data is the 40-byte header followed by the object's
 * key, its name in the store ("wal/00000001/000000010000000A00000042",
 * "chunks/ab/ab12...", "backups/ID.manifest", ...), without a terminator.
 * So any change to header, body or tag, any truncation, and an object
 * served under another name than the one it was sealed for, fail the tag
 * check before a byte is returned.  A zstd body is one or more zstd frames,
 * one after the other (RFC 8878), decoding to the plaintext length.
 *
 * Format 1 (magic "PGKEEP\x00\x01") is the same but for the additional
 * data, which is the header alone: its objects are not bound to their
 * names.  Format 1 objects are still read; every object written is format
 * 2, and copy writes format 2 whatever it read.
 *
 * Compression 2 (chunks only) is a delta: the body is a count n (1 to 4),
 * the 32-byte ids of n base chunks, then one zstd frame compressed with the
 * bases' plaintexts, one after the other, as its prefix: the bytes a chunk
 * shares with them cost a reference, not themselves.  Several bases cover a
 * chunk that spans what were several chunks before.  A base is always a
 * whole chunk (compression 0 or 1), so a read never follows a chain.
 * Readers older than deltas refuse such an object as an unknown
 * compression, never misread it.
 *
 * Each kind has a largest plaintext (OBJ_*_PLAIN_MAX), and a body is never
 * larger than its plaintext allows (compression 0: exactly its length;
 * zstd and delta: zstd's bound for it), so a reader refuses an object that
 * claims or holds more from its first bytes instead of buffering it.
 */
#ifndef PGK_OBJECT_H
#define PGK_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/keys.h"
#include "repo/store.h"

enum obj_kind {
	OBJ_META = 1,	  /* repository metadata */
	OBJ_WAL = 2,
	OBJ_CHUNK = 3,
	OBJ_MANIFEST = 4,
	OBJ_LIST = 5,	  /* a backup stream's chunk list, or part of it */
};

#define OBJ_HEADER_LEN 40
#define OBJ_TAG_LEN 16
#define OBJ_OVERHEAD (OBJ_HEADER_LEN + OBJ_TAG_LEN)

/* The largest plaintext of each kind. */
#define OBJ_WAL_PLAIN_MAX ((uint64_t)1 << 30)	   /* PostgreSQL's largest wal_segment_size */
#define OBJ_CHUNK_PLAIN_MAX ((uint64_t)4 << 20)	   /* the chunker's largest chunk */
#define OBJ_LIST_PLAIN_MAX ((uint64_t)1 << 20)	   /* LIST_CHUNKS_MAX entries and more */
/* Format-1 manifests hold their chunk lists inline, about 110 bytes a chunk. */
#define OBJ_MANIFEST_PLAIN_MAX ((uint64_t)1 << 30)
#define OBJ_META_PLAIN_MAX ((uint64_t)1 << 20)	   /* a few lines of text */

uint64_t obj_plain_max(enum obj_kind kind);

/*
 * Seal plaintext into out (appended), bound to key, the name it is stored
 * under.  level: 0 = store uncompressed, else a zstd level; a body that
 * does not shrink is stored uncompressed.
 */
int obj_seal(const struct repo_keys *k, enum obj_kind kind, const char *key, int level,
	     const void *plain, size_t len, struct pgk_buf *out);

/*
 * Seal the len bytes of file fd (read with pread from offset 0, in pieces,
 * so that no copy of the whole plaintext is held) into out (appended),
 * bound to key.  sha256, if not NULL, gets the SHA-256 of the bytes sealed.
 * A file that ends early fails, naming `what`.
 */
int obj_seal_fd(const struct repo_keys *k, enum obj_kind kind, const char *key, int level,
		int fd, uint64_t len, const char *what, struct pgk_buf *out, uint8_t sha256[32]);

/*
 * Verify and open an object fetched under key into plain (appended); key
 * names the object in messages too.  Damage, truncation, and a format 2
 * object sealed for another key give PGKEEP_ECORRUPT; an object sealed with
 * another repository key gives PGKEEP_EAUTH; a kind other than `kind`
 * gives PGKEEP_ECORRUPT; memory that cannot be had, PGKEEP_ENOMEM.
 */
int obj_open(const struct repo_keys *k, enum obj_kind kind, const char *key, const void *obj,
	     size_t len, struct pgk_buf *plain);

/*
 * Fetch the object stored under key into obj (reset first), refusing as
 * soon as its first bytes show it is not an object of kind, or it claims or
 * holds more than a kind's object can: a stray 1 GiB file costs the read
 * of its header, not 1 GiB of memory.  PGKEEP_ENOTFOUND when absent.
 */
int obj_fetch(struct pgk_store *st, const char *key, enum obj_kind kind, struct pgk_buf *obj);

/*
 * Check an object's first bytes (len >= OBJ_HEADER_LEN): magic, format
 * version, kind, compression and cipher ids, and a plaintext length within
 * what the kind allows.  *max gets the most bytes the whole object can
 * then hold.  PGKEEP_ECORRUPT, naming key, when any is wrong.
 */
int obj_check_head(enum obj_kind kind, const char *key, const void *head, size_t len,
		   uint64_t *max);

/*
 * Seal again, in place, an object stored under key with repository key
 * `from`, for repository key `to` and the same name: the body is verified
 * and decrypted with `from`, then encrypted with `to` under a fresh nonce,
 * as format 2; kind, compression and plaintext length stay.  No copy of
 * the object is made and nothing is decompressed, so copying a 16 MiB WAL
 * file between repositories costs its stored size in memory.  Only for
 * objects whose names do not depend on the key (a chunk's do, and a delta
 * names its bases): a delta is refused.  On failure obj is emptied (and
 * what was decrypted of it wiped).
 */
int obj_reseal(const struct repo_keys *from, const struct repo_keys *to, enum obj_kind kind,
	       const char *key, struct pgk_buf *obj);
/* The plaintext length an object's header records; 0 if too short for a header. */
uint64_t obj_plain_len(const void *obj, size_t len);

#define OBJ_BASE_ID_LEN 32
#define OBJ_DELTA_MAX_BASES 4

/* A delta's bases: their ids and, for sealing, their plaintexts in order. */
struct obj_bases {
	size_t n;
	char id[OBJ_DELTA_MAX_BASES][65];
	struct pgk_buf plain;
};

/* Seal a chunk, to be stored under key, as a delta against bases (1 to 4), appended to out. */
int obj_seal_delta(const struct repo_keys *k, const char *key, int level,
		   const struct obj_bases *bases, const void *plain, size_t len,
		   struct pgk_buf *out);

/*
 * Appends the verified plaintext of whole chunk base_id to plain, or fails
 * with the error set.
 */
typedef int (*obj_base_fn)(void *arg, const char *base_id, struct pgk_buf *plain);

/*
 * obj_open for chunks, whole or delta: a delta's bases are read through
 * base_fn, in order.  The caller checks the result's id, which also proves
 * the bases.
 */
int obj_open_chunk(const struct repo_keys *k, const char *key, const void *obj, size_t len,
		   struct pgk_buf *plain, obj_base_fn base_fn, void *arg);

/* Whether the header says delta: a hint until the object is opened. */
bool obj_is_delta(const void *obj, size_t len);

/*
 * The bases a stored chunk was sealed against (n = 0 for a whole chunk),
 * after the object has verified; bases->plain is not touched.
 */
int obj_chunk_bases(const struct repo_keys *k, const char *key, const void *obj, size_t len,
		    struct obj_bases *bases);

#endif

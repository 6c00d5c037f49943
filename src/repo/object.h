/*
 * Object format, version 1.  Every stored object (chunk, WAL file, manifest,
 * repository metadata) is:
 *
 *   offset  size  field
 *   0       8     magic "PGKEEP\x00\x01" (last byte: format version)
 *   8       1     kind (OBJ_*)
 *   9       1     compression (0 none, 1 zstd)
 *   10      1     cipher (1 AES-256-GCM)
 *   11      1     reserved, zero
 *   12      8     key id
 *   20      12    nonce
 *   32      8     plaintext length, big-endian
 *   40      ...   ciphertext of the (compressed) body
 *   end-16  16    GCM tag
 *
 * The 40-byte header is authenticated as additional data, so any change to
 * header, body or tag, and any truncation, fails the tag check before a
 * byte is returned.  A zstd body is one or more zstd frames, one after the
 * other (RFC 8878), decoding to the plaintext length.
 *
 * Compression 2 (chunks only) is a delta: the body is a count n (1 to 4),
 * the 32-byte ids of n base chunks, then one zstd frame compressed with the
 * bases' plaintexts, one after the other, as its prefix: the bytes a chunk
 * shares with them cost a reference, not themselves.  Several bases cover a
 * chunk that spans what were several chunks before.  A base is always a
 * whole chunk (compression 0 or 1), so a read never follows a chain.
 * Readers older than deltas refuse such an object as an unknown
 * compression, never misread it.
 */
#ifndef PGK_OBJECT_H
#define PGK_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/keys.h"

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

/*
 * Seal plaintext into out (appended).  level: 0 = store uncompressed, else a
 * zstd level; a body that does not shrink is stored uncompressed.
 */
int obj_seal(const struct repo_keys *k, enum obj_kind kind, int level,
	     const void *plain, size_t len, struct pgk_buf *out);

/*
 * Seal the len bytes of file fd (read with pread from offset 0, in pieces,
 * so that no copy of the whole plaintext is held) into out (appended).
 * sha256, if not NULL, gets the SHA-256 of the bytes sealed.  A file that
 * ends early fails, naming `what`.
 */
int obj_seal_fd(const struct repo_keys *k, enum obj_kind kind, int level, int fd, uint64_t len,
		const char *what, struct pgk_buf *out, uint8_t sha256[32]);

/*
 * Verify and open an object into plain (appended).  `what` names the object
 * in messages ("wal/00000001/...").  Damage and truncation give
 * PGKEEP_ECORRUPT; an object sealed with another key gives PGKEEP_EAUTH; a
 * kind other than `kind` gives PGKEEP_ECORRUPT.
 */
int obj_open(const struct repo_keys *k, enum obj_kind kind, const void *obj, size_t len,
	     struct pgk_buf *plain, const char *what);

/*
 * Seal again, in place, an object sealed with key `from`, for key `to`: the
 * body is verified and decrypted with `from`, then encrypted with `to` under
 * a fresh nonce; kind, compression and plaintext length stay.  No copy of
 * the object is made and nothing is decompressed, so copying a 16 MiB WAL
 * file between repositories costs its stored size in memory.  Only for
 * objects whose names do not depend on the key (a chunk's do, and a delta
 * names its bases): a delta is refused.  On failure obj is emptied (and
 * what was decrypted of it wiped).
 */
int obj_reseal(const struct repo_keys *from, const struct repo_keys *to, enum obj_kind kind,
	       struct pgk_buf *obj, const char *what);
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

/* Seal a chunk as a delta against bases (1 to 4), appended to out. */
int obj_seal_delta(const struct repo_keys *k, int level, const struct obj_bases *bases,
		   const void *plain, size_t len, struct pgk_buf *out);

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
int obj_open_chunk(const struct repo_keys *k, const void *obj, size_t len, struct pgk_buf *plain,
		   const char *what, obj_base_fn base_fn, void *arg);

/* Whether the header says delta: a hint until the object is opened. */
bool obj_is_delta(const void *obj, size_t len);

/*
 * The bases a stored chunk was sealed against (n = 0 for a whole chunk),
 * after the object has verified; bases->plain is not touched.
 */
int obj_chunk_bases(const struct repo_keys *k, const void *obj, size_t len, const char *what,
		    struct obj_bases *bases);

#endif

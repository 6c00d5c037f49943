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
 */
#ifndef PGK_OBJECT_H
#define PGK_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/keys.h"

enum obj_kind {
	OBJ_META = 1,	  /* repository metadata */
	OBJ_WAL = 2,
	OBJ_CHUNK = 3,
	OBJ_MANIFEST = 4,
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

#endif

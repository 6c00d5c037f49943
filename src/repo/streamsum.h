/*
 * The whole-stream checksum a manifest records for each stream: computed on
 * its own thread over the bytes exactly as they came in, independently of
 * chunking, and checked again when the stream is read back.  It guards
 * against a pipeline that loses, repeats or misplaces bytes; tampering is
 * already caught per chunk (authenticated objects, keyed chunk ids) and the
 * manifest itself is authenticated.
 *
 * New streams use XXH3-128 (libxxhash), which costs a small fraction of a
 * core at the speed a backup streams; manifests written before it carry
 * SHA-256 and are still checked with it.
 */
#ifndef PGK_STREAMSUM_H
#define PGK_STREAMSUM_H

#include <stddef.h>

enum stream_sum_alg {
	SUM_NONE = 0,
	SUM_SHA256 = 1,		/* "sha256": 64 hex digits */
	SUM_XXH3_128 = 2,	/* "xxh3_128": 32 hex digits, canonical (big-endian) */
};

#define STREAM_SUM_DEFAULT SUM_XXH3_128
#define STREAM_SUM_HEX_MAX 64

struct stream_sum {
	enum stream_sum_alg alg;
	void *state;
};

/* The manifest field name and the length of the hex digest. */
const char *stream_sum_name(enum stream_sum_alg alg);
size_t stream_sum_hexlen(enum stream_sum_alg alg);

int stream_sum_init(struct stream_sum *s, enum stream_sum_alg alg);
/* False only if the library failed (never for XXH3). */
int stream_sum_update(struct stream_sum *s, const void *data, size_t len);
/* Writes stream_sum_hexlen(alg) lower-case hex digits and a NUL. */
int stream_sum_final_hex(struct stream_sum *s, char out[STREAM_SUM_HEX_MAX + 1]);
void stream_sum_free(struct stream_sum *s);

#endif

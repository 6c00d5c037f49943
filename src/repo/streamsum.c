/* Whole-stream checksums: XXH3-128 for new streams, SHA-256 for old ones. */
#include "config.h"

#include <stdint.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/streamsum.h"

const char *stream_sum_name(enum stream_sum_alg alg)
{
	switch (alg) {
	case SUM_SHA256:
		return "sha256";
	case SUM_XXH3_128:
		return "xxh3_128";
	default:
		return NULL;
	}
}

size_t stream_sum_hexlen(enum stream_sum_alg alg)
{
	switch (alg) {
	case SUM_SHA256:
		return 64;
	case SUM_XXH3_128:
		return 32;
	default:
		return 0;
	}
}

int stream_sum_init(struct stream_sum *s, enum stream_sum_alg alg)
{
	s->alg = alg;
	s->state = NULL;
	if (alg == SUM_SHA256) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(ctx);
			ctx = NULL;
		}
		s->state = ctx;
	} else if (alg == SUM_XXH3_128) {
		XXH3_state_t *st = XXH3_createState();

		if (st && XXH3_128bits_reset(st) != XXH_OK) {
			XXH3_freeState(st);
			st = NULL;
		}
		s->state = st;
	} else {
		return pgk_error(PGKEEP_EINVAL, "unknown stream checksum %d", (int)alg);
	}
	if (!s->state)
		return pgk_error(PGKEEP_ENOMEM, "cannot set up a %s stream checksum",
				 stream_sum_name(alg));
	return 0;
}

int stream_sum_update(struct stream_sum *s, const void *data, size_t len)
{
	bool ok;

	if (s->alg == SUM_SHA256)
		ok = EVP_DigestUpdate(s->state, data, len) == 1;
	else
		ok = XXH3_128bits_update(s->state, data, len) == XXH_OK;
	return ok ? 0 : pgk_error(PGKEEP_EIO, "cannot compute a stream checksum");
}

int stream_sum_final_hex(struct stream_sum *s, char out[STREAM_SUM_HEX_MAX + 1])
{
	if (s->alg == SUM_SHA256) {
		uint8_t md[32];
		unsigned mdlen = 0;

		if (EVP_DigestFinal_ex(s->state, md, &mdlen) != 1 || mdlen != sizeof(md))
			return pgk_error(PGKEEP_EIO, "cannot compute a stream checksum");
		hex_encode(md, sizeof(md), out);
	} else {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s->state));
		hex_encode(c.digest, sizeof(c.digest), out);
	}
	return 0;
}

void stream_sum_free(struct stream_sum *s)
{
	if (!s->state)
		return;
	if (s->alg == SUM_SHA256)
		EVP_MD_CTX_free(s->state);
	else
		XXH3_freeState(s->state);
	s->state = NULL;
}

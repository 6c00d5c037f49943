/*
 * Delta chunk objects (compression 2, see object.h): sealed with zstd
 * against the plaintexts of up to four whole base chunks as its prefix,
 * opened with the bases read through the caller.
 */
#include <stdint.h>
#include <string.h>

#include <zstd.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/object.h"
#include "repo/object_int.h"

/*
 * The smallest window that reaches from the end of src back over the bases;
 * decoders accept up to 2^27 without being told to (a chunk is at most 4
 * MiB and the writer keeps its bases under 6 MiB together: 2^24).
 */
#define DELTA_WINDOW_LOG_MIN 10
#define DELTA_WINDOW_LOG_MAX 27

static int delta_window_log(size_t baselen, size_t len)
{
	int wlog = DELTA_WINDOW_LOG_MIN;

	while (wlog < DELTA_WINDOW_LOG_MAX && ((size_t)1 << wlog) < baselen + len)
		wlog++;
	return wlog;
}

static size_t zstd_compress_delta(void *dst, size_t cap, const void *base, size_t baselen,
				  const void *src, size_t len, int level)
{
	ZSTD_CCtx *c = obj_thread_cctx(), *own = NULL;
	size_t n;

	if (!c)
		c = own = ZSTD_createCCtx();
	if (!c)
		return (size_t)-1;
	n = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(n))
		n = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, delta_window_log(baselen, len));
	if (!ZSTD_isError(n))
		n = ZSTD_CCtx_refPrefix(c, base, baselen);
	if (!ZSTD_isError(n))
		n = ZSTD_compress2(c, dst, cap, src, len);
	/* The thread's context goes back to plain one-shot use. */
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	ZSTD_freeCCtx(own);
	return n;
}

static size_t zstd_decompress_delta(void *dst, size_t cap, const void *base, size_t baselen,
				    const void *src, size_t len)
{
	ZSTD_DCtx *d = obj_thread_dctx(), *own = NULL;
	size_t n;

	if (!d)
		d = own = ZSTD_createDCtx();
	if (!d)
		return (size_t)-1;
	/* A prefix serves one frame, and a delta body is one frame. */
	n = ZSTD_DCtx_refPrefix(d, base, baselen);
	if (!ZSTD_isError(n))
		n = ZSTD_decompressDCtx(d, dst, cap, src, len);
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	ZSTD_freeDCtx(own);
	return n;
}

int obj_seal_delta(const struct repo_keys *k, const char *key, int level,
		   const struct obj_bases *bases, const void *plain, size_t len,
		   struct pgk_buf *out)
{
	size_t bound = ZSTD_compressBound(len), head, n, i;
	uint8_t *hdr, *body;
	int ret;

	if (bases->n < 1 || bases->n > OBJ_DELTA_MAX_BASES)
		return pgk_error(PGKEEP_EINVAL, "a delta needs 1 to %d bases, not %zu",
				 OBJ_DELTA_MAX_BASES, bases->n);
	head = obj_delta_head_len(bases->n);
	buf_reserve(out, OBJ_OVERHEAD + head + bound);
	hdr = out->data + out->len;
	body = hdr + OBJ_HEADER_LEN;
	body[0] = (uint8_t)bases->n;
	for (i = 0; i < bases->n; i++)
		if (!hex_decode(bases->id[i], OBJ_BASE_ID_LEN, body + 1 + i * OBJ_BASE_ID_LEN))
			return pgk_error(PGKEEP_EINVAL, "bad base chunk id %.64s", bases->id[i]);
	n = zstd_compress_delta(body + head, bound, bases->plain.data, bases->plain.len, plain, len,
				level > 0 ? level : 1);
	if (ZSTD_isError(n)) {
		secure_zero(body, head + bound);
		return pgk_error(PGKEEP_EIO, "delta compression failed: %s",
				 ZSTD_getErrorName(n));
	}
	ret = obj_encrypt_into(k, OBJ_CHUNK, key, len, OBJ_COMP_DELTA, hdr, body, head + n);
	if (ret == 0)
		out->len += OBJ_OVERHEAD + head + n;
	else
		secure_zero(body, head + n);
	return ret;
}

/*
 * Decrypt a chunk's body into body (reset first); for a delta, *nbases
 * bases whose ids start at body + 1 (0 for a whole chunk).
 */
static int open_chunk_body(const struct repo_keys *k, const char *key, const uint8_t *o,
			   size_t len, struct pgk_buf *body, size_t *nbases)
{
	const char *what = key;
	size_t bodylen;
	int ret;

	*nbases = 0;
	ret = obj_check_header(k, OBJ_CHUNK, o, len, what);
	if (ret < 0)
		return ret;
	bodylen = len - OBJ_OVERHEAD;
	buf_reset(body);
	if (!buf_try_reserve(body, bodylen + 16))
		return obj_no_memory(what, bodylen);
	ret = obj_decrypt_body(k, key, o, len, body->data);
	if (ret < 0)
		return ret;
	body->len = bodylen;
	if (o[9] != OBJ_COMP_DELTA)
		return 0;
	/* Authenticated, so only a writer with the key could get these wrong. */
	if (bodylen < 1 || body->data[0] < 1 || body->data[0] > OBJ_DELTA_MAX_BASES ||
	    bodylen < obj_delta_head_len(body->data[0]))
		return pgk_error(PGKEEP_ECORRUPT, "object %s has a bad delta header", what);
	*nbases = body->data[0];
	return 0;
}

bool obj_is_delta(const void *obj, size_t len)
{
	const uint8_t *o = obj;

	return len >= OBJ_OVERHEAD && o[8] == OBJ_CHUNK && o[9] == OBJ_COMP_DELTA;
}

static void wipe_body(struct pgk_buf *body)
{
	secure_zero(body->data, body->len);
	buf_free(body);
}

int obj_chunk_bases(const struct repo_keys *k, const char *key, const void *obj, size_t len,
		    struct obj_bases *bases)
{
	struct pgk_buf body = PGK_BUF_INIT;
	size_t i, n;
	int ret;

	bases->n = 0;
	ret = open_chunk_body(k, key, obj, len, &body, &n);
	for (i = 0; ret == 0 && i < n; i++)
		hex_encode(body.data + 1 + i * OBJ_BASE_ID_LEN, OBJ_BASE_ID_LEN, bases->id[i]);
	if (ret == 0)
		bases->n = n;
	wipe_body(&body);
	return ret;
}

int obj_open_chunk(const struct repo_keys *k, const char *key, const void *obj, size_t len,
		   struct pgk_buf *plain, obj_base_fn base_fn, void *arg)
{
	const char *what = key;
	struct pgk_buf body = PGK_BUF_INIT, base = PGK_BUF_INIT;
	const uint8_t *o = obj;
	uint64_t plainlen;
	char base_id[65];
	size_t nbases, head, i, n;
	int ret;

	ret = obj_check_header(k, OBJ_CHUNK, o, len, what);
	if (ret < 0)
		return ret;
	if (o[9] != OBJ_COMP_DELTA)
		return obj_open(k, OBJ_CHUNK, key, obj, len, plain);
	ret = open_chunk_body(k, key, o, len, &body, &nbases);
	if (ret < 0)
		goto out_wipe;
	head = obj_delta_head_len(nbases);
	/* The bases' plaintexts one after the other are the frame's prefix. */
	for (i = 0; i < nbases; i++) {
		hex_encode(body.data + 1 + i * OBJ_BASE_ID_LEN, OBJ_BASE_ID_LEN, base_id);
		ret = base_fn ? base_fn(arg, base_id, &base) :
				pgk_error(PGKEEP_EINVAL,
					  "object %s is a delta and no base can be read", what);
		if (ret < 0)
			goto out_wipe;
	}
	plainlen = obj_get_be64(o + 32);
	if (plainlen > SIZE_MAX - plain->len) {
		ret = pgk_error(PGKEEP_ECORRUPT, "object %s claims an impossible length", what);
		goto out_wipe;
	}
	if (!buf_try_reserve(plain, (size_t)plainlen)) {
		ret = obj_no_memory(what, plainlen);
		goto out_wipe;
	}
	n = zstd_decompress_delta(plain->data + plain->len, (size_t)plainlen, base.data, base.len,
				  body.data + head, body.len - head);
	if (ZSTD_isError(n) || n != plainlen) {
		secure_zero(plain->data + plain->len, (size_t)plainlen);
		ret = pgk_error(PGKEEP_ECORRUPT,
				"object %s does not decompress against its %zu base chunk(s) to %llu bytes%s%s",
				what, nbases, (unsigned long long)plainlen,
				ZSTD_isError(n) ? ": " : "", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "");
		goto out_wipe;
	}
	plain->len += n;
out_wipe:
	wipe_body(&body);
	wipe_body(&base);
	return ret;
}

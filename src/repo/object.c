/*
 * Sealing and opening stored objects (format in object.h): zstd, then
 * AES-256-GCM with the 40-byte header and the object's key as additional
 * data.  obj_open returns nothing until the tag has verified; obj_fetch
 * refuses from its first bytes what no object of its kind can be.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zstd.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/mem.h"
#include "repo/lists.h"
#include "repo/object.h"
#include "repo/object_int.h"

/* EVP lengths are ints; feed it in slices well below INT_MAX. */
#define EVP_SLICE ((size_t)1 << 30)

static const char *kind_name(unsigned kind)
{
	switch (kind) {
	case OBJ_META: return "metadata";
	case OBJ_WAL: return "WAL";
	case OBJ_CHUNK: return "chunk";
	case OBJ_MANIFEST: return "manifest";
	case OBJ_LIST: return "chunk list";
	}
	return "unknown";
}

static void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t obj_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Run in[0..len) through an initialised GCM context into out. */
static bool gcm_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t off, n;
	int outl;

	for (off = 0; off < len; off += n) {
		n = len - off < EVP_SLICE ? len - off : EVP_SLICE;
		if (EVP_CipherUpdate(ctx, out + off, &outl, in + off, (int)n) != 1 ||
		    (size_t)outl != n)
			return false;
	}
	return true;
}

/*
 * zstd contexts cost tables of a few MiB to set up, and a one-shot
 * ZSTD_compress builds and frees one per object: keep one per thread
 * instead (freed when the thread ends).  Without one, fall back to the
 * one-shot calls.
 */
struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static pthread_key_t zctx_key;
static pthread_once_t zctx_once = PTHREAD_ONCE_INIT;
static bool zctx_key_ok;

static void zctx_free(void *p)
{
	struct zctx *z = p;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zctx_key_init(void)
{
	zctx_key_ok = pthread_key_create(&zctx_key, zctx_free) == 0;
}

static struct zctx *zctx_get(void)
{
	struct zctx *z;

	pthread_once(&zctx_once, zctx_key_init);
	if (!zctx_key_ok)
		return NULL;
	z = pthread_getspecific(zctx_key);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (z && pthread_setspecific(zctx_key, z) != 0) {
		free(z);
		z = NULL;
	}
	return z;
}

/* The calling thread's contexts, made on first use; NULL when that fails. */
ZSTD_CCtx *obj_thread_cctx(void)
{
	struct zctx *z = zctx_get();

	if (z && !z->c)
		z->c = ZSTD_createCCtx();
	return z ? z->c : NULL;
}

ZSTD_DCtx *obj_thread_dctx(void)
{
	struct zctx *z = zctx_get();

	if (z && !z->d)
		z->d = ZSTD_createDCtx();
	return z ? z->d : NULL;
}

static size_t zstd_compress(void *dst, size_t cap, const void *src, size_t len, int level)
{
	ZSTD_CCtx *c = obj_thread_cctx();

	return c ? ZSTD_compressCCtx(c, dst, cap, src, len, level) :
		   ZSTD_compress(dst, cap, src, len, level);
}

static size_t zstd_decompress(void *dst, size_t cap, const void *src, size_t len)
{
	ZSTD_DCtx *d = obj_thread_dctx();

	return d ? ZSTD_decompressDCtx(d, dst, cap, src, len) :
		   ZSTD_decompress(dst, cap, src, len);
}

/*
 * Compress plain into dst (room for ZSTD_compressBound(len)) when that saves
 * space; returns the body length, 0 to store plain.  *dirty is how much of
 * dst now holds compressed plaintext, which must not outlive the call.
 */
static size_t try_compress(int level, const void *plain, size_t len, uint8_t *dst,
			   size_t *dirty)
{
	size_t bound, n;

	*dirty = 0;
	if (level <= 0 || len == 0)
		return 0;
	bound = ZSTD_compressBound(len);
	n = zstd_compress(dst, bound, plain, len, level);
	if (ZSTD_isError(n)) {
		*dirty = bound;
		return 0;
	}
	*dirty = n;
	return n < len ? n : 0;
}

/*
 * Write the header at hdr and encrypt bodylen bytes of src into hdr's body
 * (src may be that body itself: GCM encrypts in place), tag last.
 */
int obj_encrypt_into(const struct repo_keys *k, enum obj_kind kind, const char *key,
			uint64_t plainlen, uint8_t comp, uint8_t *hdr, const uint8_t *src,
			size_t bodylen)
{
	uint8_t *body = hdr + OBJ_HEADER_LEN;
	EVP_CIPHER_CTX *ctx;
	int outl, ret = 0;

	memcpy(hdr, OBJ_MAGIC, OBJ_MAGIC_LEN);
	hdr[7] = OBJ_VERSION;
	hdr[8] = (uint8_t)kind;
	hdr[9] = comp;
	hdr[10] = OBJ_CIPHER_AES256GCM;
	hdr[11] = 0;
	memcpy(hdr + 12, k->key_id, PGK_KEY_ID_LEN);
	if (RAND_bytes(hdr + 20, OBJ_NONCE_LEN) != 1)
		return pgk_error(PGKEEP_EIO, "cannot get random bytes for an object nonce");
	put_be64(hdr + 32, plainlen);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate cipher context");
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->enc, hdr + 20) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, hdr, OBJ_HEADER_LEN) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const uint8_t *)key, (int)strlen(key)) != 1 ||
	    !gcm_update(ctx, src, bodylen, body) ||
	    EVP_EncryptFinal_ex(ctx, body + bodylen, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, OBJ_TAG_LEN, body + bodylen) != 1)
		ret = pgk_error(PGKEEP_EIO, "object encryption failed");
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

/*
 * The body is compressed straight into its place in out and encrypted there
 * in place, so no second buffer of plaintext exists.
 */
int obj_seal(const struct repo_keys *k, enum obj_kind kind, const char *key, int level,
	     const void *plain, size_t len, struct pgk_buf *out)
{
	size_t room, bodylen, dirty;
	const uint8_t *src;
	uint8_t *hdr, *body;
	int ret;

	room = level > 0 ? ZSTD_compressBound(len) : len;
	buf_reserve(out, OBJ_OVERHEAD + (room > len ? room : len));
	hdr = out->data + out->len;
	body = hdr + OBJ_HEADER_LEN;
	bodylen = try_compress(level, plain, len, body, &dirty);
	src = bodylen ? body : plain;
	if (!bodylen) {
		bodylen = len;
		/* Encrypting plain overwrites [0, len); wipe what lies beyond. */
		if (dirty > len)
			secure_zero(body + len, dirty - len);
		dirty = 0;
	}
	ret = obj_encrypt_into(k, kind, key, len, src == body ? OBJ_COMP_ZSTD : OBJ_COMP_NONE, hdr,
			   src, bodylen);
	if (ret == 0) {
		out->len += OBJ_OVERHEAD + bodylen;
		dirty = 0;
	} else if (src == body) {
		dirty = dirty > bodylen ? dirty : bodylen;
	}
	/* On failure, the compressed body (plaintext too) must not linger. */
	secure_zero(body, dirty);
	return ret;
}

#define SEAL_READ_SIZE ((size_t)4 << 20)

/*
 * Compress the file into dst (cap bytes) piece by piece, each piece a zstd
 * frame of its own: a zstd body may hold several frames, which decode as
 * one.  One-shot compression of 4 MiB pieces is a sixth cheaper than
 * zstd's streaming interface on WAL, and compresses as well.  Returns the
 * body's length, 0 when it would not shrink (or zstd failed), or an error;
 * md (if not NULL) gets every byte read.
 */
static ssize_t compress_fd(int fd, uint64_t len, int level, uint8_t *dst, size_t cap,
			   EVP_MD_CTX *md, const char *what, size_t *dirty)
{
	uint64_t off = 0;
	size_t n, pos = 0, z;
	uint8_t *rbuf;
	ssize_t ret = 0;

	*dirty = 0;
	rbuf = xmalloc(SEAL_READ_SIZE);
	while (off < len) {
		n = len - off < SEAL_READ_SIZE ? (size_t)(len - off) : SEAL_READ_SIZE;
		ret = pread_full(fd, rbuf, n, off, what);
		if (ret < 0)
			goto out_free;
		off += n;
		if (md)
			EVP_DigestUpdate(md, rbuf, n);
		z = zstd_compress(dst + pos, cap - pos, rbuf, n, level);
		if (ZSTD_isError(z)) {
			*dirty = cap;	/* what zstd may have written */
			ret = 0;
			goto out_free;
		}
		pos += z;
		*dirty = pos;
		if (pos >= len) {	/* no gain: stored plain */
			ret = 0;
			goto out_free;
		}
	}
	ret = (ssize_t)pos;
out_free:
	secure_free(rbuf, SEAL_READ_SIZE);
	return ret;
}

int obj_seal_fd(const struct repo_keys *k, enum obj_kind kind, const char *key, int level,
		int fd, uint64_t len, const char *what, struct pgk_buf *out, uint8_t sha256[32])
{
	size_t room, dirty = 0;
	uint8_t *hdr, *body;
	ssize_t bodylen = 0;
	EVP_MD_CTX *md;
	unsigned mdlen;
	bool zstd;
	int ret;

	/* No digest asked for: none made (it costs a tenth of the work). */
	md = sha256 ? EVP_MD_CTX_new() : NULL;
	if (sha256 && (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)) {
		EVP_MD_CTX_free(md);
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate a digest context");
	}
	room = level > 0 ? ZSTD_compressBound(len) : len;
	buf_reserve(out, OBJ_OVERHEAD + (room > len ? room : len));
	hdr = out->data + out->len;
	body = hdr + OBJ_HEADER_LEN;
	if (level > 0 && len > 0) {
		bodylen = compress_fd(fd, len, level, body, room, md, what, &dirty);
		if (bodylen < 0) {
			ret = (int)bodylen;
			goto out_wipe;
		}
	}
	zstd = bodylen > 0;
	if (!zstd) {
		/* Stored as it is: read again, into its place, and hashed from the start. */
		ret = pread_full(fd, body, len, 0, what);
		if (dirty > len)
			secure_zero(body + len, dirty - len);
		dirty = len;
		if (ret < 0)
			goto out_wipe;
		if (md) {
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
			EVP_DigestUpdate(md, body, len);
		}
		bodylen = (ssize_t)len;
	}
	ret = obj_encrypt_into(k, kind, key, len, zstd ? OBJ_COMP_ZSTD : OBJ_COMP_NONE, hdr, body,
			   (size_t)bodylen);
	if (ret < 0)
		goto out_wipe;
	out->len += OBJ_OVERHEAD + (size_t)bodylen;
	dirty = 0;
	if (sha256)
		EVP_DigestFinal_ex(md, sha256, &mdlen);
out_wipe:
	secure_zero(body, dirty);
	EVP_MD_CTX_free(md);
	return ret;
}

_Static_assert(LIST_HEADER_LEN + (uint64_t)LIST_ENTRY_LEN * LIST_CHUNKS_MAX <= OBJ_LIST_PLAIN_MAX,
	      "a list object holds the longest list");

uint64_t obj_plain_max(enum obj_kind kind)
{
	switch (kind) {
	case OBJ_META: return OBJ_META_PLAIN_MAX;
	case OBJ_WAL: return OBJ_WAL_PLAIN_MAX;
	case OBJ_CHUNK: return OBJ_CHUNK_PLAIN_MAX;
	case OBJ_MANIFEST: return OBJ_MANIFEST_PLAIN_MAX;
	case OBJ_LIST: return OBJ_LIST_PLAIN_MAX;
	}
	return 0;
}

/* Bytes before a delta's frame: the count, then the ids. */
size_t obj_delta_head_len(size_t nbases)
{
	return 1 + nbases * OBJ_BASE_ID_LEN;
}

/* The longest whole object that can hold plainlen bytes compressed as comp. */
static uint64_t stored_max(uint8_t comp, uint64_t plainlen)
{
	uint64_t body = plainlen;

	if (comp != OBJ_COMP_NONE)
		body = ZSTD_COMPRESSBOUND(plainlen);
	if (comp == OBJ_COMP_DELTA)
		body += obj_delta_head_len(OBJ_DELTA_MAX_BASES);
	return OBJ_OVERHEAD + body;
}

/* What the first bytes tell without a key: magic, version, kind, ids. */
static int check_format(enum obj_kind kind, const uint8_t *obj, const char *what)
{
	if (memcmp(obj, OBJ_MAGIC, OBJ_MAGIC_LEN) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "object %s is not a pgkeep object (bad magic)", what);
	if (obj[7] != OBJ_VERSION && obj[7] != OBJ_VERSION_UNBOUND)
		return pgk_error(PGKEEP_ECORRUPT, "object %s has unknown format version %u", what,
				 obj[7]);
	if (obj[8] != kind)
		return pgk_error(PGKEEP_ECORRUPT, "object %s is a %s object (kind %u), expected %s",
				 what, kind_name(obj[8]), obj[8], kind_name(kind));
	if (obj[9] > (kind == OBJ_CHUNK ? OBJ_COMP_DELTA : OBJ_COMP_ZSTD) ||
	    obj[10] != OBJ_CIPHER_AES256GCM || obj[11] != 0)
		return pgk_error(PGKEEP_ECORRUPT,
				 "object %s has an unknown compression or cipher (%u/%u/%u)", what,
				 obj[9], obj[10], obj[11]);
	return 0;
}

int obj_check_head(enum obj_kind kind, const char *key, const void *head, size_t len,
		   uint64_t *max)
{
	const uint8_t *o = head;
	uint64_t plainlen;
	int ret;

	if (len < OBJ_HEADER_LEN)
		return pgk_error(PGKEEP_ECORRUPT, "object %s is truncated (%zu bytes)", key, len);
	ret = check_format(kind, o, key);
	if (ret < 0)
		return ret;
	plainlen = obj_get_be64(o + 32);
	if (plainlen > obj_plain_max(kind))
		return pgk_error(PGKEEP_ECORRUPT,
				 "object %s claims %llu bytes, more than a %s object holds (%llu)", key,
				 (unsigned long long)plainlen, kind_name(kind),
				 (unsigned long long)obj_plain_max(kind));
	*max = stored_max(o[9], plainlen);
	return 0;
}

struct fetch_check {
	enum obj_kind kind;
	const char *key;
};

static int fetch_check(void *arg, const void *head, size_t len, uint64_t *max)
{
	struct fetch_check *fc = arg;

	/* Shorter than a header: obj_open says it is truncated. */
	if (len < OBJ_HEADER_LEN)
		return 0;
	return obj_check_head(fc->kind, fc->key, head, len, max);
}

int obj_fetch(struct pgk_store *st, const char *key, enum obj_kind kind, struct pgk_buf *obj)
{
	struct fetch_check fc = { kind, key };
	struct store_cap cap = {
		.max = stored_max(OBJ_COMP_DELTA, obj_plain_max(kind)),
		.head_len = OBJ_HEADER_LEN,
		.check = fetch_check,
		.arg = &fc,
	};

	return store_get_capped(st, key, &cap, obj);
}

/* Everything the header can tell before any cryptography. */
int obj_check_header(const struct repo_keys *k, enum obj_kind kind, const uint8_t *obj,
			size_t len, const char *what)
{
	int ret;

	if (len < OBJ_OVERHEAD)
		return pgk_error(PGKEEP_ECORRUPT, "object %s is truncated (%zu bytes)", what, len);
	ret = check_format(kind, obj, what);
	if (ret < 0)
		return ret;
	if (memcmp(obj + 12, k->key_id, PGK_KEY_ID_LEN) != 0)
		return pgk_error(PGKEEP_EAUTH, "object %s was written with another key", what);
	if (obj[9] == OBJ_COMP_NONE && obj_get_be64(obj + 32) != len - OBJ_OVERHEAD)
		return pgk_error(PGKEEP_ECORRUPT, "object %s is damaged (length %zu, header says %llu)",
				 what, len - OBJ_OVERHEAD, (unsigned long long)obj_get_be64(obj + 32));
	if (obj_get_be64(obj + 32) > obj_plain_max(kind) || len > stored_max(obj[9], obj_get_be64(obj + 32)))
		return pgk_error(PGKEEP_ECORRUPT, "object %s is damaged (%zu bytes, header says %llu)",
				 what, len, (unsigned long long)obj_get_be64(obj + 32));
	return 0;
}

/*
 * Decrypt the body into out[0..bodylen) and verify the tag.  A format 2
 * object was sealed for the key it is read under, or it fails here.
 */
int obj_decrypt_body(const struct repo_keys *k, const char *key, const uint8_t *obj,
			size_t len, uint8_t *out)
{
	const char *what = key;
	size_t bodylen = len - OBJ_OVERHEAD;
	uint8_t tag[OBJ_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	int outl, ret = 0;

	memcpy(tag, obj + len - OBJ_TAG_LEN, OBJ_TAG_LEN);
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate cipher context");
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->enc, obj + 20) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, obj, OBJ_HEADER_LEN) != 1 ||
	    (obj[7] != OBJ_VERSION_UNBOUND &&
	     EVP_DecryptUpdate(ctx, NULL, &outl, (const uint8_t *)key, (int)strlen(key)) != 1) ||
	    !gcm_update(ctx, obj + OBJ_HEADER_LEN, bodylen, out) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, OBJ_TAG_LEN, tag) != 1) {
		ret = pgk_error(PGKEEP_EIO, "object %s: decryption failed", what);
		goto out_free_ctx;
	}
	if (EVP_DecryptFinal_ex(ctx, out + bodylen, &outl) != 1) {
		secure_zero(out, bodylen);
		ret = pgk_error(PGKEEP_ECORRUPT,
				obj[7] == OBJ_VERSION_UNBOUND ?
				"object %s is damaged (authentication tag does not match)" :
				"object %s is damaged or was stored under another name (authentication tag does not match)",
				what);
	}
out_free_ctx:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int obj_no_memory(const char *what, uint64_t len)
{
	return pgk_error(PGKEEP_ENOMEM, "out of memory opening object %s (%llu bytes)", what,
			 (unsigned long long)len);
}

static int decompress(const uint8_t *body, size_t bodylen, uint64_t plainlen,
		      struct pgk_buf *plain, const char *what)
{
	size_t n;

	if (plainlen > SIZE_MAX - plain->len)
		return pgk_error(PGKEEP_ECORRUPT, "object %s claims an impossible length", what);
	if (!buf_try_reserve(plain, (size_t)plainlen))
		return obj_no_memory(what, plainlen);
	n = zstd_decompress(plain->data + plain->len, (size_t)plainlen, body, bodylen);
	if (ZSTD_isError(n) || n != plainlen) {
		secure_zero(plain->data + plain->len, (size_t)plainlen);
		return pgk_error(PGKEEP_ECORRUPT, "object %s does not decompress to %llu bytes%s%s",
				 what, (unsigned long long)plainlen, ZSTD_isError(n) ? ": " : "",
				 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "");
	}
	plain->len += n;
	return 0;
}

int obj_open(const struct repo_keys *k, enum obj_kind kind, const char *key, const void *obj,
	     size_t len, struct pgk_buf *plain)
{
	const uint8_t *o = obj;
	struct pgk_buf body = PGK_BUF_INIT;
	size_t bodylen;
	int ret;

	ret = obj_check_header(k, kind, o, len, key);
	if (ret < 0)
		return ret;
	bodylen = len - OBJ_OVERHEAD;
	if (o[9] == OBJ_COMP_DELTA)
		return pgk_error(PGKEEP_ECORRUPT,
				 "object %s is stored as a delta where a whole chunk is needed", key);

	if (o[9] == OBJ_COMP_NONE) {
		/* Decrypt in place at the end of plain; len moves only once verified. */
		if (!buf_try_reserve(plain, bodylen + 16))
			return obj_no_memory(key, bodylen);
		ret = obj_decrypt_body(k, key, o, len, plain->data + plain->len);
		if (ret == 0)
			plain->len += bodylen;
		return ret;
	}

	if (!buf_try_reserve(&body, bodylen + 16))
		return obj_no_memory(key, bodylen);
	ret = obj_decrypt_body(k, key, o, len, body.data);
	if (ret == 0)
		ret = decompress(body.data, bodylen, obj_get_be64(o + 32), plain, key);
	/* Only what was written: wiping all of cap would touch unused pages. */
	secure_zero(body.data, bodylen + 16);
	buf_free(&body);
	return ret;
}

uint64_t obj_plain_len(const void *obj, size_t len)
{
	return len < OBJ_HEADER_LEN ? 0 : obj_get_be64((const uint8_t *)obj + 32);
}

int obj_reseal(const struct repo_keys *from, const struct repo_keys *to, enum obj_kind kind,
	       const char *key, struct pgk_buf *obj)
{
	const char *what = key;
	uint8_t *o = obj->data;
	size_t len = obj->len, bodylen;
	uint8_t comp;
	uint64_t plainlen;
	int ret;

	ret = obj_check_header(from, kind, o, len, what);
	if (ret == 0 && o[9] == OBJ_COMP_DELTA)
		ret = pgk_error(PGKEEP_ECORRUPT,
				"object %s is a delta, whose bases are named under its own key", what);
	if (ret) {
		obj->len = 0;	/* nothing was decrypted */
		return ret;
	}
	comp = o[9];
	plainlen = obj_get_be64(o + 32);
	bodylen = len - OBJ_OVERHEAD;
	/* GCM works in place: the body is decrypted where it lies, then the
	 * header rewritten for the new key and the body encrypted there again. */
	ret = obj_decrypt_body(from, key, o, len, o + OBJ_HEADER_LEN);
	if (ret == 0)
		ret = obj_encrypt_into(to, kind, key, plainlen, comp, o, o + OBJ_HEADER_LEN, bodylen);
	if (ret) {
		secure_zero(o, len);
		obj->len = 0;
	}
	return ret;
}

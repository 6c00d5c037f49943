/*
 * Repository keys: the random master key, the working keys HKDF derives from
 * it, and key slots that keep the master key wrapped under a passphrase
 * (scrypt, then AES-256-GCM).
 */
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "repo/keys.h"

#define SLOT_VERSION 1
#define SLOT_SALT_LEN 16
#define SLOT_NONCE_LEN 12
#define SLOT_TAG_LEN 16
#define SLOT_AAD_LABEL "pgkeep-keyslot-v1"
/* Refuse slot parameters that would make unwrapping eat the machine. */
#define SLOT_MAX_MEM ((uint64_t)1 << 30)

static _Atomic uint64_t kdf_runs;

uint64_t keyslot_kdf_runs(void)
{
	return kdf_runs;
}

static int hkdf(const uint8_t *key, size_t keylen, const char *info, uint8_t *out, size_t outlen)
{
	OSSL_PARAM params[4];
	EVP_KDF_CTX *ctx;
	EVP_KDF *kdf;
	int ret = 0;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return pgk_error(PGKEEP_EIO, "OpenSSL has no HKDF");
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!ctx)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate HKDF context");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						      strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
		ret = pgk_error(PGKEEP_EIO, "HKDF derivation failed");
	EVP_KDF_CTX_free(ctx);
	return ret;
}

int keys_derive(struct repo_keys *k)
{
	int ret;

	/* Distinct info strings give independent keys from one master. */
	ret = hkdf(k->master, PGK_KEY_LEN, "pgkeep v1 object encryption", k->enc, PGK_KEY_LEN);
	if (ret == 0)
		ret = hkdf(k->master, PGK_KEY_LEN, "pgkeep v1 chunk id", k->chunk_id, PGK_KEY_LEN);
	if (ret == 0)
		ret = hkdf(k->master, PGK_KEY_LEN, "pgkeep v1 key id", k->key_id, PGK_KEY_ID_LEN);
	if (ret < 0)
		keys_wipe(k);
	return ret;
}

int keys_generate(struct repo_keys *k)
{
	if (RAND_bytes(k->master, PGK_KEY_LEN) != 1)
		return pgk_error(PGKEEP_EIO, "cannot get random bytes for the master key");
	return keys_derive(k);
}

void keys_wipe(struct repo_keys *k)
{
	secure_zero(k, sizeof(*k));
}

void keys_chunk_id(const struct repo_keys *k, const void *data, size_t len, char out[65])
{
	uint8_t mac[32];
	unsigned int maclen = sizeof(mac);

	HMAC(EVP_sha256(), k->chunk_id, PGK_KEY_LEN, data, len, mac, &maclen);
	hex_encode(mac, sizeof(mac), out);
}

uint64_t keys_chunk_anchor(const struct repo_keys *k, const void *data, size_t len)
{
	/* Its own domain: an anchor never equals a chunk id's first bytes. */
	static const char domain[] = "pgkeep chunk anchor";
	uint8_t msg[sizeof(domain) + PGK_ANCHOR_BYTES], mac[32];
	unsigned int maclen = sizeof(mac);
	uint64_t v = 0;
	int i;

	if (len > PGK_ANCHOR_BYTES)
		len = PGK_ANCHOR_BYTES;
	memcpy(msg, domain, sizeof(domain));
	memcpy(msg + sizeof(domain), data, len);
	HMAC(EVP_sha256(), k->chunk_id, PGK_KEY_LEN, msg, sizeof(domain) + len, mac, &maclen);
	secure_zero(msg, sizeof(msg));
	for (i = 0; i < 8; i++)
		v = v << 8 | mac[i];
	return v;
}

/* ---- base64 ---- */

static char *b64_encode(const uint8_t *in, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* Decode exactly `want` bytes from s; false when s is not that. */
static bool b64_decode(const char *s, uint8_t *out, size_t want)
{
	size_t slen = strlen(s), pad = 0;
	uint8_t tmp[128];
	int n;

	if (slen == 0 || slen % 4 || slen / 4 * 3 > sizeof(tmp))
		return false;
	if (s[slen - 1] == '=')
		pad++;
	if (s[slen - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)slen);
	if (n < 0 || (size_t)n - pad != want) {
		secure_zero(tmp, sizeof(tmp));
		return false;
	}
	memcpy(out, tmp, want);
	secure_zero(tmp, sizeof(tmp));
	return true;
}

/* ---- key slots ---- */

static bool kdf_params_ok(const struct kdf_params *kp)
{
	if (kp->n < 2 || (kp->n & (kp->n - 1)) || kp->n > PGK_KDF_MAX_N || kp->r < 1 ||
	    kp->r > PGK_KDF_MAX_R || kp->p < 1 || kp->p > PGK_KDF_MAX_P)
		return false;
	/* scrypt needs about 128 * r * N bytes. */
	return kp->n <= SLOT_MAX_MEM / 128 / kp->r;
}

static int scrypt(const char *pass, const uint8_t *salt, const struct kdf_params *kp,
		  uint8_t out[PGK_KEY_LEN])
{
	OSSL_PARAM params[7];
	uint64_t n = kp->n, maxmem = 2 * SLOT_MAX_MEM;
	uint32_t r = kp->r, p = kp->p;
	EVP_KDF_CTX *ctx;
	EVP_KDF *kdf;
	int ret = 0;

	kdf_runs++;
	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!kdf)
		return pgk_error(PGKEEP_EIO, "OpenSSL has no scrypt");
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!ctx)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate scrypt context");
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass,
						      strlen(pass));
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
						      SLOT_SALT_LEN);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, PGK_KEY_LEN, params) != 1)
		ret = pgk_error(PGKEEP_EIO, "scrypt key derivation failed (N=%llu r=%u p=%u)",
				(unsigned long long)n, r, p);
	EVP_KDF_CTX_free(ctx);
	return ret;
}

/* The slot's parameters are bound to the wrapped key as GCM additional data. */
static void slot_aad(const struct kdf_params *kp, const uint8_t *salt, uint8_t *aad, size_t *len)
{
	size_t off = sizeof(SLOT_AAD_LABEL) - 1;
	int i;

	memcpy(aad, SLOT_AAD_LABEL, off);
	for (i = 7; i >= 0; i--)
		aad[off++] = (uint8_t)(kp->n >> (8 * i));
	for (i = 3; i >= 0; i--)
		aad[off++] = (uint8_t)(kp->r >> (8 * i));
	for (i = 3; i >= 0; i--)
		aad[off++] = (uint8_t)(kp->p >> (8 * i));
	memcpy(aad + off, salt, SLOT_SALT_LEN);
	*len = off + SLOT_SALT_LEN;
}

#define SLOT_AAD_MAX (sizeof(SLOT_AAD_LABEL) + 16 + SLOT_SALT_LEN)

/* AES-256-GCM over one short buffer; encrypt or decrypt in place of out. */
static int gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
	       size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, ok;

	if (!ctx)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate cipher context");
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc ? 1 : 0) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) == 1 &&
	     EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SLOT_TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + n, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SLOT_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return enc ? pgk_error(PGKEEP_EIO, "key slot encryption failed") : PGKEEP_EAUTH;
	return 0;
}

int keyslot_wrap(const struct repo_keys *k, const char *pass, const struct kdf_params *kp,
		 struct pgk_buf *out)
{
	uint8_t salt[SLOT_SALT_LEN], nonce[SLOT_NONCE_LEN], kek[PGK_KEY_LEN];
	uint8_t wrapped[PGK_KEY_LEN + SLOT_TAG_LEN], aad[SLOT_AAD_MAX];
	char *salt64, *nonce64, *wrapped64;
	struct json_object *obj;
	size_t aadlen;
	int ret;

	if (!kdf_params_ok(kp))
		return pgk_error(PGKEEP_EINVAL,
				 "bad scrypt parameters N=%llu r=%u p=%u (N a power of two up to %llu, r up to %d, p up to %d)",
				 (unsigned long long)kp->n, kp->r, kp->p,
				 (unsigned long long)PGK_KDF_MAX_N, PGK_KDF_MAX_R, PGK_KDF_MAX_P);
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
		return pgk_error(PGKEEP_EIO, "cannot get random bytes for a key slot");
	ret = scrypt(pass, salt, kp, kek);
	if (ret < 0)
		goto out_wipe;
	slot_aad(kp, salt, aad, &aadlen);
	ret = gcm(true, kek, nonce, aad, aadlen, k->master, PGK_KEY_LEN, wrapped,
		  wrapped + PGK_KEY_LEN);
	if (ret < 0)
		goto out_wipe;

	salt64 = b64_encode(salt, sizeof(salt));
	nonce64 = b64_encode(nonce, sizeof(nonce));
	wrapped64 = b64_encode(wrapped, sizeof(wrapped));
	obj = json_object_new_object();
	json_object_object_add(obj, "version", json_object_new_int(SLOT_VERSION));
	json_object_object_add(obj, "kdf", json_object_new_string("scrypt"));
	json_object_object_add(obj, "n", json_object_new_int64((int64_t)kp->n));
	json_object_object_add(obj, "r", json_object_new_int64(kp->r));
	json_object_object_add(obj, "p", json_object_new_int64(kp->p));
	json_object_object_add(obj, "salt", json_object_new_string(salt64));
	json_object_object_add(obj, "nonce", json_object_new_string(nonce64));
	json_object_object_add(obj, "wrapped", json_object_new_string(wrapped64));
	buf_printf(out, "%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	free(salt64);
	free(nonce64);
	free(wrapped64);
out_wipe:
	secure_zero(kek, sizeof(kek));
	return ret;
}

static bool get_u64(struct json_object *obj, const char *key, uint64_t max, uint64_t *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return false;
	*out = (uint64_t)n;
	return true;
}

static const char *get_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Read the slot's fields; every failure here is a damaged slot. */
static int slot_parse(struct json_object *obj, struct kdf_params *kp, uint8_t *salt,
		      uint8_t *nonce, uint8_t *wrapped)
{
	const char *kdf, *s;
	uint64_t version, r, p;

	if (!get_u64(obj, "version", UINT32_MAX, &version))
		return pgk_error(PGKEEP_ECORRUPT, "key slot has no version");
	if (version != SLOT_VERSION)
		return pgk_error(PGKEEP_EUNSUPPORTED, "key slot version %llu is not supported",
				 (unsigned long long)version);
	kdf = get_str(obj, "kdf");
	if (!kdf || strcmp(kdf, "scrypt") != 0)
		return pgk_error(PGKEEP_EUNSUPPORTED, "key slot uses an unknown kdf '%s'",
				 kdf ? kdf : "");
	if (!get_u64(obj, "n", UINT64_MAX >> 1, &kp->n) || !get_u64(obj, "r", UINT32_MAX, &r) ||
	    !get_u64(obj, "p", UINT32_MAX, &p))
		return pgk_error(PGKEEP_ECORRUPT, "key slot has bad scrypt parameters");
	kp->r = (uint32_t)r;
	kp->p = (uint32_t)p;
	if (!kdf_params_ok(kp))
		return pgk_error(PGKEEP_ECORRUPT,
				 "key slot asks for scrypt N=%llu r=%u p=%u, beyond what pgkeep writes (N up to %llu, r up to %d, p up to %d)",
				 (unsigned long long)kp->n, kp->r, kp->p,
				 (unsigned long long)PGK_KDF_MAX_N, PGK_KDF_MAX_R, PGK_KDF_MAX_P);
	s = get_str(obj, "salt");
	if (!s || !b64_decode(s, salt, SLOT_SALT_LEN))
		return pgk_error(PGKEEP_ECORRUPT, "key slot has a bad salt");
	s = get_str(obj, "nonce");
	if (!s || !b64_decode(s, nonce, SLOT_NONCE_LEN))
		return pgk_error(PGKEEP_ECORRUPT, "key slot has a bad nonce");
	s = get_str(obj, "wrapped");
	if (!s || !b64_decode(s, wrapped, PGK_KEY_LEN + SLOT_TAG_LEN))
		return pgk_error(PGKEEP_ECORRUPT, "key slot has a bad wrapped key");
	return 0;
}

int keyslot_unwrap(struct repo_keys *k, const char *pass, const void *slot, size_t len)
{
	uint8_t salt[SLOT_SALT_LEN], nonce[SLOT_NONCE_LEN], kek[PGK_KEY_LEN];
	uint8_t wrapped[PGK_KEY_LEN + SLOT_TAG_LEN], aad[SLOT_AAD_MAX];
	struct json_tokener *tok;
	struct json_object *obj;
	struct kdf_params kp;
	size_t aadlen;
	int ret;

	if (len > PGK_KEYSLOT_MAX_LEN)
		return pgk_error(PGKEEP_ECORRUPT, "key slot is too large (%zu bytes)", len);
	tok = json_tokener_new();
	obj = json_tokener_parse_ex(tok, slot, (int)len);
	if (obj && tok->char_offset != (int)len) {
		/* Only whitespace may follow the document. */
		const char *rest = (const char *)slot + tok->char_offset;

		while (rest < (const char *)slot + len && strchr(" \t\r\n", *rest))
			rest++;
		if (rest != (const char *)slot + len) {
			json_object_put(obj);
			obj = NULL;
		}
	}
	json_tokener_free(tok);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return pgk_error(PGKEEP_ECORRUPT, "key slot is not valid JSON");
	}
	ret = slot_parse(obj, &kp, salt, nonce, wrapped);
	json_object_put(obj);
	if (ret < 0)
		return ret;

	ret = scrypt(pass, salt, &kp, kek);
	if (ret < 0)
		goto out_wipe;
	slot_aad(&kp, salt, aad, &aadlen);
	ret = gcm(false, kek, nonce, aad, aadlen, wrapped, PGK_KEY_LEN, k->master,
		  wrapped + PGK_KEY_LEN);
	if (ret < 0) {
		keys_wipe(k);
		ret = pgk_error(PGKEEP_EAUTH, "wrong passphrase for repository");
		goto out_wipe;
	}
	ret = keys_derive(k);
out_wipe:
	secure_zero(kek, sizeof(kek));
	return ret;
}

/*
 * Keys: HKDF sub-keys checked against an independent HMAC computation (the
 * info strings are part of the repository format), chunk ids, and key slots:
 * round trip, wrong passphrase, tampered parameters, and what slots planted
 * in a store can cost: none asks for more scrypt than init writes, and
 * opening a repository runs scrypt for a bounded number of them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "memstore.h"
#include "tap.h"

static const struct kdf_params fast = { 1024, 8, 1 };

/* RFC 5869 with an empty salt, one output block. */
static void hkdf_ref(const uint8_t *ikm, const char *info, uint8_t out[32])
{
	uint8_t zeros[32] = { 0 }, prk[32], msg[128];
	unsigned int len = 32;
	size_t n = strlen(info);

	HMAC(EVP_sha256(), zeros, 32, ikm, PGK_KEY_LEN, prk, &len);
	memcpy(msg, info, n);
	msg[n] = 1;
	HMAC(EVP_sha256(), prk, 32, msg, n + 1, out, &len);
}

static void derive(void)
{
	struct repo_keys a, b;
	uint8_t want[32];
	int i;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < PGK_KEY_LEN; i++)
		a.master[i] = (uint8_t)i;
	b = a;
	is_int(keys_derive(&a), 0, "derive");
	keys_derive(&b);
	ok(memcmp(&a, &b, sizeof(a)) == 0, "derivation is deterministic");
	hkdf_ref(a.master, "pgkeep v1 object encryption", want);
	ok(memcmp(a.enc, want, 32) == 0, "encryption key = HKDF-SHA256(master, \"pgkeep v1 object encryption\")");
	hkdf_ref(a.master, "pgkeep v1 chunk id", want);
	ok(memcmp(a.chunk_id, want, 32) == 0, "chunk-id key = HKDF-SHA256(master, \"pgkeep v1 chunk id\")");
	hkdf_ref(a.master, "pgkeep v1 key id", want);
	ok(memcmp(a.key_id, want, PGK_KEY_ID_LEN) == 0, "key id = first 8 bytes of HKDF-SHA256(master, \"pgkeep v1 key id\")");
	b.master[0] ^= 1;
	keys_derive(&b);
	ok(memcmp(a.enc, b.enc, 32) && memcmp(a.chunk_id, b.chunk_id, 32) &&
	   memcmp(a.key_id, b.key_id, PGK_KEY_ID_LEN), "another master gives other keys");
	keys_generate(&b);
	ok(memcmp(a.master, b.master, 32) != 0, "generated master keys are random");
}

static void chunk_id(void)
{
	struct repo_keys k;
	uint8_t mac[32];
	unsigned int len = 32;
	char id[65], want[65];
	int i;

	keys_generate(&k);
	keys_chunk_id(&k, "hello", 5, id);
	HMAC(EVP_sha256(), k.chunk_id, 32, (const uint8_t *)"hello", 5, mac, &len);
	for (i = 0; i < 32; i++)
		sprintf(want + 2 * i, "%02x", mac[i]);
	is_str(id, want, "chunk id = hex HMAC-SHA256 under the chunk-id key");
	keys_chunk_id(&k, "hellp", 5, want);
	ok(strcmp(id, want) != 0, "different data, different id");
}

/* Rewrite one field of a slot and try to unwrap it. */
static int tamper(const struct pgk_buf *slot, const char *field, struct json_object *value,
		  const char *pass)
{
	struct json_object *obj = json_tokener_parse((const char *)slot->data);
	struct repo_keys k;
	const char *s;
	int ret;

	json_object_object_add(obj, field, value);
	s = json_object_to_json_string(obj);
	ret = keyslot_unwrap(&k, pass, s, strlen(s));
	json_object_put(obj);
	return ret;
}

/* A base64 field with its first character changed. */
static struct json_object *flip_b64(const struct pgk_buf *slot, const char *field)
{
	struct json_object *obj = json_tokener_parse((const char *)slot->data), *v;
	char *s;

	json_object_object_get_ex(obj, field, &v);
	s = xstrdup(json_object_get_string(v));
	s[0] = s[0] == 'A' ? 'B' : 'A';
	v = json_object_new_string(s);
	free(s);
	json_object_put(obj);
	return v;
}

static void slots(void)
{
	struct pgk_buf slot = PGK_BUF_INIT, slot2 = PGK_BUF_INIT;
	struct kdf_params bad = { 1000, 8, 1 };
	struct repo_keys k, got;
	int ret;

	keys_generate(&k);
	is_int(keyslot_wrap(&k, "correct horse", &fast, &slot), 0, "wrap");
	buf_append(&slot, "", 1);
	slot.len--;
	ok(strstr((char *)slot.data, "\"kdf\"") && strstr((char *)slot.data, "\"scrypt\"") &&
	   strstr((char *)slot.data, "\"n\":1024") && strstr((char *)slot.data, "\"wrapped\""),
	   "slot is JSON with kdf, parameters and wrapped key");
	ret = keyslot_unwrap(&got, "correct horse", slot.data, slot.len);
	is_int(ret, 0, "unwrap with the passphrase: %s", ret ? pgk_errmsg() : "ok");
	ok(memcmp(&got, &k, sizeof(k)) == 0, "same master key, same derived keys");

	ret = keyslot_unwrap(&got, "correct horsE", slot.data, slot.len);
	is_int(ret, PGKEEP_EAUTH, "wrong passphrase: EAUTH");
	is_str(pgk_errmsg(), "wrong passphrase for repository", "  with a clear message");

	keyslot_wrap(&k, "correct horse", &fast, &slot2);
	ok(slot.len != slot2.len || memcmp(slot.data, slot2.data, slot.len) != 0,
	   "two slots for one key differ (fresh salt and nonce)");

	is_int(tamper(&slot, "n", json_object_new_int64(2048), "correct horse"), PGKEEP_EAUTH,
	       "slot with N changed is refused");
	is_int(tamper(&slot, "r", json_object_new_int64(4), "correct horse"), PGKEEP_EAUTH,
	       "slot with r changed is refused");
	is_int(tamper(&slot, "p", json_object_new_int64(2), "correct horse"), PGKEEP_ECORRUPT,
	       "slot with p changed is refused (init writes p = 1 only)");
	is_int(tamper(&slot, "salt", flip_b64(&slot, "salt"), "correct horse"), PGKEEP_EAUTH,
	       "slot with the salt changed is refused");
	is_int(tamper(&slot, "nonce", flip_b64(&slot, "nonce"), "correct horse"), PGKEEP_EAUTH,
	       "slot with the nonce changed is refused");
	is_int(tamper(&slot, "wrapped", flip_b64(&slot, "wrapped"), "correct horse"), PGKEEP_EAUTH,
	       "slot with the wrapped key changed is refused");
	is_int(tamper(&slot, "n", json_object_new_int64(1000), "correct horse"), PGKEEP_ECORRUPT,
	       "N not a power of two: ECORRUPT");
	is_int(tamper(&slot, "n", json_object_new_int64((int64_t)1 << 40), "correct horse"),
	       PGKEEP_ECORRUPT, "N too costly: refused before deriving");
	is_int(tamper(&slot, "salt", json_object_new_string("c2hvcnQ="), "correct horse"),
	       PGKEEP_ECORRUPT, "short salt: ECORRUPT");
	is_int(tamper(&slot, "version", json_object_new_int(2), "correct horse"), PGKEEP_EUNSUPPORTED,
	       "unknown slot version: EUNSUPPORTED");
	is_int(tamper(&slot, "kdf", json_object_new_string("pbkdf2"), "correct horse"),
	       PGKEEP_EUNSUPPORTED, "unknown kdf: EUNSUPPORTED");
	is_int(keyslot_unwrap(&got, "correct horse", "{\"version\":1", 12), PGKEEP_ECORRUPT,
	       "truncated JSON: ECORRUPT");
	is_int(keyslot_unwrap(&got, "correct horse", slot.data, slot.len - 40), PGKEEP_ECORRUPT,
	       "truncated slot: ECORRUPT");
	is_int(keyslot_wrap(&k, "x", &bad, &slot2), PGKEEP_EINVAL, "wrap refuses N=1000");
	buf_free(&slot);
	buf_free(&slot2);
	keys_wipe(&k);
	keys_wipe(&got);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A slot that asks scrypt for n, r, p (its tag cannot match: never unwrapped). */
static int unwrap_asking(uint64_t n, uint32_t r, uint32_t p)
{
	struct repo_keys k;
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"version\":1,\"kdf\":\"scrypt\",\"n\":%llu,\"r\":%u,\"p\":%u,"
		 "\"salt\":\"otJiKG3TjKyLcRGPIHB5Pg==\",\"nonce\":\"RmGcqy3ZzzKsiH3t\","
		 "\"wrapped\":\"bG3A/DDQQLefu7S9CiPkf52nvxKeeDNIjZh44vspE4t7LSIkx4DKo3ubjlb5GZlU\"}",
		 (unsigned long long)n, r, p);
	return keyslot_unwrap(&k, "correct horse", text, strlen(text));
}

/* Each within 1 GiB, which was all that bounded a slot: none is what init writes. */
static void costly_slots(void)
{
	static const struct {
		uint64_t n;
		uint32_t r, p;
		const char *what;
	} asks[] = {
		{ (uint64_t)1 << 30, 8, 1, "N = 2^30" },
		{ (uint64_t)1 << 21, 4, 1, "N = 2^21 (r = 4: 1 GiB)" },
		{ (uint64_t)1 << 19, 16, 1, "r = 16 (N = 2^19: 1 GiB)" },
		{ (uint64_t)1 << 16, 8, 16, "p = 16 (16 runs of 64 MiB)" },
	};
	uint64_t runs = keyslot_kdf_runs();
	double t0 = now_s();
	size_t i;
	int ret;

	for (i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		ret = unwrap_asking(asks[i].n, asks[i].r, asks[i].p);
		is_int(ret, PGKEEP_ECORRUPT, "a slot asking %s is refused", asks[i].what);
		ok(strstr(pgk_errmsg(), "beyond what pgkeep writes") != NULL, "  saying why: %s",
		   pgk_errmsg());
	}
	is_int(keyslot_kdf_runs() - runs, 0, "  without running scrypt");
	ok(now_s() - t0 < 1.0, "  at once (%.3f s)", now_s() - t0);
	is_int(unwrap_asking(4096, 8, 1), PGKEEP_EAUTH, "a slot within bounds is still tried");
	is_int(keyslot_kdf_runs() - runs, 1, "  with one scrypt run");
}

static void noop_close(void *handle)
{
	(void)handle;
}

/* Another handle on the memory store: repo_open closes the one it is given. */
static struct pgk_store *view(struct pgk_store *ms)
{
	struct pgk_store *st = xzalloc(sizeof(*st));

	st->ops = ms->ops;
	st->ops.close = noop_close;
	st->handle = ms->handle;
	st->path = xstrdup("memory");
	st->repo_name = xstrdup("test");
	return st;
}

static int first_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	(void)st;
	*(char **)payload = xstrdup(key);
	return 1;
}

/*
 * Ten slots planted beside a repository's own, named to sort first, each
 * a real scrypt run away from failing: opening costs the repository's slot
 * alone while it is the oldest, and never more than PGK_KEYSLOT_TRY_MAX
 * runs even when the planted ones look older.
 */
static void planted_slots(void)
{
	struct pgk_store *ms = memstore_open();
	struct pgk_buf slot = PGK_BUF_INIT;
	struct repo_keys stranger;
	struct repo *r = NULL;
	char *real = NULL, key[64];
	uint64_t runs;
	int i, ret;

	ret = repo_init(ms, "test", "hunter2", &fast);
	is_int(ret, 0, "planted slots: a repository: %s", ret ? pgk_errmsg() : "ok");
	store_list(ms, "keys/", first_key, &real);
	memstore_set_mtime(ms, real, 1000);
	keys_generate(&stranger);
	for (i = 0; i < 10; i++) {
		buf_reset(&slot);
		keyslot_wrap(&stranger, "hunter2", &fast, &slot);
		snprintf(key, sizeof(key), "keys/%02d.json", i);
		store_put(ms, key, slot.data, slot.len, 0);
		memstore_set_mtime(ms, key, 2000 + i);
	}
	runs = keyslot_kdf_runs();
	ret = repo_open(&r, view(ms), "test", "hunter2", 3, NULL);
	is_int(ret, 0, "  the repository opens beside 10 newer planted slots: %s",
	       ret ? pgk_errmsg() : "ok");
	is_int(keyslot_kdf_runs() - runs, 1, "  with one scrypt run, its own slot's");
	repo_close(r);
	r = NULL;

	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "keys/%02d.json", i);
		memstore_set_mtime(ms, key, 100 + i);
	}
	runs = keyslot_kdf_runs();
	ret = repo_open(&r, view(ms), "test", "hunter2", 3, NULL);
	is_int(ret, PGKEEP_EAUTH, "  planted slots that look older keep it shut");
	is_int(keyslot_kdf_runs() - runs, PGK_KEYSLOT_TRY_MAX, "  after %d scrypt runs, not 11",
	       PGK_KEYSLOT_TRY_MAX);
	ok(strstr(pgk_errmsg(), "8 oldest of its 11 key slots") != NULL, "  saying so: %s",
	   pgk_errmsg());
	if (r)
		repo_close(r);
	keys_wipe(&stranger);
	buf_free(&slot);
	free(real);
	memstore_close(ms);
}

int main(void)
{
	derive();
	chunk_id();
	slots();
	costly_slots();
	planted_slots();
	return done_testing();
}

/*
 * Repository keys.  The master key is 32 random bytes, stored only wrapped
 * (AES-256-GCM) by a key derived from a passphrase with scrypt, one key slot
 * per passphrase.  Working keys come from the master key through HKDF-SHA256:
 * one for object encryption, one for chunk ids, and an 8-byte key id written
 * into every object header so a wrong key is told apart from damage.
 */
#ifndef PGK_KEYS_H
#define PGK_KEYS_H

#include <stdint.h>
#include <stddef.h>

#include "common/mem.h"

#define PGK_KEY_LEN 32
#define PGK_KEY_ID_LEN 8

struct repo_keys {
	uint8_t master[PGK_KEY_LEN];
	uint8_t enc[PGK_KEY_LEN];	/* object encryption */
	uint8_t chunk_id[PGK_KEY_LEN];	/* HMAC key for chunk names */
	uint8_t key_id[PGK_KEY_ID_LEN];
};

struct kdf_params {
	uint64_t n;	/* scrypt N, a power of two */
	uint32_t r;
	uint32_t p;
};

#define PGK_KDF_DEFAULT_N 32768
#define PGK_KDF_DEFAULT_R 8
#define PGK_KDF_DEFAULT_P 1
/*
 * The most a key slot may ask for: what init can write (N up to 2^20 with
 * r = 8, p = 1: 1 GiB and a few seconds).  A slot asking more is refused
 * before scrypt runs, so a planted slot cannot cost more than a real one.
 */
#define PGK_KDF_MAX_N ((uint64_t)1 << 20)
#define PGK_KDF_MAX_R 8
#define PGK_KDF_MAX_P 1

/*
 * Opening a repository tries at most this many key slots, oldest first:
 * slots planted in a store cost at most that many scrypt runs.
 */
#define PGK_KEYSLOT_TRY_MAX 8
/* A key slot is a few hundred bytes; a larger one is refused unread. */
#define PGK_KEYSLOT_MAX_LEN 65536

/* Fill the working keys from k->master. */
int keys_derive(struct repo_keys *k);
/* A fresh random master key, derived. */
int keys_generate(struct repo_keys *k);
void keys_wipe(struct repo_keys *k);

/*
 * A key slot is a small JSON document (salt, KDF parameters, nonce, wrapped
 * master key and tag).  keyslot_wrap writes one into out; keyslot_unwrap
 * fills k (derived) or fails with PGKEEP_EAUTH when the passphrase is wrong.
 */
int keyslot_wrap(const struct repo_keys *k, const char *pass, const struct kdf_params *kp,
		 struct pgk_buf *out);
int keyslot_unwrap(struct repo_keys *k, const char *pass, const void *slot, size_t len);
/* scrypt runs in this process so far: what opening a repository cost. */
uint64_t keyslot_kdf_runs(void);

/* HMAC-SHA256 of data under the chunk-id key, as 64 lowercase hex + NUL. */
void keys_chunk_id(const struct repo_keys *k, const void *data, size_t len, char out[65]);

/*
 * A keyed 64-bit fingerprint of a chunk's first PGK_ANCHOR_BYTES bytes: a
 * chunk starts where content decided, so its successor in the next backup
 * usually starts with the same bytes even when its middle changed.
 */
#define PGK_ANCHOR_BYTES 64
uint64_t keys_chunk_anchor(const struct repo_keys *k, const void *data, size_t len);

#endif

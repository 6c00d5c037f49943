/*
 * What object.c and object_delta.c share: the format's constants and the
 * steps of sealing and opening that both whole and delta objects take.
 * Not for use outside src/repo/object*.c.
 */
#ifndef PGK_OBJECT_INT_H
#define PGK_OBJECT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "repo/object.h"

#define OBJ_MAGIC "PGKEEP\0"
#define OBJ_MAGIC_LEN 7
#define OBJ_VERSION 2
#define OBJ_VERSION_UNBOUND 1	/* format 1: the key is not in the additional data */
#define OBJ_COMP_NONE 0
#define OBJ_COMP_ZSTD 1
#define OBJ_COMP_DELTA 2	/* chunks only: zstd against a base chunk */
#define OBJ_CIPHER_AES256GCM 1
#define OBJ_NONCE_LEN 12

uint64_t obj_get_be64(const uint8_t *p);
/* The calling thread's contexts, made on first use; NULL when that fails. */
ZSTD_CCtx *obj_thread_cctx(void);
ZSTD_DCtx *obj_thread_dctx(void);
/*
 * Write the header at hdr and encrypt bodylen bytes of src into hdr's body
 * (src may be that body itself: GCM encrypts in place), tag last.
 */
int obj_encrypt_into(const struct repo_keys *k, enum obj_kind kind, const char *key,
		     uint64_t plainlen, uint8_t comp, uint8_t *hdr, const uint8_t *src,
		     size_t bodylen);
/* Everything the header can tell before any cryptography. */
int obj_check_header(const struct repo_keys *k, enum obj_kind kind, const uint8_t *obj,
		     size_t len, const char *what);
/*
 * Decrypt the body into out[0..bodylen) and verify the tag.  A format 2
 * object was sealed for the key it is read under, or it fails here.
 */
int obj_decrypt_body(const struct repo_keys *k, const char *key, const uint8_t *obj,
		     size_t len, uint8_t *out);
int obj_no_memory(const char *what, uint64_t len);
/* Bytes before a delta's frame: the count, then the ids. */
size_t obj_delta_head_len(size_t nbases);

#endif

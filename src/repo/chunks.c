/*
 * One chunk object at a time: its keys (through layout.c), sealing, storing
 * it with its delta records, and reading it back proven to be the chunk
 * its id names.
 */
#include <string.h>

#include "common/error.h"
#include "repo/chunks.h"

void chunk_key(const char *id, char *key, size_t keylen)
{
	layout_chunk_key(id, key, keylen);
}

void delta_key(const char *id, const char *base, char *key, size_t keylen)
{
	layout_delta_key(id, base, key, keylen);
}

int chunk_exists(struct repo *r, const char *id)
{
	char key[CHUNK_KEY_MAX];
	struct pgkeep_stat st;
	int ret;

	chunk_key(id, key, sizeof(key));
	ret = store_stat(r->store, key, &st);
	if (ret == 0)
		return 1;
	return ret == PGKEEP_ENOTFOUND ? 0 : ret;
}

int chunk_seal(struct repo *r, const char *id, const void *plain, size_t len,
	       struct pgk_buf *out)
{
	char key[CHUNK_KEY_MAX];

	chunk_key(id, key, sizeof(key));
	return obj_seal(&r->keys, OBJ_CHUNK, key, r->compress_level, plain, len, out);
}

int chunk_seal_delta(struct repo *r, const char *id, const struct obj_bases *bases,
		     const void *plain, size_t len, struct pgk_buf *out)
{
	char key[CHUNK_KEY_MAX];

	chunk_key(id, key, sizeof(key));
	return obj_seal_delta(&r->keys, key, r->compress_level, bases, plain, len, out);
}

/*
 * Before a delta is stored, deltas/XX/ID-BASE records that it needs BASE,
 * one record per base: expire keeps a base as long as any chunk that needs
 * it, whichever backup, copy or race stored that chunk.  Written first, so
 * a delta never exists without its records; a record without its chunk is
 * removed by the next expire.
 */
static int record_delta(struct repo *r, const char *id, const struct obj_bases *bs)
{
	char key[DELTA_KEY_MAX];
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < bs->n; i++) {
		delta_key(id, bs->id[i], key, sizeof(key));
		ret = repo_put(r, key, OBJ_META, "", 0, PGKEEP_PUT_IF_ABSENT);
		if (ret == PGKEEP_EEXISTS)
			ret = 0;
	}
	return ret;
}

int chunk_store(struct repo *r, const char *id, const struct obj_bases *bases,
		const void *sealed, size_t len)
{
	char key[CHUNK_KEY_MAX];
	int ret;

	if (bases) {
		ret = record_delta(r, id, bases);
		if (ret)
			return ret;
	}
	chunk_key(id, key, sizeof(key));
	ret = store_put(r->store, key, sealed, len, PGKEEP_PUT_IF_ABSENT);
	/* Another writer stored the same content meanwhile: same plaintext. */
	if (ret == PGKEEP_EEXISTS)
		return 1;
	return ret;
}

int chunk_fetch(struct repo *r, const char *id, const char *role, struct pgk_buf *obj,
		char key[CHUNK_KEY_MAX])
{
	int ret;

	chunk_key(id, key, CHUNK_KEY_MAX);
	buf_reset(obj);
	ret = obj_fetch(r->store, key, OBJ_CHUNK, obj);
	if (ret == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_ECORRUPT, "%s %s missing (%s)", role, id, key);
	return ret;
}

int chunk_read_whole(struct repo *r, const char *id, struct pgk_buf *obj, struct pgk_buf *plain)
{
	char key[CHUNK_KEY_MAX];
	int ret = chunk_fetch(r, id, "base chunk", obj, key);

	return ret ? ret : obj_open(&r->keys, OBJ_CHUNK, key, obj->data, obj->len, plain);
}

/* A delta's base, for obj_open_chunk. */
struct base_reader {
	struct repo *r;
	struct pgk_buf obj;
};

static int base_from_store(void *arg, const char *base_id, struct pgk_buf *plain)
{
	struct base_reader *br = arg;

	return chunk_read_whole(br->r, base_id, &br->obj, plain);
}

int chunk_read(struct repo *r, const char *id, uint32_t size, struct pgk_buf *obj,
	       struct pgk_buf *plain)
{
	struct base_reader br = { r, PGK_BUF_INIT };
	char key[CHUNK_KEY_MAX], got[65];
	int ret;

	ret = chunk_fetch(r, id, "chunk", obj, key);
	if (ret)
		return ret;
	buf_reset(plain);
	ret = obj_open_chunk(&r->keys, key, obj->data, obj->len, plain, base_from_store, &br);
	buf_free(&br.obj);
	if (ret)
		return ret;
	if (plain->len != size)
		return pgk_error(PGKEEP_ECORRUPT,
				 "chunk %s holds %zu bytes, the manifest says %u (%s)", id,
				 plain->len, (unsigned)size, key);
	/* Proves the chunk, and for a delta its base too. */
	keys_chunk_id(&r->keys, plain->data, plain->len, got);
	if (strcmp(got, id) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "chunk %s does not match its id (%s)", id, key);
	return 0;
}

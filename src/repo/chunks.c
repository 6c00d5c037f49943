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

/*
 * Fetch chunk id's object into obj (reset first), its key into key.  A
 * chunk that should be there and is not means a damaged repository;
 * `role` says which ("chunk", "base chunk").
 */
static int chunk_fetch(struct repo *r, const char *id, const char *role, struct pgk_buf *obj,
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

/* Read whole chunk id (never a delta) into plain, appended; obj is scratch. */
static int chunk_read_whole(struct repo *r, const char *id, struct pgk_buf *obj, struct pgk_buf *plain)
{
	char key[CHUNK_KEY_MAX];
	int ret = chunk_fetch(r, id, "base chunk", obj, key);

	return ret ? ret : obj_open(&r->keys, OBJ_CHUNK, key, obj->data, obj->len, plain);
}

static bool has_base(const struct obj_bases *bs, const char *id)
{
	size_t i;

	for (i = 0; i < bs->n; i++)
		if (strcmp(bs->id[i], id) == 0)
			return true;
	return false;
}

/*
 * Append whole chunk id, fetched into obj, to bs; 1 when it would take the
 * bases past their limit (it is left out), else 0 or an error.
 */
static int append_base(struct repo *r, struct obj_bases *bs, const char *id,
		       const struct pgk_buf *obj, const char *key, uint64_t *stored)
{
	size_t before = bs->plain.len;
	int ret;

	ret = obj_open(&r->keys, OBJ_CHUNK, key, obj->data, obj->len, &bs->plain);
	if (ret)
		return ret;
	if (bs->plain.len > CHUNK_BASES_BYTES_MAX && bs->n > 0) {
		secure_zero(bs->plain.data + before, bs->plain.len - before);
		bs->plain.len = before;
		return 1;
	}
	memcpy(bs->id[bs->n++], id, 65);
	*stored += obj->len;
	return 0;
}

int chunk_add_bases(struct repo *r, const char *id, struct obj_bases *bs, struct pgk_buf *cand,
		    struct pgk_buf *obj, uint64_t *stored)
{
	struct obj_bases own;
	char key[CHUNK_KEY_MAX];
	size_t i;
	int ret;

	if (has_base(bs, id))
		return 0;
	ret = chunk_fetch(r, id, "base chunk", cand, key);
	if (ret)
		return ret;
	/* A whole chunk is its own base: open what was just fetched. */
	if (!obj_is_delta(cand->data, cand->len)) {
		ret = append_base(r, bs, id, cand, key, stored);
		return ret < 0 ? ret : 0;
	}
	ret = obj_chunk_bases(&r->keys, key, cand->data, cand->len, &own);
	for (i = 0; ret == 0 && i < own.n && bs->n < OBJ_DELTA_MAX_BASES; i++) {
		if (has_base(bs, own.id[i]))
			continue;
		ret = chunk_fetch(r, own.id[i], "base chunk", obj, key);
		if (ret == 0)
			ret = append_base(r, bs, own.id[i], obj, key, stored);
	}
	return ret < 0 ? ret : 0;
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

/*
 * List objects: a stream's chunk list stored in bounded pieces, written as
 * a backup goes and read back one at a time; and the sweeping of those a
 * finished backup no longer needs or an interrupted one left behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/layout.h"
#include "repo/lists.h"

#define LIST_MAGIC "PGKLIST\0"
#define LIST_VERSION 1
#define LIST_FLAG_KNOWN 0x01

uint32_t list_chunks_cap = LIST_CHUNKS_MAX;

void list_key(const char *set, size_t stream, size_t seq, char *key, size_t keylen)
{
	layout_list_key(set, stream, seq, key, keylen);
}

void list_set_new(char out[MANIFEST_LIST_SET_LEN + 1])
{
	uint8_t raw[MANIFEST_LIST_SET_LEN / 2];
	struct timespec ts;
	size_t i;

	/* Only uniqueness matters: fall back to the clock if the RNG fails. */
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)((ts.tv_nsec >> (i % 4 * 8)) ^ (ts.tv_sec >> (i % 8)) ^
					   (i * 131) ^ (uintptr_t)out);
	}
	hex_encode(raw, sizeof(raw), out);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		memset(md, 0, sizeof(md));	/* never matches a recorded digest */
	hex_encode(md, sizeof(md), out);
}

/* ---- writing ---- */

void list_out_init(struct list_out *lo, struct repo *r, struct manifest_stream *s)
{
	memset(lo, 0, sizeof(*lo));
	lo->r = r;
	lo->s = s;
	free(s->chunks);
	s->chunks = NULL;
	s->cap = 0;
	s->nchunks = 0;
	s->max_chunk = 0;
	free(s->lists);
	s->lists = NULL;
	s->nlists = 0;
	s->listed = true;
	if (!s->list_set[0])
		list_set_new(s->list_set);
}

bool list_out_full(const struct list_out *lo)
{
	uint32_t cap = list_chunks_cap;

	if (cap < 1 || cap > LIST_CHUNKS_MAX)
		cap = LIST_CHUNKS_MAX;
	return lo->n >= cap;
}

void list_out_add(struct list_out *lo, const struct manifest_chunk *c)
{
	uint8_t e[LIST_ENTRY_LEN];

	if (lo->n == 0) {
		buf_reset(&lo->plain);
		buf_append(&lo->plain, LIST_MAGIC, 8);
		put_le32(e, LIST_VERSION);
		put_le32(e + 4, 0);
		buf_append(&lo->plain, e, 8);
	}
	if (!hex_decode(c->id, 32, e))
		memset(e, 0, 32);	/* ids come from keys_chunk_id or a checked list */
	put_le32(e + 32, c->size);
	put_le32(e + 36, c->stored);
	put_le64(e + 40, c->known ? c->anchor : 0);
	e[48] = c->known ? LIST_FLAG_KNOWN : 0;
	buf_append(&lo->plain, e, sizeof(e));
	lo->n++;
	lo->s->nchunks++;
	if (c->size > lo->s->max_chunk)
		lo->s->max_chunk = c->size;
}

int list_out_flush(struct list_out *lo)
{
	struct manifest_stream *s = lo->s;
	struct manifest_list_ref *ref;
	char key[LIST_KEY_MAX];
	int ret;

	if (lo->n == 0)
		return 0;
	put_le32(lo->plain.data + 12, lo->n);
	list_key(s->list_set, s->index, s->nlists, key, sizeof(key));
	ret = repo_put(lo->r, key, OBJ_LIST, lo->plain.data, lo->plain.len, PGKEEP_PUT_IF_ABSENT);
	if (ret)
		return pgk_error_wrap(ret, "list object %s", key);
	s->lists = xrealloc(s->lists, (s->nlists + 1) * sizeof(*s->lists));
	ref = &s->lists[s->nlists++];
	ref->count = lo->n;
	sha256_hex(lo->plain.data, lo->plain.len, ref->sha256);
	lo->n = 0;
	buf_reset(&lo->plain);
	return 0;
}

int list_out_append(struct list_out *lo, const struct manifest_chunk *c)
{
	int ret;

	if (list_out_full(lo)) {
		ret = list_out_flush(lo);
		if (ret)
			return ret;
	}
	list_out_add(lo, c);
	return 0;
}

void list_out_free(struct list_out *lo)
{
	buf_free(&lo->plain);
}

/* ---- reading ---- */

static int list_bad(const struct manifest_stream *s, const char *key, const char *why)
{
	return pgk_error(PGKEEP_ECORRUPT, "backup %s: stream %s: list object %s %s",
			 s->backup[0] ? s->backup : "(new)", s->name, key, why);
}

int list_fetch(struct repo *r, const struct manifest_stream *s, size_t seq,
	       struct pgk_buf *plain, uint32_t *n)
{
	char key[LIST_KEY_MAX];
	int ret;

	*n = 0;
	if (seq >= s->nlists)
		return pgk_error(PGKEEP_EINVAL, "backup %s: stream %s has no list %zu", s->backup,
				 s->name, seq);
	list_key(s->list_set, s->index, seq, key, sizeof(key));
	buf_reset(plain);
	ret = repo_get(r, key, OBJ_LIST, plain);
	if (ret == PGKEEP_ENOTFOUND)
		return list_bad(s, key, "is missing");
	if (ret)
		return pgk_error_wrap(ret, "backup %s: stream %s", s->backup, s->name);
	return list_check(s, seq, plain, n);
}

int list_check(const struct manifest_stream *s, size_t seq, const struct pgk_buf *plain,
	       uint32_t *n)
{
	const struct manifest_list_ref *ref = &s->lists[seq];
	char key[LIST_KEY_MAX], sha[65];

	*n = 0;
	list_key(s->list_set, s->index, seq, key, sizeof(key));
	/* The digest first: it alone tells this list from any other. */
	sha256_hex(plain->data, plain->len, sha);
	if (strcmp(sha, ref->sha256) != 0)
		return list_bad(s, key, "does not match the manifest (checksum)");
	if (plain->len < LIST_HEADER_LEN || memcmp(plain->data, LIST_MAGIC, 8) != 0 ||
	    get_le32(plain->data + 8) != LIST_VERSION)
		return list_bad(s, key, "has a bad header");
	*n = get_le32(plain->data + 12);
	if (*n != ref->count || *n > LIST_CHUNKS_MAX ||
	    plain->len != LIST_HEADER_LEN + (size_t)*n * LIST_ENTRY_LEN) {
		*n = 0;
		return list_bad(s, key, "does not hold the entries the manifest records");
	}
	return 0;
}

int list_entry(const struct manifest_stream *s, size_t seq, const struct pgk_buf *plain,
	       uint32_t i, struct manifest_chunk *out)
{
	const uint8_t *e = plain->data + LIST_HEADER_LEN + (size_t)i * LIST_ENTRY_LEN;
	char key[LIST_KEY_MAX];

	memset(out, 0, sizeof(*out));
	hex_encode(e, 32, out->id);
	out->size = get_le32(e + 32);
	out->stored = get_le32(e + 36);
	out->anchor = get_le64(e + 40);
	out->known = e[48] & LIST_FLAG_KNOWN;
	if (out->size == 0 || out->size > s->max_chunk || (e[48] & ~LIST_FLAG_KNOWN) ||
	    (!out->known && out->anchor)) {
		list_key(s->list_set, s->index, seq, key, sizeof(key));
		return list_bad(s, key, "has an impossible entry");
	}
	return 0;
}

/* ---- sweeping ---- */

struct list_obj {
	char *key;
	struct pgkeep_stat st;
};

struct list_objs {
	struct list_obj *o;
	size_t n, cap;
};

static int collect_list(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct list_objs *l = payload;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->o = xrealloc(l->o, l->cap * sizeof(*l->o));
	}
	l->o[l->n].key = xstrdup(key);
	l->o[l->n].st = *st;
	l->n++;
	return 0;
}

static void list_objs_free(struct list_objs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->o[i].key);
	free(l->o);
}

/*
 * The backup in list whose set the key is under: its index, or n when none
 * is.  A key that is not SET/... is nobody's too.
 */
static size_t owner(const char *key, const struct manifest *list, size_t n)
{
	const char *set = layout_list_key_set(key);
	size_t i;

	if (!set)
		return n;
	for (i = 0; i < n; i++)
		if (list[i].list_set[0] && memcmp(list[i].list_set, set, MANIFEST_LIST_SET_LEN) == 0)
			return i;
	return n;
}

int lists_sweep(struct repo *r, const struct manifest *list, size_t n, const bool *gone,
		int64_t grace, bool dry_run, struct gc_result *res)
{
	struct list_objs l = { 0 };
	time_t now = time(NULL);
	int64_t until;
	size_t i, k;
	int ret;

	ret = store_list(r->store, LAYOUT_LISTS_PREFIX, collect_list, &l);
	for (i = 0; ret == 0 && i < l.n; i++) {
		const struct list_obj *o = &l.o[i];

		k = owner(o->key, list, n);
		if (k < n && !(gone && gone[k]))
			continue;
		/* Nobody's: maybe a backup that is still writing. */
		if (k == n && grace > 0 && o->st.mtime > 0 && now - o->st.mtime < grace) {
			res->young++;
			continue;
		}
		if (gc_locked_until(r, o->key, &until) && until > now) {
			res->locked++;
			continue;
		}
		res->removed++;
		res->bytes += o->st.size;
		if (dry_run)
			continue;
		ret = store_remove(r->store, o->key);
		if (ret == PGKEEP_ENOTFOUND)
			ret = 0;
	}
	list_objs_free(&l);
	if (ret == 0 && res->removed)
		pgk_log_info("%s %zu chunk list object(s) of removed or unfinished backups",
			     dry_run ? "would remove" : "removed", res->removed);
	return ret;
}

int lists_unreferenced(struct repo *r, const struct manifest *list, size_t n, size_t *count)
{
	struct list_objs l = { 0 };
	size_t i;
	int ret;

	*count = 0;
	ret = store_list(r->store, LAYOUT_LISTS_PREFIX, collect_list, &l);
	for (i = 0; ret == 0 && i < l.n; i++)
		if (owner(l.o[i].key, list, n) == n)
			(*count)++;
	list_objs_free(&l);
	return ret;
}

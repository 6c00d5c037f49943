/*
 * copy's sets: chunk ids (each optionally mapped to another id) in an open
 * addressing table that may be capped, and sorted lists of store keys.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/copy.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"

/* The ids are keyed hashes: their first bytes are already uniform. */
static size_t idmap_pos(const struct idmap *m, const uint8_t key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & (m->cap - 1);
}

struct idmap_slot *idmap_find(const struct idmap *m, const uint8_t key[32])
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = idmap_pos(m, key); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		if (memcmp(m->slots[i].key, key, 32) == 0)
			return &m->slots[i];
	return NULL;
}

static void idmap_grow(struct idmap *m)
{
	struct idmap old = *m;
	size_t i;

	m->cap = old.cap ? old.cap * 2 : 1024;
	m->slots = xzalloc(m->cap * sizeof(*m->slots));
	m->n = 0;
	m->max = 0;	/* the old entries all fit */
	for (i = 0; i < old.cap; i++)
		if (old.slots[i].used)
			idmap_put(m, old.slots[i].key, old.slots[i].val);
	m->max = old.max;
	free(old.slots);
}

/* Insert or overwrite; val may be NULL for a plain set.  A full map only overwrites. */
void idmap_put(struct idmap *m, const uint8_t key[32], const uint8_t *val)
{
	struct idmap_slot *s;
	size_t i;

	if (m->max && m->n >= m->max) {
		s = idmap_find(m, key);
		if (s && val)
			memcpy(s->val, val, 32);
		m->full = m->full || !s;
		return;
	}
	if ((m->n + 1) * 10 > m->cap * 7)
		idmap_grow(m);
	for (i = idmap_pos(m, key); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		if (memcmp(m->slots[i].key, key, 32) == 0)
			break;
	s = &m->slots[i];
	if (!s->used) {
		s->used = true;
		memcpy(s->key, key, 32);
		m->n++;
	}
	if (val)
		memcpy(s->val, val, 32);
}

void idmap_free(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
	m->full = false;
}

/* ---- sorted key lists (WAL and manifests) ---- */

int keylist_add(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct keylist *l = payload;

	l->keys = xrealloc(l->keys, (l->n + 1) * sizeof(*l->keys));
	l->sizes = xrealloc(l->sizes, (l->n + 1) * sizeof(*l->sizes));
	l->keys[l->n] = xstrdup(key);
	l->sizes[l->n++] = st ? st->size : 0;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool keylist_has(const struct keylist *l, const char *key)
{
	return l->n && bsearch(&key, l->keys, l->n, sizeof(*l->keys), cmp_str) != NULL;
}

/* qsort must not see the NULL array of an empty listing. */
void keylist_sort(struct keylist *l)
{
	if (l->n > 1)
		qsort(l->keys, l->n, sizeof(*l->keys), cmp_str);
}

void keylist_free(struct keylist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

/*
 * In-memory storage plugin for unit tests (see memstore.h): a chained hash
 * table under one mutex, with fault injection for put and helpers to damage
 * or drop objects behind the agent's back.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "memstore.h"

#define NBUCKETS 1024

struct mem_obj {
	struct mem_obj *next;
	char *key;
	uint8_t *data;
	size_t len;
	int64_t mtime;
};

struct memstore {
	pthread_mutex_t mu;
	struct mem_obj *bucket[NBUCKETS];
	uint64_t puts;
	unsigned fail_countdown;	/* 0 = off; 1 = the next commit fails */
	bool failing;
	unsigned delay_usec;
	unsigned open_puts, max_open_puts;
};

struct mem_put {
	struct memstore *ms;
	char *key;
	unsigned flags;
	struct pgk_buf body;
};

static unsigned hash_key(const char *key)
{
	unsigned h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h % NBUCKETS;
}

/* Caller holds ms->mu. */
static struct mem_obj **find_slot(struct memstore *ms, const char *key)
{
	struct mem_obj **pp = &ms->bucket[hash_key(key)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void obj_free(struct mem_obj *o)
{
	free(o->key);
	free(o->data);
	free(o);
}

static int mem_open(void **handle, const struct pgkeep_option *opts, size_t nopts, char *err)
{
	struct memstore *ms;

	if (nopts)
		return pgkeep_fail(err, PGKEEP_EINVAL, "memory store: unknown option %s",
				   opts[0].key);
	ms = xzalloc(sizeof(*ms));
	pthread_mutex_init(&ms->mu, NULL);
	*handle = ms;
	return PGKEEP_OK;
}

static void mem_close(void *handle)
{
	struct memstore *ms = handle;
	struct mem_obj *o, *next;
	size_t i;

	for (i = 0; i < NBUCKETS; i++) {
		for (o = ms->bucket[i]; o; o = next) {
			next = o->next;
			obj_free(o);
		}
	}
	pthread_mutex_destroy(&ms->mu);
	free(ms);
}

static int mem_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
			 void **put, char *err)
{
	struct memstore *ms = handle;
	struct mem_put *p = xzalloc(sizeof(*p));

	(void)err;
	/* Growing a large body by doubling would time the allocator, not pgkeep. */
	if (size_hint != UINT64_MAX && size_hint <= (64u << 20))
		buf_reserve(&p->body, (size_t)size_hint);
	p->ms = ms;
	p->key = xstrdup(key);
	p->flags = flags;
	pthread_mutex_lock(&ms->mu);
	if (++ms->open_puts > ms->max_open_puts)
		ms->max_open_puts = ms->open_puts;
	pthread_mutex_unlock(&ms->mu);
	*put = p;
	return PGKEEP_OK;
}

static int mem_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct mem_put *p = put;

	(void)err;
	buf_append(&p->body, buf, len);
	return PGKEEP_OK;
}

static void put_free(struct mem_put *p)
{
	pthread_mutex_lock(&p->ms->mu);
	p->ms->open_puts--;
	pthread_mutex_unlock(&p->ms->mu);
	free(p->key);
	buf_free(&p->body);
	free(p);
}

/* Caller holds ms->mu. */
static bool fault_now(struct memstore *ms)
{
	if (ms->failing)
		return true;
	if (ms->fail_countdown && --ms->fail_countdown == 0)
		ms->failing = true;
	return ms->failing;
}

static int mem_put_commit(void *put, char *err)
{
	struct mem_put *p = put;
	struct memstore *ms = p->ms;
	struct mem_obj **slot, *o;
	int ret = PGKEEP_OK;

	if (ms->delay_usec)
		usleep(ms->delay_usec);
	pthread_mutex_lock(&ms->mu);
	slot = find_slot(ms, p->key);
	if (fault_now(ms)) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "memory store: injected failure writing %s",
				  p->key);
	} else if (*slot && (p->flags & PGKEEP_PUT_IF_ABSENT)) {
		ret = pgkeep_fail(err, PGKEEP_EEXISTS, "memory store: %s exists", p->key);
	} else {
		o = *slot;
		if (!o) {
			o = xzalloc(sizeof(*o));
			o->key = xstrdup(p->key);
			*slot = o;
		}
		free(o->data);
		o->len = p->body.len;
		o->data = o->len ? (uint8_t *)buf_detach(&p->body) : NULL;
		o->mtime = time(NULL);
		ms->puts++;
	}
	pthread_mutex_unlock(&ms->mu);
	put_free(p);
	return ret;
}

static void mem_put_abort(void *put)
{
	put_free(put);
}

static int mem_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		   pgkeep_sink_fn sink, void *payload, char *err)
{
	struct memstore *ms = handle;
	struct mem_obj *o;
	uint8_t *copy = NULL;
	size_t n = 0;
	int ret = PGKEEP_OK;

	/* Copy under the lock, deliver outside it: the sink may take its time. */
	pthread_mutex_lock(&ms->mu);
	o = *find_slot(ms, key);
	if (!o) {
		ret = pgkeep_fail(err, PGKEEP_ENOTFOUND, "memory store: %s not found", key);
	} else if (offset <= o->len) {
		n = o->len - offset;
		if (length < n)
			n = length;
		copy = xmalloc(n);
		memcpy(copy, o->data + offset, n);
	}
	pthread_mutex_unlock(&ms->mu);
	if (ret == PGKEEP_OK && n)
		ret = sink(payload, copy, n);
	free(copy);
	return ret;
}

static int mem_stat(void *handle, const char *key, struct pgkeep_stat *st, char *err)
{
	struct memstore *ms = handle;
	struct mem_obj *o;
	int ret = PGKEEP_OK;

	pthread_mutex_lock(&ms->mu);
	o = *find_slot(ms, key);
	if (o) {
		st->size = o->len;
		st->mtime = o->mtime;
	} else {
		ret = pgkeep_fail(err, PGKEEP_ENOTFOUND, "memory store: %s not found", key);
	}
	pthread_mutex_unlock(&ms->mu);
	return ret;
}

struct listed {
	char *key;
	struct pgkeep_stat st;
};

static int mem_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
		    char *err)
{
	struct memstore *ms = handle;
	struct listed *items = NULL;
	size_t n = 0, cap = 0, i, plen = strlen(prefix);
	struct mem_obj *o;
	int ret = PGKEEP_OK;

	(void)err;
	pthread_mutex_lock(&ms->mu);
	for (i = 0; i < NBUCKETS; i++) {
		for (o = ms->bucket[i]; o; o = o->next) {
			if (strncmp(o->key, prefix, plen) != 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				items = xrealloc(items, cap * sizeof(*items));
			}
			items[n].key = xstrdup(o->key);
			items[n].st.size = o->len;
			items[n].st.mtime = o->mtime;
			n++;
		}
	}
	pthread_mutex_unlock(&ms->mu);
	for (i = 0; i < n && ret == PGKEEP_OK; i++)
		ret = cb(payload, items[i].key, &items[i].st);
	for (i = 0; i < n; i++)
		free(items[i].key);
	free(items);
	return ret;
}

static int delete_key(struct memstore *ms, const char *key)
{
	struct mem_obj **slot, *o;
	int ret = -1;

	pthread_mutex_lock(&ms->mu);
	slot = find_slot(ms, key);
	o = *slot;
	if (o) {
		*slot = o->next;
		obj_free(o);
		ret = 0;
	}
	pthread_mutex_unlock(&ms->mu);
	return ret;
}

static int mem_remove(void *handle, const char *key, char *err)
{
	(void)err;
	delete_key(handle, key);
	return PGKEEP_OK;
}

static const struct pgkeep_storage_ops mem_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "memory",
	.features = PGKEEP_FEAT_IF_ABSENT_ATOMIC | PGKEEP_FEAT_RANGE_GET,
	.open = mem_open,
	.close = mem_close,
	.put_begin = mem_put_begin,
	.put_write = mem_put_write,
	.put_commit = mem_put_commit,
	.put_abort = mem_put_abort,
	.get = mem_get,
	.stat = mem_stat,
	.list = mem_list,
	.remove = mem_remove,
};

static struct memstore *ms_of(struct pgk_store *st)
{
	return st->handle;
}

struct pgk_store *memstore_open(void)
{
	struct pgk_store *st = xzalloc(sizeof(*st));

	st->ops = mem_ops;
	mem_open(&st->handle, NULL, 0, NULL);
	st->path = xstrdup("memory");
	st->repo_name = xstrdup("memory");
	return st;
}

void memstore_close(struct pgk_store *st)
{
	if (!st)
		return;
	mem_close(st->handle);
	free(st->path);
	free(st->repo_name);
	free(st);
}

size_t memstore_count(struct pgk_store *st, const char *prefix)
{
	struct memstore *ms = ms_of(st);
	struct mem_obj *o;
	size_t i, n = 0;

	pthread_mutex_lock(&ms->mu);
	for (i = 0; i < NBUCKETS; i++)
		for (o = ms->bucket[i]; o; o = o->next)
			n += strncmp(o->key, prefix, strlen(prefix)) == 0;
	pthread_mutex_unlock(&ms->mu);
	return n;
}

uint64_t memstore_bytes(struct pgk_store *st, const char *prefix)
{
	struct memstore *ms = ms_of(st);
	struct mem_obj *o;
	uint64_t total = 0;
	size_t i;

	pthread_mutex_lock(&ms->mu);
	for (i = 0; i < NBUCKETS; i++)
		for (o = ms->bucket[i]; o; o = o->next)
			if (strncmp(o->key, prefix, strlen(prefix)) == 0)
				total += o->len;
	pthread_mutex_unlock(&ms->mu);
	return total;
}

uint64_t memstore_puts(struct pgk_store *st)
{
	struct memstore *ms = ms_of(st);
	uint64_t n;

	pthread_mutex_lock(&ms->mu);
	n = ms->puts;
	pthread_mutex_unlock(&ms->mu);
	return n;
}

int memstore_corrupt(struct pgk_store *st, const char *key, size_t offset)
{
	struct memstore *ms = ms_of(st);
	struct mem_obj *o;
	int ret = -1;

	pthread_mutex_lock(&ms->mu);
	o = *find_slot(ms, key);
	if (o && offset < o->len) {
		o->data[offset] ^= 0x5a;
		ret = 0;
	}
	pthread_mutex_unlock(&ms->mu);
	return ret;
}

int memstore_delete(struct pgk_store *st, const char *key)
{
	return delete_key(ms_of(st), key);
}

int memstore_set_mtime(struct pgk_store *st, const char *key, int64_t mtime)
{
	struct memstore *ms = ms_of(st);
	struct mem_obj *o;

	pthread_mutex_lock(&ms->mu);
	o = *find_slot(ms, key);
	if (o)
		o->mtime = mtime;
	pthread_mutex_unlock(&ms->mu);
	return o ? 0 : -1;
}

void memstore_fail_put(struct pgk_store *st, unsigned nth)
{
	struct memstore *ms = ms_of(st);

	pthread_mutex_lock(&ms->mu);
	ms->fail_countdown = nth;
	ms->failing = false;
	pthread_mutex_unlock(&ms->mu);
}

void memstore_set_put_delay(struct pgk_store *st, unsigned usec)
{
	ms_of(st)->delay_usec = usec;
}

unsigned memstore_max_concurrent_puts(struct pgk_store *st)
{
	struct memstore *ms = ms_of(st);
	unsigned n;

	pthread_mutex_lock(&ms->mu);
	n = ms->max_open_puts;
	pthread_mutex_unlock(&ms->mu);
	return n;
}

void memstore_reset_concurrent_puts(struct pgk_store *st)
{
	struct memstore *ms = ms_of(st);

	pthread_mutex_lock(&ms->mu);
	ms->max_open_puts = ms->open_puts;
	pthread_mutex_unlock(&ms->mu);
}

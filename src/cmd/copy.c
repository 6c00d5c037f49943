/*
 * pgkeep copy --from A --to B [ID...|--missing]: copy backups between two
 * repositories of one cluster, sending only the chunks B lacks, together
 * with the WAL B needs to restore them to any later point; the manifest last.
 *
 * Every object is opened with A's keys and sealed again with B's.  Chunk ids
 * are keyed hashes under each repository's own chunk-id key, so a chunk's id
 * in B is only known from its plaintext.  To avoid fetching chunks B already
 * holds, the manifests of backups present in both repositories are read in
 * pairs: same backup, same chunk boundaries, so position k of a stream maps
 * A's id to B's.  A chunk not known that way is fetched, verified and named
 * with B's key, then stored unless B has it.  Chunk lists are read and
 * written a batch at a time, B's in list objects of its own.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/lock.h"
#include "repo/manifest.h"

#define COPY_DEFAULT_JOBS 4
#define COPY_MAX_JOBS 32
/*
 * Chunks of a stream handled together: read from A's chunk list, copied by
 * the workers, then added to B's list in order.  Bounds the memory a copy
 * needs, whatever the size of the backup.
 */
#define COPY_BATCH 1024
/*
 * Two caches bound what a copy holds, whatever the size of the repositories:
 * the chunk ids B holds, from one listing of B, and A's ids mapped to B's,
 * learnt from backups both hold, the newest first.  Each takes at most this
 * many ids (about 8 MiB).  Past that a copy still works, more slowly: a chunk
 * the map does not name is fetched from A and named with B's key, and once
 * B's listing has not fitted, whether B holds a chunk is asked of B, chunk by
 * chunk.  The environment variable PGKEEP_TEST_COPY_IDS sets a smaller cap,
 * so that tests reach those paths with a small repository.
 */
#define COPY_CACHE_IDS ((size_t)64 * 1024)
/* Where a repository records its cluster (see repo/repo.h). */
#define COPY_SYSID_KEY "meta/sysid"

/* ---- a set of chunk ids, optionally mapping each to another id ---- */

struct idmap_slot {
	uint8_t key[32];
	uint8_t val[32];
	bool used;
};

/*
 * max, when not 0, bounds n: a full map takes no new ids (it is a cache, and
 * whoever uses it must do without what it lacks); full says one was turned
 * away.
 */
struct idmap {
	struct idmap_slot *slots;
	size_t cap, n;		/* cap: a power of two */
	size_t max;
	bool full;
};

/* The ids are keyed hashes: their first bytes are already uniform. */
static size_t idmap_pos(const struct idmap *m, const uint8_t key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & (m->cap - 1);
}

static struct idmap_slot *idmap_find(const struct idmap *m, const uint8_t key[32])
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = idmap_pos(m, key); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		if (memcmp(m->slots[i].key, key, 32) == 0)
			return &m->slots[i];
	return NULL;
}

static void idmap_put(struct idmap *m, const uint8_t key[32], const uint8_t *val);

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
static void idmap_put(struct idmap *m, const uint8_t key[32], const uint8_t *val)
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

static void idmap_free(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
	m->full = false;
}

/* ---- sorted key lists (WAL and manifests) ---- */

struct keylist {
	char **keys;
	uint64_t *sizes;
	size_t n;
};

static int add_key(void *payload, const char *key, const struct pgkeep_stat *st)
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

static bool keylist_has(const struct keylist *l, const char *key)
{
	return l->n && bsearch(&key, l->keys, l->n, sizeof(*l->keys), cmp_str) != NULL;
}

/* qsort must not see the NULL array of an empty listing. */
static void keylist_sort(struct keylist *l)
{
	if (l->n > 1)
		qsort(l->keys, l->n, sizeof(*l->keys), cmp_str);
}

static void keylist_free(struct keylist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

/* ---- the copy ---- */

struct copy_stats {
	size_t chunks_sent, chunks_present;
	uint64_t bytes_sent;		/* stored bytes written to B */
	size_t wal_sent, wal_present;
	uint64_t wal_bytes;
};

struct copy {
	struct repo *from, *to;
	int jobs;
	pthread_mutex_t mu;		/* guards present, map and stats */
	struct idmap present;		/* chunk ids B holds (B's ids) */
	bool present_partial;		/* B holds more than present could take */
	struct idmap map;		/* A's chunk id -> B's */
	struct copy_stats st;		/* for the backup being copied */
	struct copy_stats total;
	struct keylist wal_to;		/* wal/ keys B holds, sorted */
	bool wal_done;
};

/* Run fn(arg, i, bufs) for i in [0, n) on up to c->jobs threads; the first
 * failure stops the others and is returned with its message. */
struct par_bufs {
	struct pgk_buf obj, plain, sealed;
};

typedef int (*par_fn)(struct copy *c, void *arg, size_t i, struct par_bufs *b);

struct par {
	struct copy *c;
	void *arg;
	par_fn fn;
	size_t n, next;
	int err;
	char errmsg[PGKEEP_ERRLEN];
	pthread_mutex_t mu;
};

static void *par_worker(void *p_)
{
	struct par *p = p_;
	struct par_bufs b = { PGK_BUF_INIT, PGK_BUF_INIT, PGK_BUF_INIT };
	size_t i;
	int ret;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->err || p->next >= p->n) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		ret = p->fn(p->c, p->arg, i, &b);
		if (ret) {
			pthread_mutex_lock(&p->mu);
			if (!p->err) {
				p->err = ret;
				snprintf(p->errmsg, sizeof(p->errmsg), "%s", pgk_errmsg());
			}
			pthread_mutex_unlock(&p->mu);
		}
	}
	buf_free(&b.obj);
	buf_free_secure(&b.plain);
	buf_free(&b.sealed);
	return NULL;
}

static int par_run(struct copy *c, size_t n, par_fn fn, void *arg)
{
	struct par p = { .c = c, .arg = arg, .fn = fn, .n = n };
	pthread_t threads[COPY_MAX_JOBS];
	int i, nthreads = 0, ret = 0;

	pthread_mutex_init(&p.mu, NULL);
	for (i = 0; i < c->jobs && (size_t)i < n; i++) {
		ret = pthread_create(&threads[i], NULL, par_worker, &p);
		if (ret) {
			pthread_mutex_lock(&p.mu);
			p.err = pgk_error(PGKEEP_ENOMEM, "cannot start a copy thread: %s", strerror(ret));
			snprintf(p.errmsg, sizeof(p.errmsg), "%s", pgk_errmsg());
			pthread_mutex_unlock(&p.mu);
			break;
		}
		nthreads++;
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&p.mu);
	if (p.err)
		return pgk_error(p.err, "%s", p.errmsg);
	return 0;
}

/* Whether B holds chunk bid: from the listing, or asked of B when that did not fit. */
static int b_holds(struct copy *c, const uint8_t bid[32], bool *have)
{
	char hex[65], key[CHUNK_KEY_MAX];
	struct pgkeep_stat st;
	int ret;

	pthread_mutex_lock(&c->mu);
	*have = idmap_find(&c->present, bid) != NULL;
	pthread_mutex_unlock(&c->mu);
	if (*have || !c->present_partial)
		return 0;
	hex_encode(bid, 32, hex);
	chunk_key(hex, key, sizeof(key));
	ret = store_stat(c->to->store, key, &st);
	if (ret == PGKEEP_ENOTFOUND)
		return 0;
	if (ret)
		return ret;
	*have = true;
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->present, bid, NULL);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/*
 * Fetch A's chunk and prove it is the one A's manifest names.  B gets it
 * whole: A's delta bases need not exist in B.
 */
static int fetch_chunk(struct repo *r, const struct manifest_chunk *mc, struct par_bufs *b)
{
	int ret = chunk_read(r, mc->id, mc->size, &b->obj, &b->plain);

	return ret ? pgk_error_wrap(ret, "repository %s", r->name) : 0;
}

/*
 * The entry names B's chunk from now on.  A's anchor means nothing under
 * B's keys: B's next backup finds its predecessors by offset alone.
 */
static void name_in_b(struct manifest_chunk *mc, const uint8_t bid[32])
{
	hex_encode(bid, 32, mc->id);
	mc->known = false;
	mc->anchor = 0;
}

/*
 * One chunk of a stream: on return mc names B's chunk and `stored` counts
 * the bytes this copy wrote for it.
 */
static int copy_chunk(struct copy *c, void *arg, size_t i, struct par_bufs *b)
{
	struct manifest_chunk *mc = &((struct manifest_chunk *)arg)[i];
	uint8_t aid[32], bid[32];
	char bhex[65], key[CHUNK_KEY_MAX];
	struct idmap_slot *s;
	bool known, have;
	int ret;

	if (!hex_decode(mc->id, 32, aid))
		return pgk_error(PGKEEP_ECORRUPT, "repository %s: bad chunk id %s in a manifest",
				 c->from->name, mc->id);
	pthread_mutex_lock(&c->mu);
	s = idmap_find(&c->map, aid);
	known = s != NULL;
	if (known)
		memcpy(bid, s->val, 32);
	pthread_mutex_unlock(&c->mu);
	if (known) {
		ret = b_holds(c, bid, &have);
		if (ret)
			return ret;
		if (have) {
			pthread_mutex_lock(&c->mu);
			c->st.chunks_present++;
			pthread_mutex_unlock(&c->mu);
			goto out_named;
		}
	}

	ret = fetch_chunk(c->from, mc, b);
	if (ret)
		return ret;
	keys_chunk_id(&c->to->keys, b->plain.data, b->plain.len, bhex);
	hex_decode(bhex, 32, bid);
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->map, aid, bid);
	pthread_mutex_unlock(&c->mu);
	ret = b_holds(c, bid, &have);
	if (ret)
		return ret;

	mc->stored = 0;
	if (!have) {
		buf_reset(&b->sealed);
		chunk_key(bhex, key, sizeof(key));
		ret = obj_seal(&c->to->keys, OBJ_CHUNK, key, c->to->compress_level, b->plain.data,
			       b->plain.len, &b->sealed);
		if (ret)
			return ret;
		ret = store_put(c->to->store, key, b->sealed.data, b->sealed.len, PGKEEP_PUT_IF_ABSENT);
		if (ret && ret != PGKEEP_EEXISTS)
			return ret;
		have = ret == PGKEEP_EEXISTS;	/* another writer got there: same bytes */
		if (!have)
			mc->stored = (uint32_t)b->sealed.len;
	}
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->present, bid, NULL);
	if (have) {
		c->st.chunks_present++;
	} else {
		c->st.chunks_sent++;
		c->st.bytes_sent += mc->stored;
	}
	pthread_mutex_unlock(&c->mu);
	/* Recorded only once B holds it, so a later backup may skip the fetch. */
	name_in_b(mc, bid);
	return 0;
out_named:
	name_in_b(mc, bid);
	mc->stored = 0;
	return 0;
}

/* The chunk ids B holds, from one listing. */
static int present_add(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct idmap *m = payload;
	const char *slash = strrchr(key, '/');
	uint8_t id[32];

	(void)st;
	if (hex_decode(slash ? slash + 1 : key, 32, id))
		idmap_put(m, id, NULL);
	return 0;
}

/* Learn A id -> B id from one backup both repositories hold. */
static int learn_pair(struct copy *c, const char *id)
{
	struct manifest a = { 0 }, b = { 0 };
	size_t i, k;
	int ret;

	ret = manifest_load(c->from, id, &a);
	if (ret == 0)
		ret = manifest_load(c->to, id, &b);
	if (ret)
		goto out_free;
	if (a.nstreams != b.nstreams)
		goto out_free;
	for (i = 0; ret == 0 && i < a.nstreams; i++) {
		const struct manifest_stream *sa = &a.streams[i], *sb = &b.streams[i];
		const struct manifest_chunk *ca, *cb;
		struct manifest_cursor *xa = NULL, *xb = NULL;
		uint8_t ka[32], kb[32];
		int ra, rb;

		if (sa->nchunks != sb->nchunks || sa->sum_alg != sb->sum_alg || strcmp(sa->sum, sb->sum) != 0)
			continue;
		/* The two lists side by side, one entry of each in hand. */
		ret = manifest_stream_cursor_open(c->from, sa, &xa);
		if (ret == 0)
			ret = manifest_stream_cursor_open(c->to, sb, &xb);
		for (k = 0; ret == 0 && k < sa->nchunks; k++) {
			ra = manifest_cursor_next(xa, &ca);
			rb = ra == 1 ? manifest_cursor_next(xb, &cb) : ra;
			if (ra < 0 || rb < 0)
				ret = ra < 0 ? ra : rb;
			if (ra != 1 || rb != 1)
				break;
			if (ca->size == cb->size && hex_decode(ca->id, 32, ka) &&
			    hex_decode(cb->id, 32, kb))
				idmap_put(&c->map, ka, kb);
		}
		manifest_cursor_close(xa);
		manifest_cursor_close(xb);
	}
out_free:
	manifest_free(&a);
	manifest_free(&b);
	return ret;
}

/* ---- WAL ---- */

struct wal_job {
	char **keys;		/* wal/ keys to copy */
	size_t n;
};

/*
 * A WAL file is named by its segment, not by a key: it is sealed again for
 * B where it lies, still compressed as A stored it, so a copy holds one
 * stored segment per job and no 16 MiB of plaintext.
 */
static int copy_wal_file(struct copy *c, void *arg, size_t i, struct par_bufs *b)
{
	const char *key = ((struct wal_job *)arg)->keys[i];
	uint64_t plainlen;
	int ret;

	buf_reset(&b->obj);
	ret = obj_fetch(c->from->store, key, OBJ_WAL, &b->obj);
	if (ret == 0)
		ret = obj_reseal(&c->from->keys, &c->to->keys, OBJ_WAL, key, &b->obj);
	if (ret)
		return pgk_error_wrap(ret, "repository %s", c->from->name);
	plainlen = obj_plain_len(b->obj.data, b->obj.len);
	ret = store_put(c->to->store, key, b->obj.data, b->obj.len, PGKEEP_PUT_IF_ABSENT);
	if (ret && ret != PGKEEP_EEXISTS)
		return ret;
	pthread_mutex_lock(&c->mu);
	if (ret == PGKEEP_EEXISTS) {
		c->st.wal_present++;
	} else {
		c->st.wal_sent++;
		c->st.wal_bytes += plainlen;
	}
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* The segment number of a segment-based WAL key; false for history files. */
static bool key_segno(const char *key, uint32_t seg_size, uint64_t *segno)
{
	const char *slash = strrchr(key, '/');
	struct wal_name wn;

	if (walname_parse(slash ? slash + 1 : key, &wn) < 0 || wn.type == WAL_HISTORY)
		return false;
	return wal_name_to_segno(&wn, seg_size, segno) == 0;
}

/* Every segment of m's own range is in B (after the WAL was copied). */
static int check_backup_wal(struct copy *c, const struct manifest *m)
{
	char name[WAL_SEG_NAME_LEN + 1], key[WAL_KEY_MAX];
	uint32_t seg_size = m->wal_seg_size ? m->wal_seg_size : WAL_SEG_SIZE_DEFAULT;
	int guard;

	snprintf(name, sizeof(name), "%s", m->wal_start);
	for (guard = 0; guard < 1 << 20; guard++) {
		if (walname_key(name, key, sizeof(key)) < 0)
			break;
		if (!keylist_has(&c->wal_to, key))
			return pgk_error(PGKEEP_ENOTFOUND,
					 "backup %s needs WAL segment %s, which neither %s nor %s holds",
					 m->id, name, c->from->name, c->to->name);
		if (strcmp(name, m->wal_stop) == 0)
			return 0;
		if (wal_next_segment(name, seg_size, name) < 0)
			break;
	}
	return pgk_error(PGKEEP_ECORRUPT, "backup %s: bad WAL range %s to %s", m->id, m->wal_start,
			 m->wal_stop);
}

/*
 * The WAL B needs for its base backups: every file of A from the oldest
 * base backup B will hold on, and every history file, that B lacks.
 */
static int copy_wal(struct copy *c, const struct manifest *bases, size_t nbases)
{
	struct keylist from = { 0 };
	struct wal_job job = { 0 };
	uint32_t seg_size = WAL_SEG_SIZE_DEFAULT;
	uint64_t cut = UINT64_MAX, segno;
	size_t i;
	int ret;

	for (i = 0; i < nbases; i++) {
		if (bases[i].wal_seg_size)
			seg_size = bases[i].wal_seg_size;
	}
	for (i = 0; i < nbases; i++) {
		char key[WAL_KEY_MAX];

		if (walname_key(bases[i].wal_start, key, sizeof(key)) == 0 &&
		    key_segno(key, seg_size, &segno) && segno < cut)
			cut = segno;
	}
	ret = store_list(c->from->store, "wal/", add_key, &from);
	if (ret)
		goto out_free;
	keylist_sort(&from);
	for (i = 0; i < from.n; i++) {
		const char *key = from.keys[i];
		bool wanted = !key_segno(key, seg_size, &segno) || segno >= cut;

		if (wanted && !keylist_has(&c->wal_to, key)) {
			job.keys = xrealloc(job.keys, (job.n + 1) * sizeof(*job.keys));
			job.keys[job.n++] = from.keys[i];
		}
	}
	ret = par_run(c, job.n, copy_wal_file, &job);
	if (ret)
		goto out_free;
	/* B holds them now: later checks look at B's listing alone. */
	for (i = 0; i < job.n; i++) {
		struct pgkeep_stat st = { 0 };

		add_key(&c->wal_to, job.keys[i], &st);
	}
	keylist_sort(&c->wal_to);
	c->wal_done = true;
out_free:
	free(job.keys);
	keylist_free(&from);
	return ret;
}

/* ---- one backup ---- */

static void print_stats(const char *what, const struct copy_stats *s)
{
	char sent[32];

	human_size(s->bytes_sent, sent, sizeof(sent));
	printf("%s: %zu chunk(s) sent (%s), %zu already present\n", what, s->chunks_sent, sent,
	       s->chunks_present);
}

static void stats_add(struct copy_stats *to, const struct copy_stats *s)
{
	to->chunks_sent += s->chunks_sent;
	to->chunks_present += s->chunks_present;
	to->bytes_sent += s->bytes_sent;
	to->wal_sent += s->wal_sent;
	to->wal_present += s->wal_present;
	to->wal_bytes += s->wal_bytes;
}

/*
 * One stream: A's chunk list read a batch at a time, the batch copied by
 * the workers, its entries (naming B's chunks) added to B's list objects.
 */
static int copy_stream(struct copy *c, const struct manifest_stream *s,
		       struct manifest_stream *d)
{
	struct manifest_chunk *batch = xmalloc(COPY_BATCH * sizeof(*batch));
	const struct manifest_chunk *mc;
	struct manifest_cursor *cur;
	struct list_out lo;
	size_t n, k;
	int ret;

	list_out_init(&lo, c->to, d);
	d->size = s->size;
	d->sum_alg = s->sum_alg;
	memcpy(d->sum, s->sum, sizeof(d->sum));
	d->stored = 0;
	ret = manifest_stream_cursor_open(c->from, s, &cur);
	while (ret == 0) {
		for (n = 0; n < COPY_BATCH && (ret = manifest_cursor_next(cur, &mc)) == 1; n++)
			batch[n] = *mc;
		if (ret < 0)
			break;
		ret = par_run(c, n, copy_chunk, batch);
		for (k = 0; ret == 0 && k < n; k++) {
			d->stored += batch[k].stored;
			ret = list_out_append(&lo, &batch[k]);
		}
		if (ret || n < COPY_BATCH)
			break;
	}
	if (ret == 0)
		ret = list_out_flush(&lo);
	if (ret == 0 && d->nchunks != s->nchunks)
		ret = pgk_error(PGKEEP_ECORRUPT, "%zu chunks copied, the manifest lists %zu",
				d->nchunks, s->nchunks);
	manifest_cursor_close(cur);
	list_out_free(&lo);
	free(batch);
	return ret;
}

/* B's manifest starts as A's, without the streams. */
static void copy_header(struct manifest *to, const struct manifest *from)
{
	manifest_copy_header(to, from);
	to->dbname = from->dbname ? xstrdup(from->dbname) : NULL;
	to->label = from->label ? xstrdup(from->label) : NULL;
	to->format = from->format ? xstrdup(from->format) : NULL;
}

/*
 * Chunks, then (base backups) the WAL, then the manifest.  bases: every
 * base backup B holds or will hold after this one, for the WAL cutoff.
 */
static int copy_backup(struct copy *c, const char *id, const struct manifest *bases,
		       size_t nbases)
{
	struct manifest m = { 0 }, dm = { 0 };
	size_t i;
	int ret;

	memset(&c->st, 0, sizeof(c->st));
	ret = manifest_load(c->from, id, &m);
	if (ret)
		return ret;
	if (c->from->sysid && m.sysid && m.sysid != c->from->sysid) {
		ret = pgk_error(PGKEEP_ECORRUPT, "backup %s in %s belongs to cluster %" PRIu64
				", the repository to %" PRIu64, id, c->from->name, m.sysid,
				c->from->sysid);
		goto out_free;
	}
	copy_header(&dm, &m);
	for (i = 0; i < m.nstreams && ret == 0; i++) {
		const struct manifest_stream *s = &m.streams[i];

		struct manifest_stream *d = manifest_add_stream(&dm, s->name);

		manifest_stream_set_tablespace(d, s->tblspc_oid, s->tblspc_location);
		ret = copy_stream(c, s, d);
		if (ret) {
			ret = pgk_error_wrap(ret, "backup %s: stream %s", id, s->name);
			break;
		}
	}
	if (ret == 0 && m.type == BACKUP_BASE && !c->wal_done)
		ret = copy_wal(c, bases, nbases);
	if (ret == 0 && m.type == BACKUP_BASE)
		ret = check_backup_wal(c, &m);
	if (ret == 0) {
		ret = manifest_save(c->to, &dm);
		if (ret == PGKEEP_EEXISTS)
			ret = 0;	/* a concurrent copy finished it */
	}
	if (ret == 0) {
		char what[MANIFEST_ID_MAX + 16];

		snprintf(what, sizeof(what), "copied %s", id);
		print_stats(what, &c->st);
		pgk_log_info("backup %s copied from %s to %s", id, c->from->name, c->to->name);
	}
	stats_add(&c->total, &c->st);
out_free:
	manifest_free(&dm);
	manifest_free(&m);
	return ret;
}

/* ---- the cluster ---- */

static int read_sysid(struct repo *r, uint64_t *out)
{
	struct pgk_buf text = PGK_BUF_INIT;
	char *end;
	int ret;

	ret = repo_get(r, COPY_SYSID_KEY, OBJ_META, &text);
	if (ret == 0) {
		buf_append(&text, "", 1);
		*out = strtoull((const char *)text.data, &end, 10);
		if (end == (const char *)text.data)
			ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s is damaged", r->name,
					COPY_SYSID_KEY);
	}
	buf_free(&text);
	return ret;
}

/* Both repositories hold the same cluster; B, still empty, now does too. */
static int check_cluster(struct copy *c)
{
	uint64_t sysid;
	int ret;

	ret = read_sysid(c->from, &sysid);
	if (ret == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_ENOTFOUND, "repository %s holds no backup or WAL yet",
				 c->from->name);
	if (ret)
		return ret;
	c->from->sysid = sysid;
	ret = repo_check_sysid(c->to, sysid);
	if (ret == PGKEEP_EINVAL)
		return pgk_error_wrap(ret, "cannot copy from %s to %s: they hold different clusters",
				      c->from->name, c->to->name);
	return ret;
}

/* ---- the command ---- */

struct copy_opts {
	const char *from, *to;
	bool missing;
	char **ids;
	int nids;
	int lock_wait;
	size_t cache_ids;	/* the cap of each id cache (COPY_CACHE_IDS) */
};

static int parse_args(int argc, char **argv, struct copy_opts *o)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "missing", no_argument, NULL, 'm' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	o->lock_wait = 60;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f': o->from = optarg; break;
		case 't': o->to = optarg; break;
		case 'm': o->missing = true; break;
		case 'w':
			if (parse_seconds("--lock-wait", optarg, INT_MAX, &o->lock_wait) < 0) {
				pgk_log_error("%s", pgk_errmsg());
				return -1;
			}
			break;
		default: return -1;
		}
	}
	o->ids = argv + optind;
	o->nids = argc - optind;
	if (!o->to) {
		pgk_log_error("copy needs --to REPOSITORY");
		return -1;
	}
	if (o->missing == (o->nids > 0)) {
		pgk_log_error("copy needs backup ids or --missing (one of them)");
		return -1;
	}
	return 0;
}

static bool in_list(const struct manifest *list, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i].id, id) == 0)
			return true;
	return false;
}

/* Which of A's backups to copy, oldest first: indexes into la. */
static int choose(const struct copy_opts *o, const struct manifest *la, size_t na,
		  const struct manifest *lb, size_t nb, bool *want)
{
	size_t i;
	int k;

	for (i = 0; i < na; i++)
		want[i] = o->missing && !in_list(lb, nb, la[i].id);
	for (k = 0; k < o->nids; k++) {
		const char *id = o->ids[k];

		if (strcmp(id, "latest") == 0 && na)
			id = la[na - 1].id;
		for (i = 0; i < na && strcmp(la[i].id, id) != 0; i++)
			;
		if (i == na)
			return pgk_error(PGKEEP_ENOTFOUND, "repository %s has no backup %s", o->from,
					 o->ids[k]);
		if (in_list(lb, nb, id))
			printf("%s is already in %s\n", id, o->to);
		else
			want[i] = true;
	}
	return 0;
}

/* COPY_CACHE_IDS, or a smaller cap from env (PGKEEP_TEST_COPY_IDS). */
static size_t cache_ids(const char *env)
{
	char *end;
	unsigned long v;

	if (!env || !*env)
		return COPY_CACHE_IDS;
	v = strtoul(env, &end, 10);
	return *end || v == 0 || v > COPY_CACHE_IDS ? COPY_CACHE_IDS : (size_t)v;
}

/* Lists, the id map and the WAL listing of B; then each chosen backup. */
static int copy_run(struct copy *c, const struct copy_opts *o)
{
	struct manifest *la = NULL, *lb = NULL, *bases = NULL;
	size_t na = 0, nb = 0, nbases = 0, ncopy = 0, i;
	bool *want = NULL;
	int ret;

	ret = manifest_list_summary(c->from, &la, &na);
	if (ret == 0)
		ret = manifest_list_summary(c->to, &lb, &nb);
	if (ret)
		goto out_free;
	want = xzalloc((na ? na : 1) * sizeof(*want));
	ret = choose(o, la, na, lb, nb, want);
	if (ret)
		goto out_free;

	/* The base backups B holds or will hold: the WAL it needs starts at the oldest. */
	bases = xzalloc((na + nb + 1) * sizeof(*bases));
	for (i = 0; i < nb; i++)
		if (lb[i].type == BACKUP_BASE)
			bases[nbases++] = lb[i];
	for (i = 0; i < na; i++) {
		if (want[i])
			ncopy++;
		if (want[i] && la[i].type == BACKUP_BASE)
			bases[nbases++] = la[i];
	}
	printf("copy from %s to %s: %zu backup(s) to copy\n", c->from->name, c->to->name, ncopy);

	c->present.max = c->map.max = o->cache_ids;
	ret = store_list(c->to->store, "chunks/", present_add, &c->present);
	if (ret == 0)
		ret = store_list(c->to->store, "wal/", add_key, &c->wal_to);
	if (ret)
		goto out_free;
	keylist_sort(&c->wal_to);
	c->present_partial = c->present.full;
	if (c->present_partial)
		pgk_log_info("repository %s holds more than %zu chunks: copy asks it about each "
			     "chunk instead of listing them all", c->to->name, c->present.max);
	/* The newest backups first: the next one to copy shares most with them. */
	for (i = na; i-- > 0 && ncopy && !c->map.full;)
		if (in_list(lb, nb, la[i].id) && learn_pair(c, la[i].id) < 0)
			pgk_log_warning("backup %s: %s (its chunks will be fetched)", la[i].id,
					pgk_errmsg());
	if (c->map.full)
		pgk_log_info("copy keeps %zu of the chunk names both repositories share; the "
			     "chunks of older backups are fetched and named again", c->map.max);

	for (i = 0; i < na && ret == 0; i++)
		if (want[i])
			ret = copy_backup(c, la[i].id, bases, nbases);
	/* Keep B's archive current for point-in-time restores of what it holds. */
	if (ret == 0 && !c->wal_done && nbases) {
		memset(&c->st, 0, sizeof(c->st));
		ret = copy_wal(c, bases, nbases);
		stats_add(&c->total, &c->st);
	}
	if (ret == 0) {
		char sent[32], wal[32];

		human_size(c->total.bytes_sent, sent, sizeof(sent));
		human_size(c->total.wal_bytes, wal, sizeof(wal));
		printf("copied %zu backup(s) from %s to %s: %zu chunk(s) sent (%s), %zu already present;"
		       " %zu WAL file(s) sent (%s), %zu already present\n",
		       ncopy, c->from->name, c->to->name, c->total.chunks_sent, sent,
		       c->total.chunks_present, c->total.wal_sent, wal, c->total.wal_present);
	}
out_free:
	free(bases);	/* shallow copies of la / lb entries */
	free(want);
	manifest_list_free(la, na);
	manifest_list_free(lb, nb);
	return ret;
}

int cmd_copy(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_config cfg = { 0 };
	const struct pgk_config_repo *rc;
	struct copy_opts o = { 0 };
	struct copy c = { 0 };
	struct repo_lock *lfrom = NULL, *lto = NULL;
	int ret = PGK_EXIT_ERROR;

	if (parse_args(argc, argv, &o) < 0)
		return PGK_EXIT_USAGE;
	o.cache_ids = cache_ids(getenv("PGKEEP_TEST_COPY_IDS"));
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	/* --from defaults to --repo, else the default repository. */
	if (config_repo(&cfg, o.from ? o.from : g->repo_name, &rc) < 0)
		goto fail;
	o.from = rc->name;
	if (config_repo(&cfg, o.to, &rc) < 0)
		goto fail;
	if (strcmp(o.from, o.to) == 0) {
		pgk_log_error("copy: --from and --to both name repository %s", o.to);
		ret = PGK_EXIT_USAGE;
		goto out;
	}
	c.jobs = cfg.jobs > 0 ? cfg.jobs : COPY_DEFAULT_JOBS;
	if (c.jobs > COPY_MAX_JOBS)
		c.jobs = COPY_MAX_JOBS;
	pthread_mutex_init(&c.mu, NULL);
	if (ctx_open_repo_named(&cfg, o.from, &c.from) < 0 ||
	    ctx_open_repo_named(&cfg, o.to, &c.to) < 0 ||
	    lock_acquire(&lfrom, c.from, LOCK_SHARED, "copy", o.lock_wait) < 0 ||
	    lock_acquire(&lto, c.to, LOCK_SHARED, "copy", o.lock_wait) < 0)
		goto fail;
	ret = check_cluster(&c);
	if (ret == PGKEEP_ENOTFOUND) {
		printf("%s: nothing to copy\n", pgk_errmsg());
		ret = PGK_EXIT_OK;
		goto out;
	}
	if (ret < 0 || copy_run(&c, &o) < 0)
		goto fail;
	ret = PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	lock_release(lto);
	lock_release(lfrom);
	repo_close(c.to);
	repo_close(c.from);
	idmap_free(&c.present);
	idmap_free(&c.map);
	keylist_free(&c.wal_to);
	if (c.jobs)
		pthread_mutex_destroy(&c.mu);
	config_free(&cfg);
	return ret;
}

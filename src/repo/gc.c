/*
 * Sweeps over chunks/, deltas/ and wal/.  Each pass lists what it needs and
 * removes after, so no plugin is asked to delete while it lists; a pass holds
 * the chunk ids of its range only, as bytes, never the whole listing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pipeline/pipeline.h"
#include "repo/gc.h"

#define ID_BYTES 32

struct gc_id {
	uint8_t b[ID_BYTES];
};

/* A set of ids: appended to, then sorted and made unique before lookups. */
struct idset {
	struct gc_id *v;
	size_t n, cap;
};

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, ID_BYTES);
}

static void id_swap(struct gc_id *a, struct gc_id *b)
{
	struct gc_id t = *a;

	*a = *b;
	*b = t;
}

static void sift_down(struct gc_id *v, size_t root, size_t n)
{
	size_t child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && cmp_id(&v[child], &v[child + 1]) < 0)
			child++;
		if (cmp_id(&v[root], &v[child]) >= 0)
			return;
		id_swap(&v[root], &v[child]);
		root = child;
	}
}

/*
 * Heapsort: in place, where glibc's qsort merges through a copy of the
 * array, which would double what a pass holds just as it peaks.
 */
static void ids_sort(struct gc_id *v, size_t n)
{
	size_t i;

	if (n < 2)
		return;
	for (i = n / 2; i-- > 0;)
		sift_down(v, i, n);
	for (i = n - 1; i > 0; i--) {
		id_swap(&v[0], &v[i]);
		sift_down(v, 0, i);
	}
}

static void idset_seal(struct idset *s)
{
	size_t i, j;

	ids_sort(s->v, s->n);
	for (i = 0, j = 0; i < s->n; i++)
		if (j == 0 || memcmp(s->v[j - 1].b, s->v[i].b, ID_BYTES) != 0)
			s->v[j++] = s->v[i];
	s->n = j;
}

/*
 * Backups share most chunks: a full set drops its repeats before it grows,
 * so it takes about twice what it holds once, not what the backups name.
 */
static void idset_add(struct idset *s, const uint8_t *b)
{
	if (s->n == s->cap) {
		if (s->n >= 4096)
			idset_seal(s);
		if (s->n == s->cap || s->n * 2 > s->cap) {
			s->cap = s->cap ? s->cap * 2 : 1024;
			s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
		}
	}
	memcpy(s->v[s->n++].b, b, ID_BYTES);
}

static bool idset_has(const struct idset *s, const uint8_t *b)
{
	return s->n && bsearch(b, s->v, s->n, sizeof(*s->v), cmp_id) != NULL;
}

static void idset_free(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* deltas/XX/ID-BASE: chunk id is stored as a delta of base. */
struct record {
	struct gc_id id, base;
	int64_t mtime;
	bool named;		/* id is named by a live backup */
};

struct records {
	struct record *v;
	size_t n, cap;
};

static void records_add(struct records *rs, const struct record *rec)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->v = xrealloc(rs->v, rs->cap * sizeof(*rs->v));
	}
	rs->v[rs->n++] = *rec;
}

static int cmp_record(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	int c = memcmp(x->id.b, y->id.b, ID_BYTES);

	return c ? c : memcmp(x->base.b, y->base.b, ID_BYTES);
}

/* The chunk id of a key chunks/XX/ID, decoded; false for anything else. */
static bool chunk_of(const char *key, uint8_t *id)
{
	const char *name = strrchr(key, '/');

	return strncmp(key, "chunks/", 7) == 0 && name && strlen(name + 1) == 64 &&
	       hex_decode(name + 1, ID_BYTES, id);
}

/* deltas/XX/ID-BASE, decoded; false for anything else. */
static bool record_of(const char *key, struct record *rec)
{
	const char *name = strrchr(key, '/');
	char hex[65];

	if (strncmp(key, "deltas/", 7) != 0 || !name || strlen(name + 1) != 129 || name[65] != '-')
		return false;
	memcpy(hex, name + 1, 64);
	hex[64] = '\0';
	if (!hex_decode(hex, ID_BYTES, rec->id.b) || !hex_decode(name + 66, ID_BYTES, rec->base.b))
		return false;
	return true;
}

unsigned gc_passes(uint64_t total, size_t budget)
{
	unsigned k = 1;

	if (budget == 0)
		budget = 1;
	while (k < GC_MAX_PASSES && (total + k - 1) / k > budget)
		k *= 2;
	return k;
}

/* Tell fn every chunk a backup not skipped names, one stream at a time. */
static int walk_backups(void *payload, unsigned pass, unsigned npasses, gc_ref_fn fn, void *arg)
{
	const struct gc_backups *b = payload;
	const struct manifest_chunk *c;
	struct manifest_cursor *cur;
	size_t i, j;
	int rc;

	(void)pass, (void)npasses;
	for (i = 0; i < b->n; i++) {
		if (b->skip && b->skip[i])
			continue;
		for (j = 0; j < b->list[i].nstreams; j++) {
			rc = manifest_cursor_open(b->r, &b->list[i], j, &cur);
			if (rc < 0)
				return rc;
			while ((rc = manifest_cursor_next(cur, &c)) == 1) {
				rc = fn(arg, c->id);
				if (rc < 0)
					break;
			}
			manifest_cursor_close(cur);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

void gc_refs_of_backups(struct gc_refs *refs, const struct gc_backups *b)
{
	size_t i, j;

	refs->walk = walk_backups;
	refs->payload = (void *)b;
	refs->total = 0;
	for (i = 0; i < b->n; i++)
		for (j = 0; j < b->list[i].nstreams; j++)
			refs->total += b->list[i].streams[j].nchunks;
}

bool gc_locked_until(struct repo *r, const char *key, int64_t *until)
{
	char err[PGKEEP_ERRLEN];

	*until = 0;
	if (!r->store->ops.locked_until)
		return false;
	if (r->store->ops.locked_until(r->store->handle, key, until, err) < 0) {
		*until = 0;
		return false;
	}
	return true;
}

/* Remove one object unless the store still locks it; count it. */
static int sweep_one(struct repo *r, const char *key, uint64_t size, time_t now, bool dry_run,
		     struct gc_result *res)
{
	int64_t until;
	int rc;

	if (gc_locked_until(r, key, &until) && until > now) {
		res->locked++;
		return 0;
	}
	if (!dry_run) {
		rc = store_remove(r->store, key);
		if (rc < 0)
			return rc;
	}
	res->removed++;
	res->bytes += size;
	return 0;
}

static bool is_young(int64_t mtime, time_t now, int64_t grace)
{
	return grace > 0 && mtime > 0 && now - mtime < grace;
}

/* A listed chunk that may go: nothing named it and it is not young. */
struct candidate {
	struct gc_id id;
	uint64_t size;
};

/*
 * One pass: the ids whose first byte is in [lo, hi).  live gathers what
 * stays; records holds the deltas/ records whose base is in range, whatever
 * range their delta is in, since that delta may keep the base.
 */
struct pass {
	struct repo *r;
	unsigned lo, hi;
	time_t now;
	int64_t grace;
	struct idset live;
	struct records records;
	/* sweep */
	struct idset young;
	struct candidate *cand;
	size_t ncand, capcand;
	/* check */
	struct idset present;
	bool check;
	bool first;		/* the first pass: where an id that is not hex counts */
};

static bool in_range(const struct pass *ps, const uint8_t *id)
{
	return id[0] >= ps->lo && id[0] < ps->hi;
}

static void pass_init(struct pass *ps, struct repo *r, unsigned p, unsigned k)
{
	memset(ps, 0, sizeof(*ps));
	ps->r = r;
	ps->lo = p * 256 / k;
	ps->hi = (p + 1) * 256 / k;
	ps->first = p == 0;
}

static void pass_free(struct pass *ps)
{
	idset_free(&ps->live);
	idset_free(&ps->young);
	idset_free(&ps->present);
	free(ps->records.v);
	free(ps->cand);
	memset(&ps->records, 0, sizeof(ps->records));
	ps->cand = NULL;
	ps->ncand = ps->capcand = 0;
}

/* List top ("chunks/" or "deltas/") for the pass's ids: one call when it covers all. */
static int list_range(struct pass *ps, const char *top, pgkeep_list_fn cb, void *payload)
{
	char prefix[16];
	unsigned b;
	int rc;

	if (ps->lo == 0 && ps->hi == 256)
		return store_list(ps->r->store, top, cb, payload);
	for (b = ps->lo; b < ps->hi; b++) {
		snprintf(prefix, sizeof(prefix), "%s%02x/", top, b);
		rc = store_list(ps->r->store, prefix, cb, payload);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int add_record(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct pass *ps = payload;
	struct records *rs = &ps->records;
	struct record rec = { .mtime = st ? st->mtime : 0 };

	if (record_of(key, &rec) && in_range(ps, rec.base.b))
		records_add(rs, &rec);
	return 0;
}

/* Every record whose base is in range, sorted by delta (the listing's order). */
static int list_records(struct pass *ps)
{
	int rc = store_list(ps->r->store, "deltas/", add_record, ps);

	if (rc == 0 && ps->records.n > 1)
		qsort(ps->records.v, ps->records.n, sizeof(*ps->records.v), cmp_record);
	return rc;
}

/* The records of delta id: a run in the sorted array, or an empty one. */
static void records_of(const struct pass *ps, const uint8_t *id, size_t *from, size_t *to)
{
	size_t lo = 0, hi = ps->records.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ps->records.v[mid].id.b, id, ID_BYTES) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*from = lo;
	while (hi < ps->records.n && memcmp(ps->records.v[hi].id.b, id, ID_BYTES) == 0)
		hi++;
	*to = hi;
}

/* A named id: kept when in range; its records (their base in range) marked. */
static int note_ref(void *arg, const char *hex)
{
	struct pass *ps = arg;
	uint8_t id[ID_BYTES];
	size_t i, from, to;

	if (strlen(hex) != 64 || !hex_decode(hex, ID_BYTES, id))
		return ps->check && ps->first ? 1 : 0;	/* no chunk can be stored by that name */
	records_of(ps, id, &from, &to);
	for (i = from; i < to; i++)
		ps->records.v[i].named = true;
	if (!in_range(ps, id))
		return 0;
	idset_add(&ps->live, id);
	if (ps->check && !idset_has(&ps->present, id))
		return 1;
	return 0;
}

static int walk_refs(struct pass *ps, const struct gc_refs *refs, unsigned p, unsigned k)
{
	int rc = refs->walk(refs->payload, p, k, note_ref, ps);

	if (rc < 0)
		return rc;
	idset_seal(&ps->live);
	return 0;
}

/* ---------------------------------------------------------------- sweep */

static int add_chunk(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct pass *ps = payload;
	uint8_t id[ID_BYTES];

	if (!chunk_of(key, id) || !in_range(ps, id) || idset_has(&ps->live, id))
		return 0;
	if (is_young(st ? st->mtime : 0, ps->now, ps->grace)) {
		idset_add(&ps->young, id);
		return 0;
	}
	if (ps->ncand == ps->capcand) {
		ps->capcand = ps->capcand ? ps->capcand * 2 : 1024;
		ps->cand = xrealloc(ps->cand, ps->capcand * sizeof(*ps->cand));
	}
	memcpy(ps->cand[ps->ncand].id.b, id, ID_BYTES);
	ps->cand[ps->ncand++].size = st ? st->size : 0;
	return 0;
}

/*
 * Is delta id, which nothing names, young?  In range the listing told;
 * outside it the pass asks the store (a delta that is going, or gone).
 */
static bool delta_young(struct pass *ps, const uint8_t *id)
{
	char hex[65], key[CHUNK_KEY_MAX];
	struct pgkeep_stat st;

	int rc;

	if (ps->grace <= 0)
		return false;
	if (in_range(ps, id))
		return idset_has(&ps->young, id);
	hex_encode(id, ID_BYTES, hex);
	chunk_key(hex, key, sizeof(key));
	rc = store_stat(ps->r->store, key, &st);
	if (rc == PGKEEP_ENOTFOUND)
		return false;
	/* Cannot tell: keep the base rather than risk a chunk a backup needs. */
	if (rc < 0)
		return true;
	return is_young(st.mtime, ps->now, ps->grace);
}

/* The bases in range that a kept delta needs join live; the young join it too. */
static void keep_bases(struct pass *ps, bool (*kept)(struct pass *, const struct record *))
{
	size_t i;

	for (i = 0; i < ps->records.n; i++)
		if (kept(ps, &ps->records.v[i]))
			idset_add(&ps->live, ps->records.v[i].base.b);
	for (i = 0; i < ps->young.n; i++)
		idset_add(&ps->live, ps->young.v[i].b);
	idset_seal(&ps->live);
}

static bool delta_stays(struct pass *ps, const struct record *rec)
{
	return rec->named || delta_young(ps, rec->id.b);
}

/* A record of a delta in range whose chunk is gone (or going), and is not young. */
static bool record_stale(const struct pass *ps, const struct record *rec)
{
	return in_range(ps, rec->id.b) && !idset_has(&ps->live, rec->id.b) &&
	       !is_young(rec->mtime, ps->now, ps->grace);
}

struct stale {
	struct pass *ps;
	struct records gone;
};

static int add_stale(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct stale *s = payload;
	struct record rec = { .mtime = st ? st->mtime : 0 };

	if (record_of(key, &rec) && record_stale(s->ps, &rec))
		records_add(&s->gone, &rec);
	return 0;
}

/*
 * The records of chunks that are gone, after them: bookkeeping, not counted.
 * One pass has listed every record already; several list those of their
 * range (deltas/XX/ is the delta's first byte).
 */
static int sweep_records(struct pass *ps, bool whole, bool dry_run)
{
	struct stale s = { .ps = ps };
	struct gc_result ignored = { 0 };
	char id[65], base[65], key[DELTA_KEY_MAX];
	size_t i;
	int rc = 0;

	if (whole) {
		for (i = 0; i < ps->records.n; i++)
			if (record_stale(ps, &ps->records.v[i]))
				records_add(&s.gone, &ps->records.v[i]);
	} else {
		rc = list_range(ps, "deltas/", add_stale, &s);
	}
	for (i = 0; rc == 0 && i < s.gone.n; i++) {
		hex_encode(s.gone.v[i].id.b, ID_BYTES, id);
		hex_encode(s.gone.v[i].base.b, ID_BYTES, base);
		delta_key(id, base, key, sizeof(key));
		rc = sweep_one(ps->r, key, 0, ps->now, dry_run, &ignored);
	}
	free(s.gone.v);
	return rc;
}

static int sweep_pass(struct pass *ps, const struct gc_refs *refs, unsigned p, unsigned k,
		      bool dry_run, struct gc_result *res)
{
	char hex[65], key[CHUNK_KEY_MAX];
	size_t i;
	int rc;

	rc = list_records(ps);
	if (rc == 0)
		rc = walk_refs(ps, refs, p, k);
	if (rc == 0)
		rc = list_range(ps, "chunks/", add_chunk, ps);
	if (rc < 0)
		return rc;
	idset_seal(&ps->young);
	res->young += ps->young.n;
	keep_bases(ps, delta_stays);
	for (i = 0; rc == 0 && i < ps->ncand; i++) {
		if (idset_has(&ps->live, ps->cand[i].id.b))
			continue;
		hex_encode(ps->cand[i].id.b, ID_BYTES, hex);
		chunk_key(hex, key, sizeof(key));
		rc = sweep_one(ps->r, key, ps->cand[i].size, ps->now, dry_run, res);
	}
	if (rc == 0)
		rc = sweep_records(ps, k == 1, dry_run);
	return rc;
}

int gc_sweep_chunks(struct repo *r, const struct gc_refs *refs, size_t budget, int64_t grace,
		    bool dry_run, struct gc_result *res)
{
	unsigned k = gc_passes(refs->total, budget), p;
	time_t now = time(NULL);
	int rc = 0;

	if (k > 1)
		pgk_log_info("chunks: %u passes over id ranges, to hold at most %zu ids at once",
			     k, budget);
	for (p = 0; rc == 0 && p < k; p++) {
		struct pass ps;

		pass_init(&ps, r, p, k);
		ps.now = now;
		ps.grace = grace;
		rc = sweep_pass(&ps, refs, p, k, dry_run, res);
		pass_free(&ps);
	}
	return rc;
}

/* ---------------------------------------------------------------- check */

static int add_present(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct pass *ps = payload;
	uint8_t id[ID_BYTES];

	(void)st;
	if (chunk_of(key, id) && in_range(ps, id))
		idset_add(&ps->present, id);
	return 0;
}

static bool delta_named(struct pass *ps, const struct record *rec)
{
	(void)ps;
	return rec->named;
}

static int check_pass(struct pass *ps, const struct gc_refs *refs, unsigned p, unsigned k,
		      struct gc_check *out)
{
	char id[65], base[65];
	size_t i;
	int rc;

	rc = list_range(ps, "chunks/", add_present, ps);
	if (rc == 0) {
		idset_seal(&ps->present);
		rc = list_records(ps);
	}
	if (rc == 0)
		rc = walk_refs(ps, refs, p, k);
	if (rc < 0)
		return rc;
	/* A delta is only as good as its base. */
	for (i = 0; i < ps->records.n; i++) {
		const struct record *rec = &ps->records.v[i];

		if (!rec->named || idset_has(&ps->present, rec->base.b))
			continue;
		hex_encode(rec->id.b, ID_BYTES, id);
		hex_encode(rec->base.b, ID_BYTES, base);
		out->missing_bases = xrealloc(out->missing_bases,
					      (out->nmissing_bases + 1) * sizeof(*out->missing_bases));
		out->missing_bases[out->nmissing_bases++] = xasprintf("%s-%s", id, base);
	}
	keep_bases(ps, delta_named);
	for (i = 0; i < ps->present.n; i++)
		if (!idset_has(&ps->live, ps->present.v[i].b))
			out->unreferenced++;
	return 0;
}

int gc_check_chunks(struct repo *r, const struct gc_refs *refs, size_t budget,
		    struct gc_check *out)
{
	unsigned k = gc_passes(refs->total, budget), p;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (p = 0; rc == 0 && p < k; p++) {
		struct pass ps;

		pass_init(&ps, r, p, k);
		ps.check = true;
		rc = check_pass(&ps, refs, p, k, out);
		pass_free(&ps);
	}
	if (rc < 0)
		gc_check_free(out);
	return rc;
}

void gc_check_free(struct gc_check *c)
{
	size_t i;

	for (i = 0; i < c->nmissing_bases; i++)
		free(c->missing_bases[i]);
	free(c->missing_bases);
	memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------------ WAL */

struct wal_sweep {
	const struct wal_name *keep_from;
	char **keys;
	uint64_t *sizes;
	size_t n;
};

/* Only what goes is kept from the listing. */
static int add_old_wal(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct wal_sweep *w = payload;
	const char *name = strrchr(key, '/');
	struct wal_name wn;

	if (!name || walname_parse(name + 1, &wn) < 0 || wn.type == WAL_HISTORY)
		return 0;
	/* (log, seg) order is segment-number order whatever the segment size. */
	if (wn.log > w->keep_from->log ||
	    (wn.log == w->keep_from->log && wn.seg >= w->keep_from->seg))
		return 0;
	w->keys = xrealloc(w->keys, (w->n + 1) * sizeof(*w->keys));
	w->sizes = xrealloc(w->sizes, (w->n + 1) * sizeof(*w->sizes));
	w->keys[w->n] = xstrdup(key);
	w->sizes[w->n++] = st ? st->size : 0;
	return 0;
}

int gc_sweep_wal(struct repo *r, const struct wal_name *keep_from, bool dry_run,
		 struct gc_result *res)
{
	struct wal_sweep w = { .keep_from = keep_from };
	time_t now = time(NULL);
	size_t i;
	int rc;

	rc = store_list(r->store, "wal/", add_old_wal, &w);
	for (i = 0; rc == 0 && i < w.n; i++)
		rc = sweep_one(r, w.keys[i], w.sizes[i], now, dry_run, res);
	for (i = 0; i < w.n; i++)
		free(w.keys[i]);
	free(w.keys);
	free(w.sizes);
	return rc;
}

/*
 * Sweeps over chunks/, deltas/ and wal/.  Listing is collected first and
 * deletions done after, so no plugin is asked to delete while it lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/gc.h"

struct entry {
	char *key;
	struct pgkeep_stat st;
};

struct listing {
	struct entry *e;
	size_t n;
};

static int add_entry(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct listing *l = payload;

	l->e = xrealloc(l->e, (l->n + 1) * sizeof(*l->e));
	l->e[l->n].key = xstrdup(key);
	l->e[l->n].st = *st;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->e[i].key);
	free(l->e);
}

bool gc_locked_until(struct repo *r, const char *key, int64_t *until)
{
	*until = 0;
	if (!r->store->ops.locked_until)
		return false;
	if (r->store->ops.locked_until(r->store->handle, key, until, pgk_errbuf()) < 0) {
		*until = 0;
		return false;
	}
	return true;
}

static bool is_referenced(char **refs, size_t nrefs, const char *id)
{
	size_t lo = 0, hi = nrefs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(refs[mid], id);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Remove one listed object unless the store still locks it; count it. */
static int sweep_one(struct repo *r, const struct entry *e, time_t now, bool dry_run,
		     struct gc_result *res)
{
	int64_t until;
	int rc;

	if (gc_locked_until(r, e->key, &until) && until > now) {
		res->locked++;
		return 0;
	}
	if (!dry_run) {
		rc = store_remove(r->store, e->key);
		if (rc < 0)
			return rc;
	}
	res->removed++;
	res->bytes += e->st.size;
	return 0;
}

/* The chunk id of a key chunks/XX/ID, or NULL for anything else. */
static const char *chunk_id_of(const char *key)
{
	const char *slash = strrchr(key, '/');

	if (strncmp(key, "chunks/", 7) != 0 || !slash || strlen(slash + 1) != 64)
		return NULL;
	return slash + 1;
}

/* deltas/XX/ID-BASE: the chunk and the base it needs; false for anything else. */
static bool delta_of(const char *key, char id[65], char base[65])
{
	const char *name = strrchr(key, '/');

	if (strncmp(key, "deltas/", 7) != 0 || !name || strlen(name + 1) != 129 ||
	    name[65] != '-')
		return false;
	memcpy(id, name + 1, 64);
	id[64] = '\0';
	memcpy(base, name + 66, 64);
	base[64] = '\0';
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * What must stay: refs (sorted, unique) and every base a chunk that stays
 * is stored against, by the records under deltas/ (listed into records).
 * A base is whole, so one round adds all; the loop only guards against a
 * record the design never writes.
 */
struct live {
	char **ids;		/* sorted, unique; strings borrowed or in owned */
	size_t n;
	char **owned;
	size_t nowned;
};

static void live_free(struct live *lv)
{
	gc_free_ids(lv->owned, lv->nowned);
	free(lv->ids);
}

static int live_set(struct repo *r, char **refs, size_t nrefs, struct listing *records,
		    struct live *lv)
{
	char id[65], base[65];
	size_t i, j, added;
	int rc;

	memset(lv, 0, sizeof(*lv));
	rc = store_list(r->store, "deltas/", add_entry, records);
	if (rc < 0)
		return rc;
	lv->ids = xmalloc((nrefs ? nrefs : 1) * sizeof(*lv->ids));
	if (nrefs)
		memcpy(lv->ids, refs, nrefs * sizeof(*refs));
	lv->n = nrefs;
	do {
		added = 0;
		for (i = 0; i < records->n; i++) {
			if (!delta_of(records->e[i].key, id, base) ||
			    !is_referenced(lv->ids, lv->n, id) || is_referenced(lv->ids, lv->n, base))
				continue;
			lv->owned = xrealloc(lv->owned, (lv->nowned + 1) * sizeof(*lv->owned));
			lv->owned[lv->nowned++] = xstrdup(base);
			added++;
		}
		if (!added)
			break;
		lv->ids = xrealloc(lv->ids, (lv->n + added) * sizeof(*lv->ids));
		memcpy(lv->ids + lv->n, lv->owned + lv->nowned - added, added * sizeof(*lv->ids));
		lv->n += added;
		qsort(lv->ids, lv->n, sizeof(*lv->ids), cmp_str);
		for (i = 0, j = 0; i < lv->n; i++)
			if (j == 0 || strcmp(lv->ids[j - 1], lv->ids[i]) != 0)
				lv->ids[j++] = lv->ids[i];
		lv->n = j;
	} while (added);
	return 0;
}

static bool is_young(const struct entry *e, time_t now, int64_t grace)
{
	return grace > 0 && e->st.mtime > 0 && now - e->st.mtime < grace;
}

/*
 * refs plus the chunks young enough to keep (written by a backup that may
 * still name them): a kept chunk keeps its base, or a later backup that
 * dedups against it would name a chunk whose base is gone.
 */
static char **keep_young(char **refs, size_t nrefs, const struct listing *l, time_t now,
			 int64_t grace, size_t *n, struct gc_result *res)
{
	char **keep = xmalloc((nrefs + l->n + 1) * sizeof(*keep));
	size_t i, m = nrefs;

	if (nrefs)
		memcpy(keep, refs, nrefs * sizeof(*refs));
	for (i = 0; i < l->n; i++) {
		char *id = (char *)chunk_id_of(l->e[i].key);

		if (!id || is_referenced(refs, nrefs, id) || !is_young(&l->e[i], now, grace))
			continue;
		keep[m++] = id;
		res->young++;
	}
	if (m > nrefs)
		qsort(keep, m, sizeof(*keep), cmp_str);
	*n = m;
	return keep;
}

int gc_sweep_chunks(struct repo *r, char **refs, size_t nrefs, int64_t grace, bool dry_run,
		    struct gc_result *res)
{
	struct listing l = { NULL, 0 }, records = { NULL, 0 };
	struct gc_result ignored = { 0 };
	char id[65], base[65], **keep = NULL;
	time_t now = time(NULL);
	struct live lv = { 0 };
	size_t i, nkeep = 0;
	int rc;

	rc = store_list(r->store, "chunks/", add_entry, &l);
	if (rc == 0) {
		keep = keep_young(refs, nrefs, &l, now, grace, &nkeep, res);
		rc = live_set(r, keep, nkeep, &records, &lv);
	}
	for (i = 0; rc == 0 && i < l.n; i++) {
		const char *cid = chunk_id_of(l.e[i].key);

		if (!cid || is_referenced(lv.ids, lv.n, cid))
			continue;
		rc = sweep_one(r, &l.e[i], now, dry_run, res);
	}
	/* Records of chunks that are gone, after them: bookkeeping, not counted. */
	for (i = 0; rc == 0 && i < records.n; i++) {
		if (!delta_of(records.e[i].key, id, base) || is_referenced(lv.ids, lv.n, id) ||
		    is_young(&records.e[i], now, grace))
			continue;
		rc = sweep_one(r, &records.e[i], now, dry_run, &ignored);
	}
	listing_free(&l);
	listing_free(&records);
	live_free(&lv);
	free(keep);
	return rc;
}

int gc_missing_bases(struct repo *r, char **refs, size_t nrefs, char **present, size_t npresent,
		     char ***out, size_t *n)
{
	struct listing records = { NULL, 0 };
	char id[65], base[65], **v = NULL;
	size_t i, m = 0;
	int rc;

	rc = store_list(r->store, "deltas/", add_entry, &records);
	for (i = 0; rc == 0 && i < records.n; i++) {
		if (!delta_of(records.e[i].key, id, base) || !is_referenced(refs, nrefs, id) ||
		    is_referenced(present, npresent, base))
			continue;
		v = xrealloc(v, (m + 1) * sizeof(*v));
		v[m++] = xasprintf("%s-%s", id, base);
	}
	listing_free(&records);
	if (rc < 0) {
		gc_free_ids(v, m);
		return rc;
	}
	*out = v;
	*n = m;
	return 0;
}

int gc_sweep_wal(struct repo *r, const struct wal_name *keep_from, bool dry_run,
		 struct gc_result *res)
{
	struct listing l = { NULL, 0 };
	time_t now = time(NULL);
	size_t i;
	int rc;

	rc = store_list(r->store, "wal/", add_entry, &l);
	for (i = 0; rc == 0 && i < l.n; i++) {
		const char *name = strrchr(l.e[i].key, '/');
		struct wal_name wn;

		if (!name || walname_parse(name + 1, &wn) < 0 || wn.type == WAL_HISTORY)
			continue;
		/* (log, seg) order is segment-number order whatever the segment size. */
		if (wn.log > keep_from->log || (wn.log == keep_from->log && wn.seg >= keep_from->seg))
			continue;
		rc = sweep_one(r, &l.e[i], now, dry_run, res);
	}
	listing_free(&l);
	return rc;
}

int gc_unreferenced_chunks(struct repo *r, char **refs, size_t nrefs, char ***out, size_t *n)
{
	struct listing l = { NULL, 0 }, records = { NULL, 0 };
	char **ids = NULL;
	struct live lv;
	size_t i, m = 0;
	int rc;

	rc = live_set(r, refs, nrefs, &records, &lv);
	if (rc == 0)
		rc = store_list(r->store, "chunks/", add_entry, &l);
	for (i = 0; rc == 0 && i < l.n; i++) {
		const char *id = chunk_id_of(l.e[i].key);

		if (!id || is_referenced(lv.ids, lv.n, id))
			continue;
		ids = xrealloc(ids, (m + 1) * sizeof(*ids));
		ids[m++] = xstrdup(id);
	}
	listing_free(&l);
	listing_free(&records);
	live_free(&lv);
	if (rc < 0) {
		gc_free_ids(ids, m);
		return rc;
	}
	*out = ids;
	*n = m;
	return 0;
}

void gc_free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

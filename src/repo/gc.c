/*
 * Sweeps over chunks/ and wal/.  Listing is collected first and deletions
 * done after, so no plugin is asked to delete while it lists.
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

int gc_sweep_chunks(struct repo *r, char **refs, size_t nrefs, int64_t grace, bool dry_run,
		    struct gc_result *res)
{
	struct listing l = { NULL, 0 };
	time_t now = time(NULL);
	size_t i;
	int rc;

	rc = store_list(r->store, "chunks/", add_entry, &l);
	for (i = 0; rc == 0 && i < l.n; i++) {
		const char *id = chunk_id_of(l.e[i].key);

		if (!id || is_referenced(refs, nrefs, id))
			continue;
		if (grace > 0 && l.e[i].st.mtime > 0 && now - l.e[i].st.mtime < grace) {
			res->young++;
			continue;
		}
		rc = sweep_one(r, &l.e[i], now, dry_run, res);
	}
	listing_free(&l);
	return rc;
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
	struct listing l = { NULL, 0 };
	char **ids = NULL;
	size_t i, m = 0;
	int rc;

	rc = store_list(r->store, "chunks/", add_entry, &l);
	for (i = 0; rc == 0 && i < l.n; i++) {
		const char *id = chunk_id_of(l.e[i].key);

		if (!id || is_referenced(refs, nrefs, id))
			continue;
		ids = xrealloc(ids, (m + 1) * sizeof(*ids));
		ids[m++] = xstrdup(id);
	}
	listing_free(&l);
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

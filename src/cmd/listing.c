/*
 * Listing backups: one repository's, or several repositories side by side
 * for the views that say where each backup is.  Opening one costs a key
 * unwrap; they are few, so one by one.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/context.h"
#include "cmd/listing.h"
#include "common/error.h"

int listing_open(const struct pgk_globals *g, struct listing *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = ctx_load_config(g, &l->cfg);
	if (rc == 0)
		rc = ctx_open_repo(g, &l->cfg, &l->r);
	if (rc == 0)
		rc = manifest_list_summary(l->r, &l->list, &l->n);
	return rc;
}

void listing_close(struct listing *l)
{
	manifest_list_free(l->list, l->n);
	repo_close(l->r);
	config_free(&l->cfg);
	memset(l, 0, sizeof(*l));
}

void repo_set_load(struct repo_set *s, const struct pgk_config *cfg)
{
	size_t i;

	s->n = cfg->nrepos;
	s->v = xzalloc((s->n ? s->n : 1) * sizeof(*s->v));
	for (i = 0; i < s->n; i++) {
		struct repo_view *v = &s->v[i];

		v->name = cfg->repos[i].name;
		if (ctx_open_repo_named(cfg, v->name, &v->r) < 0 ||
		    manifest_list_summary(v->r, &v->list, &v->n) < 0) {
			v->error = xstrdup(pgk_errmsg());
			v->list = NULL;
			v->n = 0;
		}
	}
}

void repo_set_free(struct repo_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		manifest_list_free(s->v[i].list, s->v[i].n);
		repo_close(s->v[i].r);
		free(s->v[i].error);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

bool repo_view_has(const struct repo_view *v, const char *id)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (strcmp(v->list[i].id, id) == 0)
			return true;
	return false;
}

static int cmp_start(const void *a, const void *b)
{
	const struct manifest *x = *(const struct manifest *const *)a;
	const struct manifest *y = *(const struct manifest *const *)b;

	if (x->start_time != y->start_time)
		return x->start_time < y->start_time ? -1 : 1;
	return strcmp(x->id, y->id);
}

const struct manifest **repo_set_union(const struct repo_set *s, size_t *n)
{
	const struct manifest **out;
	size_t total = 0, i, j, k, m = 0;

	for (i = 0; i < s->n; i++)
		total += s->v[i].n;
	out = xmalloc((total ? total : 1) * sizeof(*out));
	for (i = 0; i < s->n; i++)
		for (j = 0; j < s->v[i].n; j++) {
			const struct manifest *b = &s->v[i].list[j];

			for (k = 0; k < i && !repo_view_has(&s->v[k], b->id); k++)
				;
			if (k == i)
				out[m++] = b;
		}
	qsort(out, m, sizeof(*out), cmp_start);
	*n = m;
	return out;
}

size_t repo_set_holders(const struct repo_set *s, const char *id, const char **names)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		if (repo_view_has(&s->v[i], id))
			names[n++] = s->v[i].name;
	return n;
}

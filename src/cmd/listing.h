/*
 * The backups of a repository, listed for list and info; and every
 * repository of the config opened at once, each with its backups, for
 * `list --all-repos`, `info --all-repos` and metrics: which backup is where.
 */
#ifndef PGK_LISTING_H
#define PGK_LISTING_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "cmd/commands.h"

/* One repository's backups, with the config it was opened by. */
struct listing {
	struct pgk_config cfg;
	struct repo *r;
	struct manifest *list;	/* summaries, oldest first */
	size_t n;
};

/*
 * Load the config g chooses, open the repository it chooses and list its
 * backups.  On failure the message is set; listing_close frees what was
 * opened either way (after the caller has reported the failure).
 */
int listing_open(const struct pgk_globals *g, struct listing *l);
void listing_close(struct listing *l);

/* A repository that cannot be read is kept with its reason, not fatal. */
struct repo_view {
	const char *name;	/* the config's */
	struct repo *r;		/* NULL when it would not open */
	struct manifest *list;	/* summaries, oldest first */
	size_t n;
	char *error;		/* why it could not be read, else NULL */
};

struct repo_set {
	struct repo_view *v;	/* in config order */
	size_t n;
};

void repo_set_load(struct repo_set *s, const struct pgk_config *cfg);
void repo_set_free(struct repo_set *s);

/* True when repository view v holds backup id. */
bool repo_view_has(const struct repo_view *v, const char *id);

/*
 * Every backup any readable repository holds, once each, oldest first (by
 * start time, then id): pointers into the views' lists.  Free the array.
 */
const struct manifest **repo_set_union(const struct repo_set *s, size_t *n);

/* The repositories of s holding backup id, in config order, into names
 * (room for s->n); returns how many. */
size_t repo_set_holders(const struct repo_set *s, const char *id, const char **names);

#endif

/*
 * Every repository of the config opened at once, with its backups listed,
 * for `list --all-repos` and `info --all-repos`: which backup is where.  A
 * repository that cannot be read is kept with its reason, not fatal.
 */
#ifndef PGK_REPO_SET_H
#define PGK_REPO_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"

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

#endif

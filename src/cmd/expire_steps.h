/*
 * The steps of pgkeep expire on one repository: decide what the retention
 * policy removes, print the plan, then delete manifests, chunk lists,
 * chunks and old WAL in the order that is safe to interrupt.
 */
#ifndef PGK_EXPIRE_STEPS_H
#define PGK_EXPIRE_STEPS_H

#include <stdbool.h>
#include <stdint.h>

struct json_object;
struct pgk_config;
struct pgk_config_repo;
struct repo;

struct expire_params {
	bool dry_run;
	bool json;
	int64_t grace;		/* seconds: unreferenced chunks younger than this stay */
};

/*
 * Apply cfg's keep_* settings for repository rc to r (open, and locked
 * exclusively unless a dry run), printing the plan and the outcome; with
 * p->json the outcome goes into *doc instead (doc must not be NULL then).
 * Returns 0 or a negative error with its message set.
 */
int expire_repo(struct repo *r, const struct pgk_config *cfg, const struct pgk_config_repo *rc,
		const struct expire_params *p, struct json_object **doc);

#endif

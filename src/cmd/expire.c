/*
 * pgkeep expire: apply the retention policy.  Decides on recorded start
 * times, prints what goes and why, then deletes in the one order that is
 * safe to interrupt at any point: manifests first (a backup ceases to exist),
 * then the chunks no remaining manifest refers to, then the WAL older than
 * the oldest remaining base backup.  Running it again finishes the job.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/expire_steps.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "repo/lock.h"

struct expire_opts {
	bool dry_run;
	bool json;
	int64_t grace;		/* seconds: unreferenced chunks younger than this stay */
	int lock_wait;
	bool all_repos;
};

static const struct opt_def expire_options[] = {
	OPT_FLAG_DEF("dry-run", 'n', struct expire_opts, dry_run,
		     "show what would be removed, remove nothing"),
	OPT_JSON(struct expire_opts, json, "print the decisions as JSON"),
	OPT_DURATION_DEF("grace", "DURATION", struct expire_opts, grace, INT64_MAX,
			 "keep unreferenced chunks younger than this (default 1h; 0 = none)"),
	OPT_SECONDS_DEF("lock-wait", "DUR", struct expire_opts, lock_wait, INT_MAX,
			"wait this long for running commands to finish (default 60)"),
	OPT_ALL_REPOS(struct expire_opts, all_repos,
		      "every repository of the config in turn, each with its own keep_*"),
	OPT_END,
};

const struct opt_spec expire_cli = {
	.command = "expire",
	.summary = "apply the retention policy: remove old backups, their chunks and WAL",
	.synopsis = "[OPTIONS]",
	.opts = expire_options,
};

static int parse_args(int argc, char **argv, struct expire_opts *o)
{
	struct opt_args pos;

	o->grace = 3600;
	o->lock_wait = 60;
	return opt_parse(&expire_cli, argc, argv, o, &pos);
}

static int expire_one(const struct pgk_globals *g, const void *opts, struct json_object **doc)
{
	struct expire_opts o = *(const struct expire_opts *)opts;
	struct pgk_config cfg = { 0 };
	const struct pgk_config_repo *rc;
	struct expire_params p;
	struct repo *r = NULL;
	struct repo_lock *lock = NULL;
	int ret = PGK_EXIT_ERROR;

	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	if (config_repo(&cfg, g->repo_name, &rc) < 0 || ctx_open_repo(g, &cfg, &r) < 0) {
		ret = ctx_fail();
		goto out;
	}
	/* Decide and delete under one exclusive lock, so no backup that could
	 * still add a manifest or reuse a chunk runs meanwhile. */
	if (!o.dry_run && lock_acquire(&lock, r, LOCK_EXCLUSIVE, "expire", o.lock_wait) < 0) {
		ret = ctx_fail();
		goto out;
	}
	p = (struct expire_params){ .dry_run = o.dry_run, .json = o.json, .grace = o.grace };
	ret = expire_repo(r, &cfg, rc, &p, o.json ? doc : NULL) < 0 ? ctx_fail() : PGK_EXIT_OK;
out:
	lock_release(lock);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

int cmd_expire(const struct pgk_globals *g, int argc, char **argv)
{
	struct expire_opts o = { 0 };

	if (parse_args(argc, argv, &o) < 0)
		return opt_fail(&expire_cli);
	/* Each repository with its own keep_* settings, one after another. */
	return ctx_run_repos(g, o.all_repos, o.json, expire_one, &o);
}

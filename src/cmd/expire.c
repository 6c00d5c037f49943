/*
 * pgkeep expire: apply the retention policy.  Decides on recorded start
 * times, prints what goes and why, then deletes in the one order that is
 * safe to interrupt at any point: manifests first (a backup ceases to exist),
 * then the chunks no remaining manifest refers to, then the WAL older than
 * the oldest remaining base backup.  Running it again finishes the job.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/expire_steps.h"
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
};

static int parse_args(int argc, char **argv, struct expire_opts *o)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "grace", required_argument, NULL, 'g' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->grace = 3600;
	o->lock_wait = 60;
	while ((c = getopt_long(argc, argv, "nj", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'g':
			if (parse_duration("--grace", optarg, PARSE_BARE_SECONDS, INT64_MAX,
					   &o->grace) < 0) {
				pgk_log_error("%s", pgk_errmsg());
				return -1;
			}
			break;
		case 'w':
			if (parse_seconds("--lock-wait", optarg, INT_MAX, &o->lock_wait) < 0) {
				pgk_log_error("%s", pgk_errmsg());
				return -1;
			}
			break;
		default: return -1;
		}
	}
	if (optind != argc) {
		pgk_log_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

int cmd_expire(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_config cfg = { 0 };
	const struct pgk_config_repo *rc;
	struct expire_opts o = { 0 };
	struct expire_params p;
	struct repo *r = NULL;
	struct repo_lock *lock = NULL;
	int ret = PGK_EXIT_ERROR;

	/* Each repository with its own keep_* settings, one after another. */
	if (ctx_all_repos(argc, argv))
		return ctx_each_repo(g, argc, argv, cmd_expire);
	if (parse_args(argc, argv, &o) < 0)
		return PGK_EXIT_USAGE;
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
	ret = expire_repo(r, &cfg, rc, &p) < 0 ? ctx_fail() : PGK_EXIT_OK;
out:
	lock_release(lock);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

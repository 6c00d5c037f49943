/*
 * The steps most commands start with: config, repository choice, store,
 * passphrase, opened repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/store.h"

int ctx_load_config(const struct pgk_globals *g, struct pgk_config *cfg)
{
	const char *path = g->config_path;
	int ret;

	if (!path)
		path = getenv("PGKEEP_CONFIG");
	if (!path || !*path)
		path = PGK_CONFIG_DEFAULT_PATH;
	ret = config_load(cfg, path);
	if (ret < 0)
		return ret;
	/* -v and -q move the level away from its default; they win over the file. */
	if (cfg->log_level >= 0 && pgk_log_level == PGKEEP_LOG_WARNING)
		pgk_log_level = cfg->log_level;
	return 0;
}

int ctx_open_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		   struct pgk_store **store, const struct pgk_config_repo **rc)
{
	const struct pgk_config_repo *r;
	int ret;

	ret = config_repo(cfg, g->repo_name, &r);
	if (ret < 0)
		return ret;
	if (r->lock_days > 0) {
		/* Retention at the store: the plugin writes every object locked. */
		struct pgkeep_option *opts = xmalloc((r->nopts + 1) * sizeof(*opts));
		char days[16];

		memcpy(opts, r->opts, r->nopts * sizeof(*opts));
		snprintf(days, sizeof(days), "%d", r->lock_days);
		opts[r->nopts].key = "lock_days";
		opts[r->nopts].value = days;
		ret = store_open(store, r->name, r->plugin, cfg->plugin_dir, opts, r->nopts + 1);
		free(opts);
		if (ret == 0 && !store_has_feature(*store, PGKEEP_FEAT_LOCK)) {
			store_close(*store);
			ret = PGKEEP_EINVAL;
		}
		if (ret == PGKEEP_EINVAL)
			return pgk_error_wrap(ret, "repository %s: lock_days is set, and plugin %s cannot lock objects (s3 and b2 can)",
					      r->name, r->plugin);
	} else {
		ret = store_open(store, r->name, r->plugin, cfg->plugin_dir, r->opts, r->nopts);
	}
	if (ret < 0)
		return ret;
	if (rc)
		*rc = r;
	return 0;
}

int ctx_open_repo(const struct pgk_globals *g, const struct pgk_config *cfg, struct repo **out)
{
	const struct pgk_config_repo *rc;
	struct pgk_store *store;
	char *pass;
	int ret;

	/* Passphrase first: a missing one should not cost a connection. */
	ret = config_passphrase(cfg, &pass);
	if (ret < 0)
		return ret;
	ret = ctx_open_store(g, cfg, &store, &rc);
	if (ret == 0)
		ret = repo_open(out, store, rc->name, pass, cfg->compress_level);
	secure_free(pass, strlen(pass));
	return ret;
}

int ctx_fail(void)
{
	const char *msg = pgk_errmsg();

	pgk_log_error("%s", *msg ? msg : "failed (no message)");
	return PGK_EXIT_ERROR;
}

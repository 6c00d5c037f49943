/*
 * The steps most commands start with: config, repository choice, store,
 * passphrase, opened repository; as root, first becoming the owner of a
 * user's config and of a user's local repository.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd/context.h"
#include "cmd/privdrop.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/store.h"

/* The command's name for messages. */
static const char *ctx_command(void)
{
	return pgk_log_command ? pgk_log_command : "pgkeep";
}

int ctx_load_config(const struct pgk_globals *g, struct pgk_config *cfg)
{
	const char *path = g->config_path;
	int ret;

	if (!path)
		path = getenv("PGKEEP_CONFIG");
	if (!path || !*path)
		path = PGK_CONFIG_DEFAULT_PATH;
	/* Root never runs what a user's config names (passphrase_command, plugins) as root. */
	ret = privdrop_follow_owner(path, ctx_command());
	if (ret < 0)
		return ret;
	ret = config_load(cfg, path);
	if (ret < 0)
		return ret;
	/* -v and -q move the level away from its default; they win over the file. */
	if (cfg->log_level >= 0 && pgk_log_level == PGKEEP_LOG_WARNING)
		pgk_log_level = cfg->log_level;
	return 0;
}

/* The local directory a repository lives in, or NULL for a remote store. */
static const char *local_path(const struct pgk_config_repo *r)
{
	size_t i;

	if (strcmp(r->plugin, "local") != 0 && strcmp(r->plugin, "fault") != 0)
		return NULL;
	for (i = 0; i < r->nopts; i++)
		if (strcmp(r->opts[i].key, "path") == 0)
			return r->opts[i].value;
	return NULL;
}

static int open_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		      struct pgk_store **store, const struct pgk_config_repo **rc, unsigned flags)
{
	const struct pgk_config_repo *r;
	const char *path;
	int ret;

	ret = config_repo(cfg, g->repo_name, &r);
	if (ret < 0)
		return ret;
	/*
	 * Root in a user's local repository acts as that user, so that every
	 * file it adds (objects, locks, directories) stays theirs to read.
	 */
	path = local_path(r);
	if (path && (ret = privdrop_follow_owner(path, ctx_command())) < 0)
		return ret;
	ret = config_check_repo_files(cfg, r);
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
		ret = store_open_flags(store, r->name, r->plugin, cfg->plugin_dir, opts,
				       r->nopts + 1, flags);
		free(opts);
		if (ret == 0 && !store_has_feature(*store, PGKEEP_FEAT_LOCK)) {
			store_close(*store);
			ret = PGKEEP_EINVAL;
		}
		if (ret == PGKEEP_EINVAL)
			return pgk_error_wrap(ret, "repository %s: lock_days is set, and plugin %s cannot lock objects (s3 and b2 can)",
					      r->name, r->plugin);
	} else {
		ret = store_open_flags(store, r->name, r->plugin, cfg->plugin_dir, r->opts,
				       r->nopts, flags);
	}
	if (ret < 0)
		return ret;
	if (rc)
		*rc = r;
	return 0;
}

int ctx_open_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		   struct pgk_store **store, const struct pgk_config_repo **rc)
{
	return open_store(g, cfg, store, rc, 0);
}

int ctx_create_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		     struct pgk_store **store, const struct pgk_config_repo **rc)
{
	return open_store(g, cfg, store, rc, STORE_OPEN_CREATE);
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
		ret = repo_open(out, store, rc->name, pass, cfg->compress_level,
				&(struct repo_key_agent){ cfg->key_cache, cfg->spool_dir });
	if (ret == 0)
		(*out)->delta = cfg->delta;
	secure_free(pass, strlen(pass));
	return ret;
}

int ctx_open_repo_named(const struct pgk_config *cfg, const char *name, struct repo **out)
{
	struct pgk_globals g = { cfg->path, name };

	return ctx_open_repo(&g, cfg, out);
}

static void print_json(struct json_object *doc, int flags)
{
	printf("%s\n", json_object_to_json_string_ext(doc, flags));
}

static int run_one(const struct pgk_globals *g, bool json, ctx_repo_fn fn, const void *opts)
{
	struct json_object *doc = NULL;
	int status;

	status = fn(g, opts, json ? &doc : NULL);
	if (doc)
		print_json(doc, JSON_C_TO_STRING_PRETTY);
	json_object_put(doc);
	return status;
}

int ctx_run_repos(const struct pgk_globals *g, bool all_repos, bool json, ctx_repo_fn fn,
		  const void *opts)
{
	struct pgk_config cfg = { 0 };
	struct json_object *jout = NULL, *jrepos = NULL;
	int status, worst = PGK_EXIT_OK;
	size_t r;

	if (!all_repos)
		return run_one(g, json, fn, opts);
	if (g->repo_name) {
		pgk_log_error("--all-repos and --repo %s exclude each other", g->repo_name);
		return PGK_EXIT_USAGE;
	}
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	if (json) {
		jout = json_object_new_object();
		jrepos = json_object_new_array();
		json_object_object_add(jout, "repositories", jrepos);
	}
	for (r = 0; r < cfg.nrepos; r++) {
		struct pgk_globals one = { g->config_path, cfg.repos[r].name };
		struct json_object *doc = NULL;

		if (json) {
			status = fn(&one, opts, &doc);
			if (!doc) {
				doc = json_object_new_object();
				json_object_object_add(doc, "repository",
						       json_object_new_string(cfg.repos[r].name));
				json_object_object_add(doc, "error", json_object_new_string("failed"));
			}
			json_object_array_add(jrepos, doc);
		} else {
			printf("%s== repository %s\n", r ? "\n" : "", cfg.repos[r].name);
			fflush(stdout);
			status = fn(&one, opts, NULL);
		}
		if (status > worst)
			worst = status;
	}
	if (json) {
		json_object_object_add(jout, "ok", json_object_new_boolean(worst == PGK_EXIT_OK));
		print_json(jout, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		json_object_put(jout);
	}
	config_free(&cfg);
	return worst;
}

int ctx_jobs(int given, const struct pgk_config *cfg, int fallback)
{
	if (given > 0)
		return given;
	return cfg->jobs > 0 ? cfg->jobs : fallback;
}

int ctx_fail(void)
{
	const char *msg = pgk_errmsg();

	pgk_log_error("%s", *msg ? msg : "failed (no message)");
	return PGK_EXIT_ERROR;
}

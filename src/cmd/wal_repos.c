/*
 * Opening the WAL repositories.  Opening costs a plugin load and a key
 * unwrap (scrypt) each, so wal-push opens them all at once in threads and
 * wal-fetch only as far down the list as it has to go.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/context.h"
#include "cmd/wal_repos.h"
#include "common/error.h"
#include "common/log.h"

int wal_repos_init(struct wal_repos *wr, const struct pgk_globals *g,
		   const struct pgk_config *cfg)
{
	const struct pgk_config_repo *rc;
	int ret;

	memset(wr, 0, sizeof(*wr));
	wr->g = g;
	wr->cfg = cfg;
	if (!g->repo_name && cfg->archive_repos) {
		config_split_list(cfg->archive_repos, &wr->names, &wr->n);
	} else {
		ret = config_repo(cfg, g->repo_name, &rc);
		if (ret < 0)
			return ret;
		wr->names = xmalloc(sizeof(*wr->names));
		wr->names[0] = xstrdup(rc->name);
		wr->n = 1;
	}
	wr->r = xzalloc(wr->n * sizeof(*wr->r));
	wr->err = xzalloc(wr->n * sizeof(*wr->err));
	wr->msg = xzalloc(wr->n * sizeof(*wr->msg));
	wr->tried = xzalloc(wr->n * sizeof(*wr->tried));
	return 0;
}

void wal_repos_free(struct wal_repos *wr)
{
	size_t i;

	for (i = 0; i < wr->n; i++) {
		repo_close(wr->r[i]);
		free(wr->msg[i]);
	}
	config_free_list(wr->names, wr->n);
	free(wr->r);
	free(wr->err);
	free(wr->msg);
	free(wr->tried);
	if (wr->pass)
		secure_free(wr->pass, strlen(wr->pass));
	memset(wr, 0, sizeof(*wr));
}

/* Keys whose value says where the data is; anything else may be a secret. */
static bool locating_key(const char *key)
{
	static const char *const keys[] = {
		"path", "bucket", "prefix", "endpoint", "region", "host", "port", "user",
		"username", "bucket_name", "bucket_id", "root", "dir",
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

void wal_repos_scope(const struct wal_repos *wr, struct pgk_buf *out)
{
	const struct pgk_config_repo *rc;
	size_t i, j;

	for (i = 0; i < wr->n; i++) {
		if (config_repo(wr->cfg, wr->names[i], &rc) < 0)
			continue;
		buf_printf(out, "repo %s\nplugin %s\n", rc->name, rc->plugin);
		for (j = 0; j < rc->nopts; j++)
			if (locating_key(rc->opts[j].key))
				buf_printf(out, "%s=%s\n", rc->opts[j].key, rc->opts[j].value);
	}
}

char *wal_repos_message(const struct wal_repos *wr, size_t i, const char *msg)
{
	char *tag = xasprintf("repository %s", wr->names[i]);
	char *out;

	out = strstr(msg, tag) ? xstrdup(msg) : xasprintf("%s: %s", tag, msg);
	free(tag);
	return out;
}

static int get_pass(struct wal_repos *wr)
{
	if (wr->pass)
		return 0;
	return config_passphrase(wr->cfg, &wr->pass);
}

/* Everything after the passphrase: safe to run for several i at once. */
static int open_one(struct wal_repos *wr, size_t i, uint64_t sysid)
{
	struct pgk_globals g = *wr->g;
	const struct pgk_config_repo *rc;
	struct pgk_store *store;
	int ret;

	wr->tried[i] = true;
	g.repo_name = wr->names[i];
	ret = ctx_open_store(&g, wr->cfg, &store, &rc);
	if (ret == 0)
		ret = repo_open(&wr->r[i], store, rc->name, wr->pass, wr->cfg->compress_level,
				&(struct repo_key_agent){ wr->cfg->key_cache, wr->cfg->spool_dir });
	if (ret == 0 && sysid) {
		ret = repo_check_sysid(wr->r[i], sysid);
		if (ret < 0) {
			repo_close(wr->r[i]);
			wr->r[i] = NULL;
		}
	}
	if (ret < 0) {
		wr->err[i] = ret;
		wr->msg[i] = wal_repos_message(wr, i, pgk_errmsg());
	}
	return ret;
}

static void fail_all(struct wal_repos *wr, int ret)
{
	size_t i;

	for (i = 0; i < wr->n; i++) {
		if (wr->tried[i])
			continue;
		wr->tried[i] = true;
		wr->err[i] = ret;
		wr->msg[i] = xstrdup(pgk_errmsg());
	}
}

int wal_repos_open(struct wal_repos *wr, size_t i)
{
	int ret;

	if (wr->tried[i])
		return wr->err[i];
	ret = get_pass(wr);
	if (ret < 0) {
		fail_all(wr, ret);
		return ret;
	}
	return open_one(wr, i, 0);
}

struct open_arg {
	struct wal_repos *wr;
	size_t i;
	uint64_t sysid;
	pthread_t tid;
	bool started;
};

static void *open_thread(void *p)
{
	struct open_arg *a = p;

	open_one(a->wr, a->i, a->sysid);
	return NULL;
}

size_t wal_repos_open_all(struct wal_repos *wr, uint64_t sysid)
{
	struct open_arg *args;
	size_t i, opened = 0;
	int ret;

	ret = get_pass(wr);
	if (ret < 0) {
		fail_all(wr, ret);
		return 0;
	}
	args = xzalloc(wr->n * sizeof(*args));
	/* The first in this thread; the others alongside it. */
	for (i = 1; i < wr->n; i++) {
		args[i] = (struct open_arg){ wr, i, sysid, 0, false };
		if (!wr->tried[i])
			args[i].started = pthread_create(&args[i].tid, NULL, open_thread, &args[i]) == 0;
	}
	if (!wr->tried[0])
		open_one(wr, 0, sysid);
	for (i = 1; i < wr->n; i++) {
		if (args[i].started)
			pthread_join(args[i].tid, NULL);
		else if (!wr->tried[i])
			open_one(wr, i, sysid);
	}
	free(args);
	for (i = 0; i < wr->n; i++)
		opened += wr->r[i] != NULL;
	return opened;
}

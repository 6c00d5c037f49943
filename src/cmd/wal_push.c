/*
 * wal-push: PostgreSQL's archive_command.  One WAL file becomes one object
 * under wal/ in every archive repository; exit 0 means each store has
 * committed it durably, and a file already stored is accepted only when it
 * is byte-for-byte the same.  Besides the file asked for, the segments
 * PostgreSQL has already marked ready are pushed alongside it, and each one
 * stored everywhere is recorded in the spool, so that the call for it later
 * returns after hashing the file, with no plugin and no key.
 */
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/wal_push.h"
#include "cmd/wal_repos.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "local/spool.h"
#include "repo/layout.h"

/* Records kept at most: the look-ahead of two calls, and some slack. */
#define SPOOL_MAX(ahead) (2 * (size_t)(ahead) + 16)

static void open_spool(const struct pgk_config *cfg, const struct wal_repos *wr,
		       struct spool *sp)
{
	struct pgk_buf scope = PGK_BUF_INIT;

	sp->dir = NULL;
	sp->dfd = -1;
	if (cfg->wal_push_ahead <= 0)
		return;
	wal_repos_scope(wr, &scope);
	buf_append(&scope, "", 1);
	if (spool_open(sp, cfg->spool_dir, "push", (const char *)scope.data) < 0) {
		/* A spool the user asked for must not fail silently. */
		if (cfg->spool_dir)
			pgk_log_warning("%s; pushing without a spool", pgk_errmsg());
		else
			pgk_log_debug("%s; pushing without a spool", pgk_errmsg());
	}
	buf_free(&scope);
}

static int push(const struct pgk_globals *g, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct wal_repos wr;
	struct pgk_config cfg;
	struct wal_name wn;
	struct spool sp;
	char key[LAYOUT_WAL_KEY_MAX];
	int rc, lockfd = -1;

	rc = layout_wal_key(base, key, sizeof(key));
	if (rc < 0)
		return rc;
	rc = ctx_load_config(g, &cfg);
	if (rc < 0)
		return rc;
	rc = wal_repos_init(&wr, g, &cfg);
	if (rc < 0)
		goto out_config;
	open_spool(&cfg, &wr, &sp);

	if (sp.dir && push_spool_records(&sp, path, base)) {
		/* Pushed ahead by an earlier call, these very bytes, everywhere. */
		pgk_log_debug("%s already archived (spool record)", base);
		goto out_prune;
	}
	/* Segments go through a background pusher; the rare other files do not. */
	if (!sp.dir || walname_parse(base, &wn) < 0 || wn.type != WAL_SEGMENT ||
	    (lockfd = open_pusher_lock(&sp, path)) < 0) {
		rc = push_here(&wr, &cfg, &sp, path, base);
		goto out_prune;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		switch (wait_for_pusher(&sp, lockfd, path, base)) {
		case WAIT_RECORDED:
			goto out_prune;
		case WAIT_GAVE_UP:
			rc = push_here(&wr, &cfg, &sp, path, base);
			goto out_prune;
		case WAIT_LOCKED:
			break;
		}
		/* The last pusher may have stored it just before it left. */
		if (push_spool_records(&sp, path, base)) {
			pgk_log_debug("%s already archived (spool record)", base);
			goto out_prune;
		}
	}
	rc = push_background(&wr, &cfg, &sp, path, base, lockfd);
	lockfd = -1;	/* closed there */
out_prune:
	if (lockfd >= 0)
		close(lockfd);
	if (sp.dir)
		spool_prune(&sp, base, SPOOL_MAX(cfg.wal_push_ahead));
	spool_close(&sp);
	wal_repos_free(&wr);
out_config:
	config_free(&cfg);
	return rc;
}

static const struct opt_arg wal_push_args[] = {
	{ "PATH", "the file to archive (%p)" },
	{ NULL, NULL },
};

const struct opt_spec wal_push_cli = {
	.command = "wal-push",
	.summary = "archive a WAL file (archive_command = 'pgkeep wal-push %p')",
	.synopsis = "PATH",
	.args = wal_push_args,
	.min_args = 1,
	.max_args = 1,
};

int cmd_wal_push(const struct pgk_globals *g, int argc, char **argv)
{
	struct opt_args pos;

	if (opt_parse(&wal_push_cli, argc, argv, NULL, &pos) < 0)
		return opt_fail(&wal_push_cli);
	if (push(g, pos.argv[0]) < 0) {
		pgk_log_error("%s", pgk_errmsg());
		return PGK_EXIT_ERROR;
	}
	return PGK_EXIT_OK;
}

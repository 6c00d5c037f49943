/*
 * pgkeep init: create the repository named by --repo (or the config's
 * default) in its empty store, unlocked by the configured passphrase.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/parse.h"

static int set_kdf_n(void *opts, const char *arg)
{
	struct kdf_params *kp = opts;
	int64_t n;

	if (parse_int64("--kdf-n", arg, 1024, 1 << 20, &n) < 0)
		return PGKEEP_EINVAL;
	if (n & (n - 1))
		return pgk_error(PGKEEP_EINVAL, "--kdf-n: bad value '%s' (a power of two from 1024 to "
				 "1048576)", arg);
	kp->n = n;
	return 0;
}

static const struct opt_def init_options[] = {
	OPT_CALL_DEF("kdf-n", 0, "N", set_kdf_n, "scrypt cost (power of two; default 32768)"),
	OPT_END,
};

const struct opt_spec init_cli = {
	.command = "init",
	.summary = "create a repository",
	.synopsis = "[OPTIONS]",
	.opts = init_options,
};

/* The cluster's identifier opens pg_control (PostgreSQL's ControlFileData). */
static int read_sysid(const char *pgdata, uint64_t *sysid)
{
	char *path = xasprintf("%s/global/pg_control", pgdata);
	ssize_t n = -1;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, sysid, sizeof(*sysid));
		close(fd);
	}
	free(path);
	return n == (ssize_t)sizeof(*sysid) && *sysid ? 0 : -1;
}

/*
 * Optional: when the config says where the cluster lives, record it now
 * rather than at the first wal-push.  Failing here leaves a good repository,
 * so it only warns.
 */
static void record_sysid(const struct pgk_globals *g, const struct pgk_config *cfg,
			 const char *pass)
{
	const struct pgk_config_repo *rc;
	struct pgk_store *store;
	struct repo *r;
	uint64_t sysid;

	if (!cfg->pgdata || read_sysid(cfg->pgdata, &sysid) < 0)
		return;
	if (ctx_open_store(g, cfg, &store, &rc) < 0 ||
	    repo_open(&r, store, rc->name, pass, cfg->compress_level,
		      &(struct repo_key_agent){ cfg->key_cache, cfg->spool_dir }) < 0) {
		pgk_log_warning("cluster not recorded yet (%s); the first wal-push or backup will",
				pgk_errmsg());
		return;
	}
	if (repo_check_sysid(r, sysid) < 0)
		pgk_log_warning("%s", pgk_errmsg());
	repo_close(r);
}

int cmd_init(const struct pgk_globals *g, int argc, char **argv)
{
	struct kdf_params kp = { PGK_KDF_DEFAULT_N, PGK_KDF_DEFAULT_R, PGK_KDF_DEFAULT_P };
	const struct pgk_config_repo *rc;
	struct pgk_store *store;
	struct pgk_config cfg;
	char *pass;
	int ret;

	struct opt_args pos;

	if (opt_parse(&init_cli, argc, argv, &kp, &pos) < 0)
		return opt_fail(&init_cli);
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	ret = config_passphrase(&cfg, &pass);
	if (ret < 0)
		goto out_free_cfg;
	ret = ctx_create_store(g, &cfg, &store, &rc);
	if (ret < 0)
		goto out_free_pass;
	ret = repo_init(store, rc->name, pass, &kp);
	store_close(store);
	if (ret < 0)
		goto out_free_pass;
	printf("repository %s initialised at %s\n", rc->name, rc->plugin);
	fflush(stdout);
	record_sysid(g, &cfg, pass);
out_free_pass:
	secure_free(pass, strlen(pass));
out_free_cfg:
	if (ret < 0)
		ret = ctx_fail();
	config_free(&cfg);
	return ret < 0 ? PGK_EXIT_ERROR : ret;
}

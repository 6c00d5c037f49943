/*
 * What most commands do first: load the config, pick the repository, open
 * its store and unlock it with the passphrase.
 */
#ifndef PGK_CONTEXT_H
#define PGK_CONTEXT_H

#include <stdbool.h>

#include "cmd/commands.h"
#include "common/config.h"
#include "repo/repo.h"

struct json_object;

/* Load the config chosen by the globals (--config, $PGKEEP_CONFIG, default). */
int ctx_load_config(const struct pgk_globals *g, struct pgk_config *cfg);
/* Open the store of the chosen repository (--repo, else the default). */
int ctx_open_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		   struct pgk_store **store, const struct pgk_config_repo **rc);
/* The same for pgkeep init, the one command that may make the repository's root. */
int ctx_create_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		     struct pgk_store **store, const struct pgk_config_repo **rc);
/* Store plus passphrase: an opened repository. */
int ctx_open_repo(const struct pgk_globals *g, const struct pgk_config *cfg, struct repo **out);
/* Open the repository named `name` (NULL: the default), whatever --repo says. */
int ctx_open_repo_named(const struct pgk_config *cfg, const char *name, struct repo **out);
/*
 * One command's work on one repository, for ctx_run_repos: g names the
 * repository; text goes to stdout, or, when doc is not NULL (--json), the
 * result into *doc (left NULL when it failed before it had one).  Returns
 * the exit status.
 */
typedef int (*ctx_repo_fn)(const struct pgk_globals *g, const void *opts,
			   struct json_object **doc);
/*
 * Run fn on the repository g chooses, or with all_repos (--all-repos) on
 * every repository of the config in turn, in file order, as if --repo NAME
 * had been given; the exit status is the worst one.  With json, the
 * document is printed; with all_repos the documents are gathered into one
 * object {"repositories": [...], "ok": ...}.
 */
int ctx_run_repos(const struct pgk_globals *g, bool all_repos, bool json, ctx_repo_fn fn,
		  const void *opts);
/* Worker threads: --jobs N when given (not 0), else jobs in the config,
 * else fallback.  Every command with worker threads asks here. */
int ctx_jobs(int given, const struct pgk_config *cfg, int fallback);
/* Log pgk_errmsg() as one error line; returns PGK_EXIT_ERROR. */
int ctx_fail(void);

#endif

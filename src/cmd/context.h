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
 * `--all-repos` for commands that act on one repository (expire, verify):
 * ctx_all_repos tells whether argv asks for it; ctx_each_repo then runs fn
 * once per repository of the config, in file order, as if --repo NAME had
 * been given, with --all-repos taken out.  The exit status is the worst
 * one.  With --json, the runs' objects are gathered into one object
 * {"repositories": [...]}.
 */
bool ctx_all_repos(int argc, char **argv);
int ctx_each_repo(const struct pgk_globals *g, int argc, char **argv, pgk_cmd_fn fn);
/* Log pgk_errmsg() as one error line; returns PGK_EXIT_ERROR. */
int ctx_fail(void);

#endif

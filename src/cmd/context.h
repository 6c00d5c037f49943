/*
 * What most commands do first: load the config, pick the repository, open
 * its store and unlock it with the passphrase.
 */
#ifndef PGK_CONTEXT_H
#define PGK_CONTEXT_H

#include "cmd/commands.h"
#include "common/config.h"
#include "repo/repo.h"

/* Load the config chosen by the globals (--config, $PGKEEP_CONFIG, default). */
int ctx_load_config(const struct pgk_globals *g, struct pgk_config *cfg);
/* Open the store of the chosen repository (--repo, else the default). */
int ctx_open_store(const struct pgk_globals *g, const struct pgk_config *cfg,
		   struct pgk_store **store, const struct pgk_config_repo **rc);
/* Store plus passphrase: an opened repository. */
int ctx_open_repo(const struct pgk_globals *g, const struct pgk_config *cfg, struct repo **out);
/* Log pgk_errmsg() as one error line; returns PGK_EXIT_ERROR. */
int ctx_fail(void);

#endif

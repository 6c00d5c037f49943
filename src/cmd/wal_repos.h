/*
 * The repositories WAL goes to and comes from: [global] archive_repos (or
 * the one --repo names, or the default one), each opened on demand or all
 * at once in parallel, with the reason for any that would not open.
 */
#ifndef PGK_WAL_REPOS_H
#define PGK_WAL_REPOS_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd/commands.h"
#include "common/config.h"
#include "common/mem.h"
#include "repo/repo.h"

struct wal_repos {
	const struct pgk_globals *g;
	const struct pgk_config *cfg;
	size_t n;
	char **names;
	struct repo **r;	/* NULL until opened, and when opening failed */
	int *err;		/* why opening failed; 0 otherwise */
	char **msg;		/* ... and the message, naming the repository */
	bool *tried;
	char *pass;		/* read once, wiped by wal_repos_free */
};

/* The names, in order; nothing is opened yet. */
int wal_repos_init(struct wal_repos *wr, const struct pgk_globals *g,
		   const struct pgk_config *cfg);
void wal_repos_free(struct wal_repos *wr);

/*
 * What identifies the set for a spool scope: names, plugins and the plugin
 * options that say where the data goes (never a secret).
 */
void wal_repos_scope(const struct wal_repos *wr, struct pgk_buf *out);

/* Open repository i (once); 0, or its error (also kept in err[i], msg[i]). */
int wal_repos_open(struct wal_repos *wr, size_t i);
/*
 * Open every repository in parallel; each also checks that it belongs to
 * cluster sysid when sysid is not 0.  Returns how many opened.
 */
size_t wal_repos_open_all(struct wal_repos *wr, uint64_t sysid);

/* The message of a failure in repository i, prefixed with its name unless it
 * already says it. */
char *wal_repos_message(const struct wal_repos *wr, size_t i, const char *msg);

#endif

/*
 * The configuration file: INI, read with libinih.  Every error names the
 * file and the line.
 *
 *   [global]   repo, passphrase_file | passphrase_command, compression,
 *              pgdata, conninfo, plugin_dir, log_level, key_cache, delta, ...
 *   [repo:NAME] plugin = local|s3|b2|sftp|..., core keys below, and the
 *              plugin's own keys, which are handed to the plugin untouched.
 */
#ifndef PGK_CONFIG_H
#define PGK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <pgkeep/storage.h>

#define PGK_CONFIG_DEFAULT_PATH "/etc/pgkeep/pgkeep.conf"
#define PGK_WAL_PUSH_AHEAD_DEFAULT 8
#define PGK_WAL_FETCH_AHEAD_DEFAULT 4
#define PGK_WAL_AHEAD_MAX 64
#define PGK_KEY_CACHE_DEFAULT 900
#define PGK_KEY_CACHE_MAX 604800

struct pgk_config_repo {
	char *name;		/* NAME in [repo:NAME] */
	char *plugin;		/* required */
	int line;		/* line of the section header */
	/* Keys the agent itself understands in a repo section. */
	int lock_days;		/* 0 = no store-side lock */
	/* Everything else, for the plugin, in file order. */
	struct pgkeep_option *opts;
	int *opt_lines;		/* line of each option, for messages */
	size_t nopts;
	/* keep_* retention keys, in file order; the agent's, never the plugin's. */
	struct pgkeep_option *core_opts;
	int *core_opt_lines;
	size_t ncore_opts;
};

struct pgk_config {
	char *path;		/* the file read */
	char *repo;		/* default repository name; NULL if unset */
	char *passphrase_file;
	char *passphrase_command;
	int compress_level;	/* 0 = none, else zstd level 1..19 (default 3) */
	char *pgdata;
	char *conninfo;
	char *plugin_dir;
	int log_level;		/* PGKEEP_LOG_*; -1 when unset */
	int jobs;		/* parallel workers; 0 when unset */
	int archive_timeout;	/* seconds; -1 when unset */
	/* How long a backup from a standby waits for the primary's archive to
	 * hold its WAL; seconds, -1 when unset. */
	int standby_wal_timeout;
	int passphrase_file_line;	/* lines, for messages; 0 when unset */
	int passphrase_command_line;
	struct pgk_config_repo *repos;
	size_t nrepos;
	/* [global] archive_repos: repositories wal-push writes to (comma list);
	 * NULL = the default repository alone. */
	char *archive_repos;
	/* Look-ahead: ready segments one wal-push also pushes, segments one
	 * wal-fetch prefetches; and where their records and files are kept
	 * (NULL = the default, see local/spool.h). */
	int wal_push_ahead;
	int wal_fetch_ahead;
	char *spool_dir;
	/* [global] key_cache: seconds the key agent keeps an unwrapped key after
	 * its last use; 0 = no agent (see local/keycache.h). */
	int key_cache;
	/* [global] delta: a backup stores a changed chunk as a delta against
	 * its predecessor in the previous backup (default yes). */
	bool delta;
	/* [global] checksums: what the server's backup_manifest of a base
	 * backup gives each file, "SHA256" (default) or "CRC32C"; static text. */
	const char *checksums;
	/* [schedule]: job name = cron expression, for the daemon. */
	struct pgkeep_option *schedule;
	int *schedule_lines;
	size_t nschedule;
	char *schedule_copy_to;
	char *schedule_copy_from;
};

/*
 * Read `path`.  Unknown keys, bad values, a missing or unreadable file, a
 * file that fails config_check_trusted, a secret in a file others can read
 * and a passphrase file that fails config_check_trusted as a secret are
 * errors (pgk_error set, "FILE:LINE: ..." where a line applies).
 */
int config_load(struct pgk_config *cfg, const char *path);
void config_free(struct pgk_config *cfg);

/* The repository named `name`, or the default one when name is NULL.  When the
 * config names no default and has exactly one repository, that one. */
int config_repo(const struct pgk_config *cfg, const char *name,
		const struct pgk_config_repo **out);

/*
 * The passphrase, from $PGKEEP_PASSPHRASE, else passphrase_file, else
 * passphrase_command (run through /bin/sh, its stdout, one trailing newline
 * stripped).  The caller frees it with secure_free(p, strlen(p)).
 */
int config_passphrase(const struct pgk_config *cfg, char **out);

/* The value of core option `key` (keep_*) in rc, or NULL. */
const char *config_repo_core_opt(const struct pgk_config_repo *rc, const char *key);

/* Split "a, b,c" into names; free with config_free_list. */
void config_split_list(const char *text, char ***out, size_t *n);
void config_free_list(char **v, size_t n);

/*
 * A file pgkeep takes code, settings or credentials from (the config,
 * passphrase and credential files, a plugin and its directory) must be
 * owned by the user running pgkeep or by root, and writable by nobody else;
 * a `secret` one also readable by nobody else.  Otherwise an error naming
 * `what`, the path, the owner and the mode.
 */
int config_check_trusted(const char *what, const char *path, const struct stat *sb, bool secret);

/* Every *_file option of rc (credentials, and ca_file, which is public) passes
 * config_check_trusted.  A file that does not exist is left to the plugin. */
int config_check_repo_files(const struct pgk_config *cfg, const struct pgk_config_repo *rc);

/* True when a conninfo (keywords or URI) carries a password. */
bool config_conninfo_has_password(const char *conninfo);

/*
 * Replace, in place, every secret of the configs loaded so far (the
 * conninfo's password, plugin credentials) that occurs in s by "***".
 */
void config_scrub_secrets(char *s);

/* Parse "zstd:3", "zstd", "none" into a level (0 = none). */
int config_parse_compression(const char *s, int *level);

#endif

/*
 * What monitoring asks of a repository — how old the newest backups are, the
 * newest archived WAL segment and how far archiving trails the server — shared
 * by `info --json` and `pgkeep metrics`.
 */
#ifndef PGK_MONITOR_H
#define PGK_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pg/walname.h"
#include "repo/manifest.h"
#include "repo/repo.h"

/* The server's side of archiving, asked once for every repository. */
struct monitor_server {
	bool up;			/* reachable and a primary */
	uint64_t sysid;
	uint32_t seg_size;
	char current[WAL_SEG_NAME_LEN + 1];	/* segment of pg_current_wal_lsn() */
	int64_t last_archived_time;	/* pg_stat_archiver; 0 when never */
};

struct monitor_health {
	int64_t now;
	const struct manifest *newest[3];	/* indexed by enum backup_type; NULL: none */
	size_t count[3];
	uint64_t wal_count;			/* segments; UINT64_MAX: not counted */
	char wal_newest[WAL_SEG_NAME_LEN + 1];	/* "" when none */
	int64_t wal_newest_mtime;		/* 0: unknown */
	int64_t lag_segments;			/* -1: unknown */
	int64_t lag_s;				/* -1: unknown */
};

/*
 * Ask the server (conninfo as in the config) where its WAL is.  Never fails:
 * a server that cannot be reached, or a standby, leaves srv->up false (the
 * reason is logged at debug level), since a monitor must still report the
 * repository.
 */
void monitor_server_query(const char *conninfo, struct monitor_server *srv);

/*
 * Fill h for repository r from its manifest list (oldest first) and its
 * newest WAL segment name (NULL: none), stat'ing that object for its age.
 * srv may be NULL.  Returns 0, or the store's error for the stat.
 */
int monitor_collect(struct monitor_health *h, struct repo *r, const struct manifest *list,
		    size_t n, const char *wal_newest, const struct monitor_server *srv);

/*
 * The newest segment under wal/, with the listing's count and mtime; for
 * callers that have not listed the WAL themselves.
 */
int monitor_list_wal(struct repo *r, char newest[WAL_SEG_NAME_LEN + 1], uint64_t *count);

/* Add newest_base_age_s, newest_dump_age_s to root, and newest, newest_age_s,
 * archive_lag_segments and archive_lag_s to its "wal" object. */
void monitor_json(json_object *root, const struct monitor_health *h);

#endif

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
 * The archived segments, per timeline, from a listing of wal/.  Comparing
 * names would make a stale segment of a higher timeline (a test restore
 * that archived into this repository, say) the newest and hide the live
 * one, so "newest" is decided per timeline:
 *
 * - The timeline the cluster is on: the server's current timeline when it
 *   can be asked (a primary of this repository's cluster); else, or when
 *   that timeline holds nothing yet (just promoted), the timeline whose
 *   segments were stored most recently (by the store's mtime; the higher
 *   timeline on a tie), among those not above the server's.
 * - On that timeline, the newest is its highest segment: PostgreSQL
 *   archives one timeline's segments in order.
 */
struct monitor_wal_tli {
	uint32_t tli;
	char last[WAL_SEG_NAME_LEN + 1];	/* highest segment name */
	int64_t stored;				/* newest mtime among its segments */
};

struct monitor_wal {
	struct monitor_wal_tli *t;
	size_t n;
	uint64_t count;				/* segments of every timeline */
};

/* Count one listed object (anything but a segment is ignored). */
void monitor_wal_add(struct monitor_wal *w, const char *name, const struct pgkeep_stat *st);
/* The newest segment as described above; "" when there is none.  srv may
 * be NULL; repo_sysid 0 when unknown. */
void monitor_wal_newest(const struct monitor_wal *w, const struct monitor_server *srv,
			uint64_t repo_sysid, char newest[WAL_SEG_NAME_LEN + 1]);
void monitor_wal_free(struct monitor_wal *w);

/*
 * List wal/ and choose its newest segment (monitor_wal_newest), with the
 * count of segments; for callers that have not listed the WAL themselves.
 */
int monitor_list_wal(struct repo *r, const struct monitor_server *srv,
		     char newest[WAL_SEG_NAME_LEN + 1], uint64_t *count);

/* Add newest_base_age_s, newest_dump_age_s to root, and newest, newest_age_s,
 * archive_lag_segments and archive_lag_s to its "wal" object. */
void monitor_json(json_object *root, const struct monitor_health *h);

#endif

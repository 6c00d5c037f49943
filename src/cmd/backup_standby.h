/*
 * WAL a base backup needs besides what the primary's archiver pushes on its
 * own: the history file of the backup's timeline, fetched from the server
 * when the archive lacks it, and the segments a backup taken from a standby
 * waits for while the primary's archiver is still to push them.
 */
#ifndef PGK_BACKUP_STANDBY_H
#define PGK_BACKUP_STANDBY_H

#include <stddef.h>
#include <stdint.h>

struct backup_label;
struct progress;
struct repo;

/* Seconds a backup from a standby waits for its WAL by default. */
#define STANDBY_WAL_TIMEOUT_DEFAULT 600

/*
 * Store history file `name` (text as the server sent it) in repository r,
 * unless the archive has it already.  It is checked as wal-push checks one,
 * and stored under the key wal-push uses, so that the archiver's later push
 * of the same file finds it identical.
 */
int backup_history_store(struct repo *r, const char *name, const char *text, size_t len);

/*
 * A standby writes no backup history file: the stop is the end position
 * the server gave at the end of BASE_BACKUP (its minimum recovery point).
 * hist becomes what a history file would have said; refused when the
 * backup_label does not say the backup came from a standby (the server was
 * promoted meanwhile) or the server gave no end position.
 */
int backup_standby_stop(const struct backup_label *bl, uint64_t end_lsn, uint32_t end_tli,
			    struct backup_label *hist);

struct standby_wait {
	struct repo *repo;
	const char *backup_id;
	uint32_t wal_seg_size;
	int timeout;			/* seconds */
	int (*interrupted)(void);	/* 0, or the error for a caught signal */
	struct progress *progress;	/* NULL: nothing shown */
};

/*
 * Every segment from first through last on timeline tli, in the repository
 * the primary archives to, polled until w->timeout: a standby archives
 * nothing by itself, and pg_switch_wal cannot run on it.
 */
int backup_standby_wait(const struct standby_wait *w, uint64_t first, uint64_t last,
			    uint32_t tli);

#endif

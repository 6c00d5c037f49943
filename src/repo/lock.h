/*
 * Repository locks, kept in the store itself so they work for every plugin
 * and every host: commands that read or add data (backup, restore, verify,
 * copy) hold a shared lock, the garbage-collecting part of expire holds an
 * exclusive one.  A lock is an object locks/KIND-HOST-PID-RANDOM recording
 * host, pid, command and the time it was last refreshed; a thread refreshes
 * it while held.  A lock whose holder is a dead process on this host, or that
 * has not been refreshed for PGK_LOCK_STALE seconds, is stale and ignored.
 *
 * Taking a lock writes it first and then looks at the others, so two
 * contenders both see each other and neither proceeds wrongly.
 */
#ifndef PGK_LOCK_H
#define PGK_LOCK_H

#include <stdbool.h>

#include "repo/repo.h"

#define PGK_LOCK_REFRESH 60	/* seconds between refreshes */
#define PGK_LOCK_STALE 900	/* seconds without refresh = holder gone */

enum lock_kind {
	LOCK_SHARED,
	LOCK_EXCLUSIVE,
};

struct repo_lock;

/*
 * Take a lock for `command`, waiting up to wait_seconds for a conflicting one
 * to go away (0 = do not wait).  On conflict the error names the holder:
 * "repository R is locked by expire (host h, pid p, for 12 s)".
 */
int lock_acquire(struct repo_lock **out, struct repo *r, enum lock_kind kind,
		 const char *command, int wait_seconds);
/* Stop refreshing and remove the lock object.  NULL is fine.  A removal that
 * fails is a warning, and the calling thread's error message is kept. */
void lock_release(struct repo_lock *l);

/* Remove stale locks (reported at info level); returns how many. */
int lock_clean_stale(struct repo *r);

#endif

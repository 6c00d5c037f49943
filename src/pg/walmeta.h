/*
 * The small text files PostgreSQL archives beside its segments: timeline
 * history files (NNNNNNNN.history) and backup history files (.backup).
 * Once stored, a bad one blocks the good one forever (an object is never
 * overwritten), so wal-push checks them before it stores anything.
 */
#ifndef PGK_WALMETA_H
#define PGK_WALMETA_H

#include <stddef.h>

#include "pg/walname.h"

/* Larger than any history or backup history file PostgreSQL writes. */
#define WAL_META_MAX (1u * 1024 * 1024)

/*
 * A timeline history file for timeline wn->tli, as PostgreSQL's
 * readTimeLineHistory reads it: one "PARENT_TLI <tab> X/X <tab> reason"
 * line per ancestor timeline, in increasing order and each below wn->tli;
 * blank lines and '#' comments allowed; at least one entry.  `what` names
 * the file in the message.  PGKEEP_EINVAL when it is not one.
 */
int walmeta_check_history(const void *buf, size_t len, const struct wal_name *wn,
			  const char *what);

/*
 * A backup history file, as pg_backup_stop writes it: "KEY: value" lines,
 * starting with START WAL LOCATION (whose segment and offset must be those
 * of the file's name) and with a STOP WAL LOCATION not before it.
 */
int walmeta_check_backup(const void *buf, size_t len, const struct wal_name *wn,
			 const char *what);

#endif

/*
 * Is the WAL a base backup needs all in the archive?  From the backup's
 * start to its stop on its own timeline (for a consistent restore), and on
 * to the newest archived segment, possibly on later timelines (for recovery
 * to any later point).  Used by verify and drill.
 */
#ifndef PGK_WALCHECK_H
#define PGK_WALCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "repo/manifest.h"
#include "repo/repo.h"

struct wal_archive {
	struct wal_seg *segs;	/* sorted by segment number, then timeline */
	size_t n;
	uint64_t newest;	/* highest segment number present */
	uint32_t seg_size;
};

typedef void (*walcheck_report_fn)(void *payload, const char *msg);

/* List wal/ once.  seg_size 0 means the default 16 MiB. */
int wal_archive_load(struct repo *r, uint32_t seg_size, struct wal_archive *out);
void wal_archive_free(struct wal_archive *a);

/*
 * Report every run of missing segments the backup needs ("backup ID: WAL
 * segments A..B are missing"); with through_newest, also those between its
 * stop and the newest archived segment.  Returns the number of gaps found.
 */
size_t wal_archive_check(const struct wal_archive *a, const struct manifest *m,
			 bool through_newest, walcheck_report_fn report, void *payload);

#endif

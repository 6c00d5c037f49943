/*
 * Garbage collection in the store: chunks nothing refers to, and WAL older
 * than anything a remaining base backup needs.  Objects the store still
 * locks (S3 Object Lock, B2 file lock) are skipped and counted.
 */
#ifndef PGK_GC_H
#define PGK_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/walname.h"
#include "repo/repo.h"

struct gc_result {
	size_t removed;
	uint64_t bytes;
	size_t locked;	/* kept: locked in the store */
	size_t young;	/* kept: written within the grace period */
};

/* True when the store can tell; *until is 0 when the object is not locked. */
bool gc_locked_until(struct repo *r, const char *key, int64_t *until);

/*
 * Remove every chunk whose id is not in refs (sorted, unique), nor the base
 * of a delta that stays (deltas/ records), and that is older than grace
 * seconds; then the delta records of chunks that are gone.  dry_run counts
 * without removing.
 */
int gc_sweep_chunks(struct repo *r, char **refs, size_t nrefs, int64_t grace, bool dry_run,
		    struct gc_result *res);

/* Remove segments, .partial and .backup files before `keep_from` (any timeline). */
int gc_sweep_wal(struct repo *r, const struct wal_name *keep_from, bool dry_run,
		 struct gc_result *res);

/*
 * Chunk ids present in the store but neither in refs nor the base of a
 * delta in refs; free with gc_free_ids.
 */
int gc_unreferenced_chunks(struct repo *r, char **refs, size_t nrefs, char ***out, size_t *n);
void gc_free_ids(char **ids, size_t n);

/*
 * "ID-BASE" for every delta record of a chunk in refs whose base is not in
 * present (both sorted, unique); free with gc_free_ids.
 */
int gc_missing_bases(struct repo *r, char **refs, size_t nrefs, char **present, size_t npresent,
		     char ***out, size_t *n);

#endif

/*
 * Garbage collection in the store: chunks nothing refers to, and WAL older
 * than anything a remaining base backup needs.  Objects the store still
 * locks (S3 Object Lock, B2 file lock) are skipped and counted.
 *
 * Chunk sets are worked out one range of ids (by first byte) at a time, in
 * as many passes as keep each under a budget of ids, so memory does not grow
 * with the repository: a pass holds the ids of its range only, as 32 bytes.
 */
#ifndef PGK_GC_H
#define PGK_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/walname.h"
#include "repo/manifest.h"
#include "repo/repo.h"

/* Ids one pass holds at once at most, by default: 16 MiB of 32-byte ids. */
#define GC_PASS_IDS ((size_t)512 * 1024)
/* One pass per value of the first byte at most. */
#define GC_MAX_PASSES 256u

struct gc_result {
	size_t removed;
	uint64_t bytes;
	size_t locked;	/* kept: locked in the store */
	size_t young;	/* kept: written within the grace period */
};

/*
 * Told every chunk id (64 hex digits) a live backup names.  Returns 1 when
 * the id is in the pass's range and its chunk is not in the store (known to
 * gc_check_chunks only), 0 otherwise, or a negative error.
 */
typedef int (*gc_ref_fn)(void *arg, const char *id);

/* The chunks live backups name, told once per pass, in any order, repeats allowed. */
struct gc_refs {
	int (*walk)(void *payload, unsigned pass, unsigned npasses, gc_ref_fn fn, void *arg);
	void *payload;
	uint64_t total;		/* at least the number of ids one walk tells */
};

/*
 * The backups in list (summaries or whole) not marked in skip (NULL: none):
 * gc_refs_of_backups fills refs to read their chunks through cursors, one
 * stream at a time.  refs->total counts the chunks of every backup in list,
 * skipped or not: a bound on what complete backups stored, so the passes
 * bound the listing of a range as well as its live ids.  b must outlive refs.
 */
struct gc_backups {
	struct repo *r;
	const struct manifest *list;
	size_t n;
	const bool *skip;
};

void gc_refs_of_backups(struct gc_refs *refs, const struct gc_backups *b);

/* The smallest power of two (at most GC_MAX_PASSES) that leaves total/passes <= budget. */
unsigned gc_passes(uint64_t total, size_t budget);

/* True when the store can tell; *until is 0 when the object is not locked. */
bool gc_locked_until(struct repo *r, const char *key, int64_t *until);

/*
 * Remove every chunk that refs do not name, nor is the base of a delta that
 * stays (deltas/ records), and that is older than grace seconds; then the
 * delta records of chunks that are gone.  A chunk younger than grace stays,
 * and so does its base.  budget is the ids a pass may hold (GC_PASS_IDS);
 * dry_run counts without removing.
 */
int gc_sweep_chunks(struct repo *r, const struct gc_refs *refs, size_t budget, int64_t grace,
		    bool dry_run, struct gc_result *res);

/* Remove segments, .partial and .backup files before `keep_from` (any timeline). */
int gc_sweep_wal(struct repo *r, const struct wal_name *keep_from, bool dry_run,
		 struct gc_result *res);

/*
 * What verify needs to know of the chunks: refs' walks are told (by 1)
 * which named chunks are missing from the store; unreferenced counts chunks
 * present but neither named nor the base of a named delta; missing_bases are
 * "ID-BASE" for every delta record of a named chunk whose base is missing.
 */
struct gc_check {
	size_t unreferenced;
	char **missing_bases;
	size_t nmissing_bases;
};

int gc_check_chunks(struct repo *r, const struct gc_refs *refs, size_t budget,
		    struct gc_check *out);
void gc_check_free(struct gc_check *c);

#endif

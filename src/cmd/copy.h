/*
 * The parts of copy, shared by its files: the command and one backup's copy
 * (copy.c), sets of chunk ids and sorted key lists (copy_sets.c), the
 * worker threads (copy_par.c), chunks (copy_chunks.c) and WAL (copy_wal.c).
 */
#ifndef PGK_CMD_COPY_H
#define PGK_CMD_COPY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#define COPY_MAX_JOBS 32

/* ---- copy_sets.c: a set of chunk ids, optionally mapping each to another id ---- */

struct idmap_slot {
	uint8_t key[32];
	uint8_t val[32];
	bool used;
};

/*
 * max, when not 0, bounds n: a full map takes no new ids (it is a cache, and
 * whoever uses it must do without what it lacks); full says one was turned
 * away.
 */
struct idmap {
	struct idmap_slot *slots;
	size_t cap, n;		/* cap: a power of two */
	size_t max;
	bool full;
};

struct idmap_slot *idmap_find(const struct idmap *m, const uint8_t key[32]);
/* Insert or overwrite; val may be NULL for a plain set.  A full map only overwrites. */
void idmap_put(struct idmap *m, const uint8_t key[32], const uint8_t *val);
void idmap_free(struct idmap *m);

/* ---- copy_sets.c: sorted key lists (WAL and manifests) ---- */

struct keylist {
	char **keys;
	uint64_t *sizes;
	size_t n;
};

/* A store listing's callback: adds key (and its size). */
int keylist_add(void *payload, const char *key, const struct pgkeep_stat *st);
bool keylist_has(const struct keylist *l, const char *key);
/* qsort must not see the NULL array of an empty listing. */
void keylist_sort(struct keylist *l);
void keylist_free(struct keylist *l);

struct copy_stats {
	size_t chunks_sent, chunks_present;
	uint64_t bytes_sent;		/* stored bytes written to B */
	size_t wal_sent, wal_present;
	uint64_t wal_bytes;
};

struct copy {
	struct repo *from, *to;
	int jobs;
	pthread_mutex_t mu;		/* guards present, map and stats */
	struct idmap present;		/* chunk ids B holds (B's ids) */
	bool present_partial;		/* B holds more than present could take */
	struct idmap map;		/* A's chunk id -> B's */
	struct copy_stats st;		/* for the backup being copied */
	struct copy_stats total;
	struct keylist wal_to;		/* wal/ keys B holds, sorted */
	bool wal_done;
};

/* ---- copy_par.c ---- */

/* Run fn(arg, i, bufs) for i in [0, n) on up to c->jobs threads; the first
 * failure stops the others and is returned with its message. */
struct par_bufs {
	struct pgk_buf obj, plain, sealed;
};

typedef int (*par_fn)(struct copy *c, void *arg, size_t i, struct par_bufs *b);

int copy_par_run(struct copy *c, size_t n, par_fn fn, void *arg);

/* ---- copy_chunks.c ---- */

/*
 * One chunk of a stream (arg: the batch of chunks): on return mc names B's
 * chunk and `stored` counts the bytes this copy wrote for it.
 */
int copy_chunk(struct copy *c, void *arg, size_t i, struct par_bufs *b);
/* The chunk ids B holds, from one listing. */
int copy_present_add(void *payload, const char *key, const struct pgkeep_stat *st);
/* Learn A id -> B id from one backup both repositories hold. */
int copy_learn_pair(struct copy *c, const char *id);

/* ---- copy_wal.c ---- */

/* Every segment of m's own range is in B (after the WAL was copied). */
int copy_check_backup_wal(struct copy *c, const struct manifest *m);
/*
 * The WAL B needs for its base backups: every file of A from the oldest
 * base backup B will hold on, and every history file, that B lacks.
 */
int copy_wal(struct copy *c, const struct manifest *bases, size_t nbases);

#endif

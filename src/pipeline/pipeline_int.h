/*
 * What the pipeline's writer, reader and deltas share: the writer's ring of
 * chunk slots, the reference it finds delta bases in, and a few helpers.
 * Not for use outside src/pipeline/.
 */
#ifndef PGK_PIPELINE_INT_H
#define PGK_PIPELINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/pipeline.h"
#include "repo/chunks.h"
#include "repo/lists.h"

/* More threads than this only add contention on one store handle. */
#define PIPE_MAX_JOBS 64

/*
 * A slot's life: the writer's thread reads into it until the chunker finds a
 * cut (the bytes after the cut move to the next slot), then submits it; a
 * worker names, checks and stores it while the hasher adds it to the stream
 * checksum; once both are done it is collected in stream order and reused.
 * Every byte is copied once from the pipe and read in place after that.
 */
/*
 * A delta is sealed against at most four bases, taken from the first
 * reference chunks a new chunk overlaps: more than this many candidates
 * only matter when the first ones repeat or are too large.
 */
#define PRED_MAX 16

struct wslot {
	uint8_t *data;		/* the chunk's plaintext, params.max of capacity */
	size_t len;
	bool done;		/* the worker has finished with it */
	char id[65];
	uint32_t stored;	/* bytes newly stored, 0 for a dedup hit */
	uint64_t anchor;	/* keys_chunk_anchor of its first bytes */
	/*
	 * The reference chunks [pred, pred_end) it most likely replaces, and
	 * the ids of the first of them, copied: the window moves on meanwhile.
	 */
	size_t pred, pred_end;
	size_t npred;
	uint8_t pred_id[PRED_MAX][32];
	size_t nbases;		/* stored as a delta of that many bases, 0 whole */
};

/* The reference's chunks in the window that have an anchor, sorted by it. */
struct anchor_ent {
	uint64_t anchor;
	size_t idx;		/* in the whole reference stream */
};

/* A reference chunk in the window. */
struct ref_ent {
	uint8_t id[32];
	uint64_t off;		/* where it starts in the reference stream */
	uint64_t anchor;
	uint32_t size;
	bool known;
};

/* A worker's buffers, kept from chunk to chunk. */
struct wbufs {
	struct pgk_buf sealed, alt, obj, cand;
	struct obj_bases bases;
};

struct stream_writer {
	struct repo *r;
	struct manifest_stream *dest;
	struct chunker_params params;
	struct stream_sum sum;	/* the hasher's while it has a chunk in hand */
	uint64_t size;

	/* The slot being filled (slots[next_submit]), NULL when none is held. */
	struct wslot *fill;
	struct chunker_scan scan;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;		/* to workers: a chunk is queued, or stop */
	pthread_cond_t hash_cv;		/* to the hasher: a chunk is queued, or stop */
	pthread_cond_t done_cv;		/* to the writer: a chunk is done, or failed */
	struct wslot *slots;
	size_t nslots;
	/*
	 * Sequence numbers: submitted, taken by a worker, hashed, collected in
	 * order.  next_collect <= next_hash, next_take <= next_submit.
	 */
	uint64_t next_submit, next_take, next_hash, next_collect;
	bool stop;
	int err;			/* first failure, sticky */
	char errmsg[PGKEEP_ERRLEN];

	pthread_t *threads;		/* workers, then the hasher */
	int nthreads;
	bool finished;

	/* The chunk list as collected: one list object's worth at a time. */
	struct list_out lo;

	/*
	 * Deltas, the writer's thread only: a window of the same stream in
	 * the previous backup (win[0] is its chunk win_base), read through a
	 * cursor as this stream moves on, the window's chunks by anchor; where
	 * the next chunk starts in this stream and how far this stream is
	 * ahead of the reference there.
	 */
	bool have_ref;
	struct manifest_cursor *ref_cur;	/* NULL once read to the end */
	struct ref_ent *win;
	size_t win_n, win_base;
	uint64_t ref_next_off;			/* where the next chunk read starts */
	struct anchor_ent *by_anchor;
	size_t n_anchor;
	uint64_t pos;
	int64_t drift;
};

/* Once per process: large buffers go back to the system when freed. */
void pipeline_memory_mode(void);
/* jobs within 1..PIPE_MAX_JOBS. */
int pipeline_clamp_jobs(int jobs);
const char *pipeline_stream_name(const struct manifest_stream *s);
/* How many chunk slots a ring of jobs workers has, for chunks up to max bytes. */
size_t pipeline_ring_slots(int jobs, size_t max);

/* Start following ref (may be NULL: no deltas) as the writer's reference. */
int delta_ref_open(struct stream_writer *w, const struct manifest_stream *ref);
/*
 * In the writer's thread, in stream order, as a chunk is submitted: its
 * anchor, and the reference chunks it most likely replaces.
 */
int delta_mark_chunk(struct stream_writer *w, struct wslot *slot);
/*
 * Seal the chunk as a delta of the whole chunks behind its predecessors.
 * 0: b->sealed holds it (slot->nbases says how many bases, 0 when whole
 * turned out smaller); 1: store it whole instead; or an error.
 */
int delta_seal(struct stream_writer *w, struct wslot *slot, struct wbufs *b);
/* Give back the buffers only a delta needs, between chunks. */
void delta_release_bufs(struct wbufs *b);

#endif

/*
 * The backup data path.  Writing: bytes are cut into chunks in the caller's
 * thread, straight in a bounded ring of chunk slots that feeds `jobs` workers
 * (name, dedup-check, seal, store) and one hasher (the whole-stream checksum);
 * results are collected in stream order.  Reading runs the same ring
 * backwards: workers fetch and verify ahead, the hasher checks the stream,
 * the caller delivers strictly in order.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"

/* More threads than this only add contention on one store handle. */
#define PIPE_MAX_JOBS 64

void chunk_key(const char *id, char *key, size_t keylen)
{
	snprintf(key, keylen, "chunks/%.2s/%s", id, id);
}

void delta_key(const char *id, const char *base, char *key, size_t keylen)
{
	snprintf(key, keylen, "deltas/%.2s/%s-%s", id, id, base);
}

/*
 * Chunk-sized buffers come and go on every worker thread.  glibc raises its
 * mmap threshold each time one is freed, after which such buffers stay in
 * per-thread arenas and count as resident for good (restore of a dump with
 * 4 jobs: 61-69 MiB instead of 42-47).  A fixed threshold hands them back
 * when freed.  Set by the first pipeline of a process: wal-push, which has
 * none, keeps the default that lets its large buffers be reused.
 */
static void fixed_mmap_threshold(void)
{
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

static void memory_mode(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, fixed_mmap_threshold);
}

static int clamp_jobs(int jobs)
{
	if (jobs < 1)
		return 1;
	return jobs > PIPE_MAX_JOBS ? PIPE_MAX_JOBS : jobs;
}

static const char *stream_name(const struct manifest_stream *s)
{
	return s->name ? s->name : "(unnamed)";
}

/* ---- writing ---- */

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

/* ---- the reference: the previous backup's stream, for deltas ---- */

/*
 * A delta's bases together stay under this, so that a worker's memory stays
 * bounded (with the chunk itself, a zstd window of 2^24).
 */
#define DELTA_BASE_BYTES_MAX ((size_t)6 << 20)

static int cmp_anchor(const void *a, const void *b)
{
	const struct anchor_ent *x = a, *y = b;

	if (x->anchor != y->anchor)
		return x->anchor < y->anchor ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * The reference is read into a window of at most this many chunks around
 * where this stream's chunks map to (about 32 GB of stream at the average
 * chunk size, 2 MiB with its index): anchors further away are not found,
 * which costs deltas, never correctness.
 */
size_t pipeline_ref_window = 32768;

static void ref_drop(struct stream_writer *w)
{
	manifest_cursor_close(w->ref_cur);
	w->ref_cur = NULL;
	w->have_ref = false;
	w->win_n = 0;
	w->n_anchor = 0;
}

static void ref_reindex(struct stream_writer *w)
{
	size_t i;

	w->n_anchor = 0;
	for (i = 0; i < w->win_n; i++)
		if (w->win[i].known)
			w->by_anchor[w->n_anchor++] =
				(struct anchor_ent){ w->win[i].anchor, w->win_base + i };
	qsort(w->by_anchor, w->n_anchor, sizeof(*w->by_anchor), cmp_anchor);
}

/* Read reference chunks until the window is full or the reference ends. */
static int ref_read(struct stream_writer *w)
{
	const struct manifest_chunk *mc;
	struct ref_ent *e;
	int ret;

	while (w->ref_cur && w->win_n < pipeline_ref_window) {
		ret = manifest_cursor_next(w->ref_cur, &mc);
		if (ret <= 0) {
			manifest_cursor_close(w->ref_cur);
			w->ref_cur = NULL;
			if (ret < 0)
				return ret;
			break;
		}
		e = &w->win[w->win_n++];
		if (!hex_decode(mc->id, 32, e->id))
			memset(e->id, 0, sizeof(e->id));
		e->off = w->ref_next_off;
		e->size = mc->size;
		e->known = mc->known;
		e->anchor = mc->anchor;
		w->ref_next_off += mc->size;
	}
	return 0;
}

/* The first chunk in the window that ends after off, as an index into it. */
static size_t win_at(const struct stream_writer *w, uint64_t off)
{
	size_t lo = 0, hi = w->win_n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (w->win[mid].off + w->win[mid].size <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Move the window so that off lies in its first three quarters (or the
 * reference has been read to the end), half a window at a time.  A
 * damaged reference only costs deltas; a store failure fails the backup.
 */
static int ref_follow(struct stream_writer *w, uint64_t off)
{
	size_t half = pipeline_ref_window / 2;
	bool moved = false;
	int ret = 0;

	while (w->ref_cur && (w->win_n < pipeline_ref_window ||
			      win_at(w, off) >= pipeline_ref_window / 4 * 3)) {
		if (w->win_n == pipeline_ref_window) {
			memmove(w->win, w->win + half, (w->win_n - half) * sizeof(*w->win));
			w->win_n -= half;
			w->win_base += half;
		}
		ret = ref_read(w);
		moved = true;
		if (ret)
			break;
	}
	if (ret == PGKEEP_ECORRUPT || ret == PGKEEP_EAUTH) {
		pgk_log_warning("stream %s: no more deltas: %s", stream_name(w->dest),
				pgk_errmsg());
		pgk_error_clear();
		ref_drop(w);
		return 0;
	}
	if (ret)
		return ret;
	if (moved)
		ref_reindex(w);
	return 0;
}

static int ref_open(struct stream_writer *w, const struct manifest_stream *ref)
{
	if (!ref || !ref->nchunks || pipeline_ref_window < 4)
		return 0;
	w->have_ref = true;
	w->win = xmalloc(pipeline_ref_window * sizeof(*w->win));
	w->by_anchor = xmalloc(pipeline_ref_window * sizeof(*w->by_anchor));
	manifest_stream_cursor_open(w->r, ref, &w->ref_cur);
	return ref_follow(w, 0);
}

static uint64_t distance(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * The reference chunk that started with the same bytes, nearest to where
 * this stream's drift puts it (runs of zero pages share anchors), or -1.
 */
static long anchored(const struct stream_writer *w, uint64_t anchor, uint64_t expect)
{
	size_t lo = 0, hi = w->n_anchor, mid, i;
	long best = -1;
	uint64_t best_off = 0, off;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (w->by_anchor[mid].anchor < anchor)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < w->n_anchor && w->by_anchor[i].anchor == anchor; i++) {
		off = w->win[w->by_anchor[i].idx - w->win_base].off;
		if (best < 0 || distance(off, expect) < distance(best_off, expect)) {
			best = (long)w->by_anchor[i].idx;
			best_off = off;
		}
	}
	return best;
}

/*
 * The first reference chunk that ends after off, by its index in the whole
 * reference (the window's end when none in it does; its start for an
 * offset before it).
 */
static size_t ref_chunk_at(const struct stream_writer *w, uint64_t off)
{
	return w->win_base + win_at(w, off);
}

/*
 * In the writer's thread, in stream order, as a chunk is submitted: where
 * its bytes most likely were in the reference.  A chunk that starts as a
 * reference chunk did pins the two streams together there; any other maps
 * through the offset between them at the last such pin.  So a cut point
 * that moved, appeared or vanished (one chunk where there were two, or the
 * reverse) still finds the reference chunks that hold its bytes.
 */
/* Where the next chunk's first byte was in the reference, by the drift. */
static uint64_t mapped_pos(const struct stream_writer *w)
{
	return (int64_t)w->pos > w->drift ? (uint64_t)((int64_t)w->pos - w->drift) : 0;
}

static int mark_chunk(struct stream_writer *w, struct wslot *slot)
{
	uint64_t start;
	size_t i;
	long k;
	int ret;

	slot->anchor = keys_chunk_anchor(&w->r->keys, slot->data, slot->len);
	slot->pred = slot->pred_end = 0;
	slot->npred = 0;
	if (w->have_ref) {
		ret = ref_follow(w, mapped_pos(w));
		if (ret)
			return ret;
	}
	if (w->have_ref && w->win_n) {
		k = anchored(w, slot->anchor, mapped_pos(w));
		if (k >= 0)
			w->drift = (int64_t)w->pos - (int64_t)w->win[k - w->win_base].off;
		start = mapped_pos(w);
		ret = ref_follow(w, start + slot->len - 1);
		if (ret)
			return ret;
		slot->pred = ref_chunk_at(w, start);
		slot->pred_end = ref_chunk_at(w, start + slot->len - 1) + 1;
		if (slot->pred_end > w->win_base + w->win_n)
			slot->pred_end = w->win_base + w->win_n;
		for (i = slot->pred; i < slot->pred_end && slot->npred < PRED_MAX; i++)
			memcpy(slot->pred_id[slot->npred++], w->win[i - w->win_base].id, 32);
	}
	w->pos += slot->len;
	return 0;
}

/* ---- storing one chunk ---- */

/*
 * Fetch chunk id's object into obj (reset first), its key into key.  A
 * chunk that should be there and is not means a damaged repository; `role`
 * says which ("chunk", "base chunk").
 */
static int get_chunk(struct repo *r, const char *id, const char *role, struct pgk_buf *obj,
		     char key[CHUNK_KEY_MAX])
{
	int ret;

	chunk_key(id, key, CHUNK_KEY_MAX);
	buf_reset(obj);
	ret = obj_fetch(r->store, key, OBJ_CHUNK, obj);
	if (ret == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_ECORRUPT, "%s %s missing (%s)", role, id, key);
	return ret;
}

/* Read whole chunk id (never a delta) into plain, appended. */
static int read_whole(struct repo *r, const char *id, struct pgk_buf *obj, struct pgk_buf *plain)
{
	char key[CHUNK_KEY_MAX];
	int ret = get_chunk(r, id, "base chunk", obj, key);

	return ret ? ret : obj_open(&r->keys, OBJ_CHUNK, key, obj->data, obj->len, plain);
}

static bool has_base(const struct obj_bases *bs, const char *id)
{
	size_t i;

	for (i = 0; i < bs->n; i++)
		if (strcmp(bs->id[i], id) == 0)
			return true;
	return false;
}

/*
 * Append whole chunk id, fetched into obj, to bs; 1 when it would take the
 * bases past their limit (it is left out), else 0 or an error.
 */
static int append_base(struct repo *r, struct obj_bases *bs, const char *id,
		       const struct pgk_buf *obj, const char *key, uint64_t *stored)
{
	size_t before = bs->plain.len;
	int ret;

	ret = obj_open(&r->keys, OBJ_CHUNK, key, obj->data, obj->len, &bs->plain);
	if (ret)
		return ret;
	if (bs->plain.len > DELTA_BASE_BYTES_MAX && bs->n > 0) {
		secure_zero(bs->plain.data + before, bs->plain.len - before);
		bs->plain.len = before;
		return 1;
	}
	memcpy(bs->id[bs->n++], id, 65);
	*stored += obj->len;
	return 0;
}

/*
 * Add the whole chunk(s) behind reference chunk id to bs: id itself, or
 * when it is a delta, its own bases (a base is never a delta).  Stops,
 * returning 0, where the bases would grow past their limits; *stored adds
 * the bytes the bases take in the store.
 */
static int add_bases(struct repo *r, const char *id, struct obj_bases *bs, struct wbufs *b,
		     uint64_t *stored)
{
	struct obj_bases own;
	char key[CHUNK_KEY_MAX];
	size_t i;
	int ret;

	if (has_base(bs, id))
		return 0;
	ret = get_chunk(r, id, "base chunk", &b->cand, key);
	if (ret)
		return ret;
	/* A whole chunk is its own base: open what was just fetched. */
	if (!obj_is_delta(b->cand.data, b->cand.len)) {
		ret = append_base(r, bs, id, &b->cand, key, stored);
		return ret < 0 ? ret : 0;
	}
	ret = obj_chunk_bases(&r->keys, key, b->cand.data, b->cand.len, &own);
	for (i = 0; ret == 0 && i < own.n && bs->n < OBJ_DELTA_MAX_BASES; i++) {
		if (has_base(bs, own.id[i]))
			continue;
		ret = get_chunk(r, own.id[i], "base chunk", &b->obj, key);
		if (ret == 0)
			ret = append_base(r, bs, own.id[i], &b->obj, key, stored);
	}
	return ret < 0 ? ret : 0;
}

/*
 * Before a delta is stored, deltas/XX/ID-BASE records that it needs BASE,
 * one record per base: expire keeps a base as long as any chunk that needs
 * it, whichever backup, copy or race stored that chunk.  Written first, so
 * a delta never exists without its records; a record without its chunk is
 * removed by the next expire.
 */
static int record_delta(struct repo *r, const char *id, const struct obj_bases *bs)
{
	char key[DELTA_KEY_MAX];
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < bs->n; i++) {
		delta_key(id, bs->id[i], key, sizeof(key));
		ret = repo_put(r, key, OBJ_META, "", 0, PGKEEP_PUT_IF_ABSENT);
		if (ret == PGKEEP_EEXISTS)
			ret = 0;
	}
	return ret;
}

static void swap_bufs(struct pgk_buf *a, struct pgk_buf *b)
{
	struct pgk_buf t = *a;

	*a = *b;
	*b = t;
}

/*
 * Seal the chunk as a delta of the whole chunks behind its predecessors.
 * 0: b->sealed holds it (slot->nbases says how many bases, 0 when whole
 * turned out smaller); 1: store it whole instead; or an error.
 */
static int seal_delta(struct stream_writer *w, struct wslot *slot, struct wbufs *b)
{
	struct obj_bases *bs = &b->bases;
	struct repo *r = w->r;
	char key[CHUNK_KEY_MAX];
	uint64_t stored = 0;
	size_t i;
	int ret = 0;

	chunk_key(slot->id, key, sizeof(key));
	bs->n = 0;
	buf_reset(&bs->plain);
	for (i = 0; ret == 0 && i < slot->npred && bs->n < OBJ_DELTA_MAX_BASES &&
			     bs->plain.len < DELTA_BASE_BYTES_MAX; i++) {
		char id[65];

		hex_encode(slot->pred_id[i], 32, id);
		ret = add_bases(r, id, bs, b, &stored);
	}
	if (ret == PGKEEP_ECORRUPT || ret == PGKEEP_EAUTH) {
		/*
		 * A damaged or missing base: storing the chunk whole is always
		 * right, and the damage is verify's to report.  A store that
		 * fails fails the backup, as it would a moment later anyway.
		 */
		pgk_log_warning("chunk %s stored whole: %s", slot->id, pgk_errmsg());
		pgk_error_clear();
		ret = 1;
	}
	if (ret == 0 && bs->n == 0)
		ret = 1;
	if (ret == 0)
		ret = obj_seal_delta(&r->keys, key, r->compress_level, bs, slot->data,
				     slot->len, &b->sealed);
	secure_zero(bs->plain.data, bs->plain.len);
	if (ret)
		return ret;
	slot->nbases = bs->n;
	/*
	 * A delta worth less than half of what its bases cost whole, scaled to
	 * this chunk (its bytes have drifted away): whole may be smaller, and
	 * storing it whole makes it the next backup's base.
	 */
	if (b->sealed.len > stored * slot->len / (2 * (uint64_t)bs->plain.len + 1)) {
		buf_reset(&b->alt);
		ret = obj_seal(&r->keys, OBJ_CHUNK, key, r->compress_level, slot->data,
			       slot->len, &b->alt);
		if (ret)
			return ret;
		if (b->alt.len <= b->sealed.len) {
			swap_bufs(&b->sealed, &b->alt);
			slot->nbases = 0;
		}
	}
	return 0;
}

/*
 * What only a delta needs goes back to the system between chunks (large
 * buffers are mmapped, see memory_mode): four workers each keeping megabytes of
 * bases they no longer need would cost more than the chunks in flight.
 */
static void release_delta_bufs(struct wbufs *b)
{
	secure_free(b->bases.plain.data, b->bases.plain.cap);
	b->bases.plain = (struct pgk_buf)PGK_BUF_INIT;
	buf_free(&b->cand);
	buf_free(&b->obj);
	buf_free(&b->alt);
}

/* Name the chunk, skip it when the repository has it, else seal and store. */
static int store_chunk(struct stream_writer *w, struct wslot *slot, struct wbufs *b)
{
	struct repo *r = w->r;
	char key[CHUNK_KEY_MAX];
	struct pgkeep_stat st;
	int ret;

	keys_chunk_id(&r->keys, slot->data, slot->len, slot->id);
	chunk_key(slot->id, key, sizeof(key));
	slot->stored = 0;
	slot->nbases = 0;
	ret = store_stat(r->store, key, &st);
	if (ret == 0)
		return 0;
	if (ret != PGKEEP_ENOTFOUND)
		return ret;
	buf_reset(&b->sealed);
	ret = 1;
	if (slot->npred && r->delta && r->compress_level > 0)
		ret = seal_delta(w, slot, b);
	if (ret < 0)
		return ret;
	if (ret > 0)
		ret = obj_seal(&r->keys, OBJ_CHUNK, key, r->compress_level, slot->data,
			       slot->len, &b->sealed);
	if (ret == 0 && slot->nbases)
		ret = record_delta(r, slot->id, &b->bases);
	if (ret)
		return ret;
	ret = store_put(r->store, key, b->sealed.data, b->sealed.len, PGKEEP_PUT_IF_ABSENT);
	release_delta_bufs(b);
	/* Another writer stored the same content meanwhile: same plaintext. */
	if (ret == PGKEEP_EEXISTS)
		return 0;
	if (ret)
		return ret;
	slot->stored = (uint32_t)b->sealed.len;
	pgk_log_debug("chunk %.16s: %zu bytes stored in %u, %s of %zu base(s) (reference %zu-%zu)",
		      slot->id, slot->len, slot->stored, slot->nbases ? "delta" : "whole",
		      slot->nbases, slot->pred, slot->pred_end);
	return 0;
}

/* Caller holds w->mu. */
static void writer_fail(struct stream_writer *w, int code, const char *msg)
{
	if (!w->err) {
		w->err = code;
		snprintf(w->errmsg, sizeof(w->errmsg), "%s", msg);
	}
	w->stop = true;
	pthread_cond_broadcast(&w->work_cv);
	pthread_cond_broadcast(&w->hash_cv);
	pthread_cond_broadcast(&w->done_cv);
}

static void *writer_worker(void *arg)
{
	struct stream_writer *w = arg;
	struct wbufs b;
	struct wslot *slot;
	int ret;

	memset(&b, 0, sizeof(b));
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->next_take == w->next_submit)
			pthread_cond_wait(&w->work_cv, &w->mu);
		if (w->stop)
			break;
		slot = &w->slots[w->next_take++ % w->nslots];
		pthread_mutex_unlock(&w->mu);

		ret = store_chunk(w, slot, &b);

		pthread_mutex_lock(&w->mu);
		if (ret)
			writer_fail(w, ret, pgk_errmsg());
		slot->done = true;
		pthread_cond_broadcast(&w->done_cv);
	}
	pthread_mutex_unlock(&w->mu);
	buf_free(&b.sealed);
	buf_free(&b.alt);
	buf_free(&b.obj);
	buf_free(&b.cand);
	secure_free(b.bases.plain.data, b.bases.plain.cap);
	return NULL;
}

/*
 * The whole-stream checksum runs here, beside the chunker and the workers,
 * instead of in the thread that reads the stream: it then costs the reader
 * nothing, whatever the algorithm (SHA-256, in older manifests, is about as
 * much work as reading and cutting together).
 */
static void *writer_hasher(void *arg)
{
	struct stream_writer *w = arg;
	struct wslot *slot;
	bool ok;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->next_hash == w->next_submit)
			pthread_cond_wait(&w->hash_cv, &w->mu);
		if (w->stop)
			break;
		slot = &w->slots[w->next_hash % w->nslots];
		pthread_mutex_unlock(&w->mu);

		ok = stream_sum_update(&w->sum, slot->data, slot->len) == 0;

		pthread_mutex_lock(&w->mu);
		if (!ok)
			writer_fail(w, PGKEEP_EIO, "cannot compute a stream checksum");
		w->next_hash++;
		pthread_cond_broadcast(&w->done_cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The writer's thread reports a failure that happened anywhere. */
static int writer_error(struct stream_writer *w)
{
	return pgk_error(w->err, "stream %s: %s", stream_name(w->dest), w->errmsg);
}

static bool writer_failed(struct stream_writer *w)
{
	bool failed;

	pthread_mutex_lock(&w->mu);
	failed = w->err != 0;
	pthread_mutex_unlock(&w->mu);
	return failed;
}

/*
 * Record finished chunks in stream order, up to a full list, which the
 * writer's thread then stores without the lock held.  Caller holds w->mu.
 */
static void collect_done(struct stream_writer *w)
{
	struct manifest_chunk mc;
	struct wslot *slot;

	while (w->next_collect < w->next_hash && !list_out_full(&w->lo)) {
		slot = &w->slots[w->next_collect % w->nslots];
		if (!slot->done)
			break;
		memcpy(mc.id, slot->id, sizeof(mc.id));
		mc.size = (uint32_t)slot->len;
		mc.stored = slot->stored;
		mc.known = true;
		mc.anchor = slot->anchor;
		list_out_add(&w->lo, &mc);
		w->dest->stored += slot->stored;
		slot->done = false;
		w->next_collect++;
	}
}

/*
 * Store the full list collect_done stopped at.  Caller holds w->mu, which
 * is released meanwhile: only this thread touches the list.
 */
static int flush_full_list(struct stream_writer *w)
{
	int ret;

	pthread_mutex_unlock(&w->mu);
	ret = list_out_flush(&w->lo);
	pthread_mutex_lock(&w->mu);
	if (ret)
		writer_fail(w, ret, pgk_errmsg());
	return ret;
}

/* Take the next slot to fill, waiting for one to be free (back-pressure). */
static int acquire_fill(struct stream_writer *w)
{
	struct wslot *slot;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		collect_done(w);
		if (w->err)
			break;
		if (list_out_full(&w->lo)) {
			flush_full_list(w);
			continue;
		}
		if (w->next_submit - w->next_collect < w->nslots)
			break;
		pthread_cond_wait(&w->done_cv, &w->mu);
	}
	if (w->err) {
		pthread_mutex_unlock(&w->mu);
		return writer_error(w);
	}
	slot = &w->slots[w->next_submit % w->nslots];
	pthread_mutex_unlock(&w->mu);

	/* Untouched pages cost nothing: RSS follows the largest chunk seen. */
	if (!slot->data)
		slot->data = xmalloc(w->params.max);
	slot->len = 0;
	w->fill = slot;
	chunker_scan_reset(&w->scan);
	return 0;
}

/* Hand the slot being filled to the workers and the hasher. */
static int submit_fill(struct stream_writer *w)
{
	int ret = mark_chunk(w, w->fill);

	if (ret) {
		pthread_mutex_lock(&w->mu);
		writer_fail(w, ret, pgk_errmsg());
		pthread_mutex_unlock(&w->mu);
		w->fill = NULL;
		return writer_error(w);
	}
	pthread_mutex_lock(&w->mu);
	w->next_submit++;
	pthread_cond_signal(&w->work_cv);
	pthread_cond_signal(&w->hash_cv);
	pthread_mutex_unlock(&w->mu);
	w->fill = NULL;
	return 0;
}

/* Submit every chunk the slot being filled holds a cut for. */
static int cut_fill(struct stream_writer *w)
{
	struct wslot *full;
	size_t cut, tail;
	int ret;

	for (;;) {
		cut = chunker_scan(&w->params, &w->scan, w->fill->data, w->fill->len);
		if (cut == 0)
			return 0;
		full = w->fill;
		tail = full->len - cut;
		full->len = cut;
		ret = submit_fill(w);
		if (ret)
			return ret;
		ret = acquire_fill(w);
		if (ret)
			return ret;
		/* Only this thread ever fills a slot, so the tail stays put. */
		memcpy(w->fill->data, full->data + cut, tail);
		w->fill->len = tail;
	}
}

static void writer_stop_threads(struct stream_writer *w)
{
	int i;

	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->work_cv);
	pthread_cond_broadcast(&w->hash_cv);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	w->nthreads = 0;
}

/*
 * Two slots per worker keeps each busy while the next chunk is read (or
 * delivered), but a slot may hold a max-size chunk: past a budget, fewer,
 * never below one per worker plus the one being filled and one in hand.
 */
#define PIPE_SLOT_BUDGET (24 * 1024 * 1024)

static size_t ring_slots(int jobs, size_t max)
{
	size_t n = 2 * (size_t)jobs + 1, cap = PIPE_SLOT_BUDGET / (max ? max : 1);

	if (n > cap)
		n = cap;
	if (n < (size_t)jobs + 2)
		n = (size_t)jobs + 2;
	return n;
}

int stream_writer_open(struct stream_writer **out, struct repo *r,
		       struct manifest_stream *dest, const struct manifest_stream *ref, int jobs)
{
	struct chunker_params defaults = CHUNKER_DEFAULT_PARAMS;
	struct stream_writer *w;
	int i, ret;

	*out = NULL;
	memory_mode();
	jobs = clamp_jobs(jobs);
	w = xzalloc(sizeof(*w));
	w->r = r;
	w->dest = dest;
	w->params = defaults;
	ret = stream_sum_init(&w->sum, STREAM_SUM_DEFAULT);
	if (ret) {
		free(w);
		return ret;
	}
	w->nslots = ring_slots(jobs, w->params.max);
	w->slots = xzalloc(w->nslots * sizeof(*w->slots));
	w->threads = xzalloc(((size_t)jobs + 1) * sizeof(*w->threads));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work_cv, NULL);
	pthread_cond_init(&w->hash_cv, NULL);
	pthread_cond_init(&w->done_cv, NULL);
	dest->size = 0;
	dest->stored = 0;
	list_out_init(&w->lo, r, dest);
	ret = ref_open(w, ref);
	if (ret) {
		stream_writer_free(w);
		return ret;
	}

	for (i = 0; i <= jobs; i++) {
		ret = pthread_create(&w->threads[i], NULL,
				     i < jobs ? writer_worker : writer_hasher, w);
		if (ret) {
			stream_writer_free(w);
			return pgk_error(PGKEEP_ENOMEM, "cannot start a pipeline thread: %s",
					 strerror(ret));
		}
		w->nthreads++;
	}
	*out = w;
	return 0;
}

static int writer_usable(struct stream_writer *w)
{
	if (writer_failed(w))
		return writer_error(w);
	if (w->finished)
		return pgk_error(PGKEEP_EINVAL, "stream %s: write after finish",
				 stream_name(w->dest));
	return 0;
}

int stream_writer_buffer(struct stream_writer *w, void **buf, size_t *space)
{
	int ret;

	*buf = NULL;
	*space = 0;
	ret = writer_usable(w);
	if (ret)
		return ret;
	if (!w->fill) {
		ret = acquire_fill(w);
		if (ret)
			return ret;
	}
	/* cut_fill never leaves a full slot behind: there is always room. */
	*buf = w->fill->data + w->fill->len;
	*space = w->params.max - w->fill->len;
	return 0;
}

int stream_writer_commit(struct stream_writer *w, size_t len)
{
	if (!w->fill || len > w->params.max - w->fill->len)
		return pgk_error(PGKEEP_EINVAL, "stream %s: commit of %zu bytes beyond the buffer",
				 stream_name(w->dest), len);
	if (len == 0)
		return 0;
	w->fill->len += len;
	w->size += len;
	return cut_fill(w);
}

int stream_writer_write(struct stream_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t space;
	void *dst;
	int ret;

	ret = writer_usable(w);
	while (ret == 0 && len) {
		ret = stream_writer_buffer(w, &dst, &space);
		if (ret)
			break;
		if (space > len)
			space = len;
		memcpy(dst, p, space);
		p += space;
		len -= space;
		ret = stream_writer_commit(w, space);
	}
	return ret;
}

int stream_writer_finish(struct stream_writer *w)
{
	int ret;

	if (writer_failed(w))
		return writer_error(w);
	if (w->finished)
		return 0;
	/* What is left has no cut point: it is the last chunk. */
	if (w->fill && w->fill->len) {
		ret = submit_fill(w);
		if (ret)
			return ret;
	}
	w->fill = NULL;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		collect_done(w);
		if (w->err)
			break;
		if (list_out_full(&w->lo)) {
			flush_full_list(w);
			continue;
		}
		if (w->next_collect == w->next_submit)
			break;
		pthread_cond_wait(&w->done_cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	if (writer_failed(w))
		return writer_error(w);
	ret = list_out_flush(&w->lo);
	if (ret)
		return pgk_error_wrap(ret, "stream %s", stream_name(w->dest));
	/* Everything is hashed: the hasher no longer touches the context. */
	w->dest->sum_alg = w->sum.alg;
	ret = stream_sum_final_hex(&w->sum, w->dest->sum);
	if (ret)
		return ret;
	w->dest->size = w->size;
	w->finished = true;
	return 0;
}

void stream_writer_free(struct stream_writer *w)
{
	size_t i;

	if (!w)
		return;
	writer_stop_threads(w);
	for (i = 0; i < w->nslots; i++)
		free(w->slots[i].data);
	free(w->slots);
	free(w->threads);
	free(w->by_anchor);
	free(w->win);
	manifest_cursor_close(w->ref_cur);
	list_out_free(&w->lo);
	stream_sum_free(&w->sum);
	pthread_cond_destroy(&w->done_cv);
	pthread_cond_destroy(&w->hash_cv);
	pthread_cond_destroy(&w->work_cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* ---- reading ---- */

struct rslot {
	struct pgk_buf plain;	/* verified plaintext */
	char id[65];		/* the chunk, from the cursor */
	uint32_t size;
	bool done;
	int err;
	char errmsg[PGKEEP_ERRLEN];
};

struct stream_reader {
	struct repo *r;
	const struct manifest_stream *s;
	/* The chunk list, read as workers take chunks (under mu). */
	struct manifest_cursor *cur;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;		/* to workers: a slot was freed, or stop */
	pthread_cond_t done_cv;		/* to the reader and the hasher: a slot is filled or hashed */
	struct rslot *slots;
	size_t nslots;
	/* Chunks taken by a worker, added to the checksum, handed to the sink. */
	size_t next_take, next_hash, next_deliver;
	struct stream_sum sum;		/* the hasher's until every chunk is hashed */
	bool hash_failed;
	bool stop;
};

/* A delta's base, for obj_open_chunk. */
struct base_reader {
	struct repo *r;
	struct pgk_buf obj;
};

static int base_from_store(void *arg, const char *base_id, struct pgk_buf *plain)
{
	struct base_reader *br = arg;

	return read_whole(br->r, base_id, &br->obj, plain);
}

int chunk_read(struct repo *r, const char *id, uint32_t size, struct pgk_buf *obj,
	       struct pgk_buf *plain)
{
	struct base_reader br = { r, PGK_BUF_INIT };
	char key[CHUNK_KEY_MAX], got[65];
	int ret;

	ret = get_chunk(r, id, "chunk", obj, key);
	if (ret)
		return ret;
	buf_reset(plain);
	ret = obj_open_chunk(&r->keys, key, obj->data, obj->len, plain, base_from_store, &br);
	buf_free(&br.obj);
	if (ret)
		return ret;
	if (plain->len != size)
		return pgk_error(PGKEEP_ECORRUPT,
				 "chunk %s holds %zu bytes, the manifest says %u (%s)", id,
				 plain->len, (unsigned)size, key);
	/* Proves the chunk, and for a delta its base too. */
	keys_chunk_id(&r->keys, plain->data, plain->len, got);
	if (strcmp(got, id) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "chunk %s does not match its id (%s)", id, key);
	return 0;
}

static void *reader_worker(void *arg)
{
	struct stream_reader *rd = arg;
	struct pgk_buf obj = PGK_BUF_INIT;
	const struct manifest_chunk *mc;
	struct rslot *slot;
	size_t i;
	int ret;

	pthread_mutex_lock(&rd->mu);
	for (;;) {
		while (!rd->stop && (rd->next_take >= rd->s->nchunks ||
				     rd->next_take - rd->next_deliver >= rd->nslots))
			pthread_cond_wait(&rd->work_cv, &rd->mu);
		if (rd->stop)
			break;
		i = rd->next_take++;
		slot = &rd->slots[i % rd->nslots];
		/*
		 * In order, under the lock: a list object is fetched here once
		 * per LIST_CHUNKS_MAX chunks, the others wait that long.
		 */
		ret = manifest_cursor_next(rd->cur, &mc);
		if (ret == 1) {
			memcpy(slot->id, mc->id, sizeof(slot->id));
			slot->size = mc->size;
			ret = 0;
		} else if (ret == 0) {
			ret = pgk_error(PGKEEP_ECORRUPT, "its chunk list ends after %zu chunks", i);
		}
		pthread_mutex_unlock(&rd->mu);

		if (ret == 0)
			ret = chunk_read(rd->r, slot->id, slot->size, &obj, &slot->plain);
		if (ret)
			snprintf(slot->errmsg, sizeof(slot->errmsg), "%s", pgk_errmsg());

		pthread_mutex_lock(&rd->mu);
		slot->err = ret;
		slot->done = true;
		pthread_cond_broadcast(&rd->done_cv);
	}
	pthread_mutex_unlock(&rd->mu);
	buf_free(&obj);
	return NULL;
}

/*
 * The whole-stream checksum, in order, beside the sink: the thread that
 * feeds the sink only writes.  A chunk that failed is left to the reader,
 * which reports it.
 */
static void *reader_hasher(void *arg)
{
	struct stream_reader *rd = arg;
	struct rslot *slot;
	bool ok;

	pthread_mutex_lock(&rd->mu);
	for (;;) {
		slot = &rd->slots[rd->next_hash % rd->nslots];
		/* Until a worker takes the chunk, done may be the previous one's. */
		while (!rd->stop && (rd->next_hash >= rd->next_take || !slot->done ||
				     slot->err || rd->hash_failed)) {
			pthread_cond_wait(&rd->done_cv, &rd->mu);
			slot = &rd->slots[rd->next_hash % rd->nslots];
		}
		if (rd->stop)
			break;
		pthread_mutex_unlock(&rd->mu);

		ok = stream_sum_update(&rd->sum, slot->plain.data, slot->plain.len) == 0;

		pthread_mutex_lock(&rd->mu);
		if (ok)
			rd->next_hash++;
		else
			rd->hash_failed = true;
		pthread_cond_broadcast(&rd->done_cv);
	}
	pthread_mutex_unlock(&rd->mu);
	return NULL;
}

/* Deliver every chunk in order; errors are reported in stream order too. */
static int deliver_all(struct stream_reader *rd, pgkeep_sink_fn sink, void *payload,
		       uint64_t *total)
{
	const struct manifest_stream *s = rd->s;
	struct rslot *slot;
	size_t i;
	int ret;

	for (i = 0; i < s->nchunks; i++) {
		slot = &rd->slots[i % rd->nslots];
		pthread_mutex_lock(&rd->mu);
		while (!slot->done)
			pthread_cond_wait(&rd->done_cv, &rd->mu);
		pthread_mutex_unlock(&rd->mu);
		if (slot->err)
			return pgk_error(slot->err, "stream %s: %s", stream_name(s), slot->errmsg);
		*total += slot->plain.len;
		ret = sink(payload, slot->plain.data, slot->plain.len);
		if (ret)
			return ret;
		/* The slot is free again once the hasher is past it too. */
		pthread_mutex_lock(&rd->mu);
		while (rd->next_hash <= i && !rd->hash_failed)
			pthread_cond_wait(&rd->done_cv, &rd->mu);
		if (rd->hash_failed) {
			pthread_mutex_unlock(&rd->mu);
			return pgk_error(PGKEEP_EIO, "cannot compute a stream checksum");
		}
		slot->done = false;
		rd->next_deliver++;
		pthread_cond_broadcast(&rd->work_cv);
		pthread_mutex_unlock(&rd->mu);
	}
	return 0;
}

static int check_stream_end(const struct manifest_stream *s, struct stream_sum *sum,
			    uint64_t total)
{
	char hex[STREAM_SUM_HEX_MAX + 1];
	int ret;

	if (total != s->size)
		return pgk_error(PGKEEP_ECORRUPT, "stream %s: %llu bytes read, the manifest says %llu",
				 stream_name(s), (unsigned long long)total,
				 (unsigned long long)s->size);
	ret = stream_sum_final_hex(sum, hex);
	if (ret)
		return ret;
	if (strcmp(hex, s->sum) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "stream %s: checksum mismatch", stream_name(s));
	return 0;
}

int stream_read(struct repo *r, const struct manifest_stream *s, int jobs,
		pgkeep_sink_fn sink, void *payload)
{
	struct stream_reader rd = { .r = r, .s = s };
	pthread_t threads[PIPE_MAX_JOBS + 1];
	uint64_t total = 0;
	int i, nthreads = 0, ret;
	size_t k;

	memory_mode();
	ret = stream_sum_init(&rd.sum, s->sum_alg);
	if (ret)
		return ret;
	jobs = clamp_jobs(jobs);
	/* Recorded by the manifest (or as chunks were added): no scan of the list. */
	rd.nslots = ring_slots(jobs, s->max_chunk);
	ret = manifest_stream_cursor_open(r, s, &rd.cur);
	if (ret) {
		stream_sum_free(&rd.sum);
		return ret;
	}
	rd.slots = xzalloc(rd.nslots * sizeof(*rd.slots));
	pthread_mutex_init(&rd.mu, NULL);
	pthread_cond_init(&rd.work_cv, NULL);
	pthread_cond_init(&rd.done_cv, NULL);

	ret = 0;
	for (i = 0; i <= jobs && (size_t)i <= s->nchunks; i++) {
		ret = pthread_create(&threads[i], NULL, i == 0 ? reader_hasher : reader_worker,
				     &rd);
		if (ret) {
			ret = pgk_error(PGKEEP_ENOMEM, "cannot start a pipeline thread: %s",
					strerror(ret));
			break;
		}
		nthreads++;
	}
	if (ret == 0)
		ret = deliver_all(&rd, sink, payload, &total);

	pthread_mutex_lock(&rd.mu);
	rd.stop = true;
	pthread_cond_broadcast(&rd.work_cv);
	pthread_cond_broadcast(&rd.done_cv);
	pthread_mutex_unlock(&rd.mu);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	/* Every chunk was taken: the list must end here, and add up. */
	if (ret == 0) {
		const struct manifest_chunk *mc;

		ret = manifest_cursor_next(rd.cur, &mc);
		if (ret > 0)
			ret = pgk_error(PGKEEP_ECORRUPT, "stream %s: its chunk list goes on after "
					"%zu chunks", stream_name(s), s->nchunks);
	}
	/* The hasher has stopped: its context is ours. */
	if (ret == 0)
		ret = check_stream_end(s, &rd.sum, total);
	manifest_cursor_close(rd.cur);

	for (k = 0; k < rd.nslots; k++)
		buf_free(&rd.slots[k].plain);
	free(rd.slots);
	pthread_cond_destroy(&rd.done_cv);
	pthread_cond_destroy(&rd.work_cv);
	pthread_mutex_destroy(&rd.mu);
	stream_sum_free(&rd.sum);
	return ret;
}

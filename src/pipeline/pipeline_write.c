/*
 * The writing side of the pipeline: bytes are cut into chunks in the
 * caller's thread, straight in a bounded ring of chunk slots that feeds
 * `jobs` workers (name, dedup-check, seal, hand to repo/chunks.c) and one
 * hasher (the whole-stream checksum); results are collected in stream
 * order into the stream's chunk lists.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pipeline/pipeline_int.h"

_Static_assert(CHUNKER_MAX_SIZE <= OBJ_CHUNK_PLAIN_MAX, "a chunk object holds the largest chunk");

/* Name the chunk, skip it when the repository has it, else seal and hand it over. */
static int store_chunk(struct stream_writer *w, struct wslot *slot, struct wbufs *b)
{
	struct repo *r = w->r;
	int ret;

	keys_chunk_id(&r->keys, slot->data, slot->len, slot->id);
	slot->stored = 0;
	slot->nbases = 0;
	ret = chunk_exists(r, slot->id);
	if (ret)
		return ret > 0 ? 0 : ret;
	buf_reset(&b->sealed);
	ret = 1;
	if (slot->npred && r->delta && r->compress_level > 0)
		ret = delta_seal(w, slot, b);
	if (ret < 0)
		return ret;
	if (ret > 0)
		ret = chunk_seal(r, slot->id, slot->data, slot->len, &b->sealed);
	if (ret)
		return ret;
	ret = chunk_store(r, slot->id, slot->nbases ? &b->bases : NULL, b->sealed.data,
			  b->sealed.len);
	delta_release_bufs(b);
	/* 1: another writer stored the same content meanwhile. */
	if (ret)
		return ret < 0 ? ret : 0;
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
	return pgk_error(w->err, "stream %s: %s", pipeline_stream_name(w->dest), w->errmsg);
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
	int ret = delta_mark_chunk(w, w->fill);

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

int stream_writer_open(struct stream_writer **out, struct repo *r,
		       struct manifest_stream *dest, const struct manifest_stream *ref, int jobs)
{
	struct chunker_params defaults = CHUNKER_DEFAULT_PARAMS;
	struct stream_writer *w;
	int i, ret;

	*out = NULL;
	pipeline_memory_mode();
	jobs = pipeline_clamp_jobs(jobs);
	w = xzalloc(sizeof(*w));
	w->r = r;
	w->dest = dest;
	w->params = defaults;
	ret = stream_sum_init(&w->sum, STREAM_SUM_DEFAULT);
	if (ret) {
		free(w);
		return ret;
	}
	w->nslots = pipeline_ring_slots(jobs, w->params.max);
	w->slots = xzalloc(w->nslots * sizeof(*w->slots));
	w->threads = xzalloc(((size_t)jobs + 1) * sizeof(*w->threads));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work_cv, NULL);
	pthread_cond_init(&w->hash_cv, NULL);
	pthread_cond_init(&w->done_cv, NULL);
	dest->size = 0;
	dest->stored = 0;
	list_out_init(&w->lo, r, dest);
	ret = delta_ref_open(w, ref);
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
				 pipeline_stream_name(w->dest));
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
				 pipeline_stream_name(w->dest), len);
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
		return pgk_error_wrap(ret, "stream %s", pipeline_stream_name(w->dest));
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

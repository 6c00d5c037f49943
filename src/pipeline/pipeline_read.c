/*
 * The reading side of the pipeline: the writer's ring run backwards.
 * Workers fetch and verify chunks ahead (repo/chunks.c), the hasher checks
 * the stream, the caller delivers strictly in order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "pipeline/pipeline_int.h"

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
			return pgk_error(slot->err, "stream %s: %s", pipeline_stream_name(s), slot->errmsg);
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
				 pipeline_stream_name(s), (unsigned long long)total,
				 (unsigned long long)s->size);
	ret = stream_sum_final_hex(sum, hex);
	if (ret)
		return ret;
	if (strcmp(hex, s->sum) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "stream %s: checksum mismatch", pipeline_stream_name(s));
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

	pipeline_memory_mode();
	ret = stream_sum_init(&rd.sum, s->sum_alg);
	if (ret)
		return ret;
	jobs = pipeline_clamp_jobs(jobs);
	/* Recorded by the manifest (or as chunks were added): no scan of the list. */
	rd.nslots = pipeline_ring_slots(jobs, s->max_chunk);
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
					"%zu chunks", pipeline_stream_name(s), s->nchunks);
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

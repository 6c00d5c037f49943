/*
 * The backup data path is pipeline_write.c (bytes -> chunks), delta.c (the
 * writer's reference for deltas) and pipeline_read.c (chunks -> bytes).
 * Here is what both ends share: the process's memory mode, the job count
 * and the size of a ring of chunk slots.
 */
#include <malloc.h>
#include <pthread.h>

#include "pipeline/pipeline_int.h"

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

void pipeline_memory_mode(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, fixed_mmap_threshold);
}

int pipeline_clamp_jobs(int jobs)
{
	if (jobs < 1)
		return 1;
	return jobs > PIPE_MAX_JOBS ? PIPE_MAX_JOBS : jobs;
}

const char *pipeline_stream_name(const struct manifest_stream *s)
{
	return s->name ? s->name : "(unnamed)";
}

/*
 * Two slots per worker keeps each busy while the next chunk is read (or
 * delivered), but a slot may hold a max-size chunk: past a budget, fewer,
 * never below one per worker plus the one being filled and one in hand.
 */
#define PIPE_SLOT_BUDGET (24 * 1024 * 1024)

size_t pipeline_ring_slots(int jobs, size_t max)
{
	size_t n = 2 * (size_t)jobs + 1, cap = PIPE_SLOT_BUDGET / (max ? max : 1);

	if (n > cap)
		n = cap;
	if (n < (size_t)jobs + 2)
		n = (size_t)jobs + 2;
	return n;
}

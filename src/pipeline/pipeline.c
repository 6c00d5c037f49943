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

/*
 * Throughput of the data path, for people tuning it (not a test): the
 * chunker alone on one core, then the stream writer and reader through an
 * in-memory store at several thread counts.  Built by contrib/bench/pipeline.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "pipeline/pipeline.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t *w = (uint64_t *)p, z;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		w[i] = z ^ (z >> 31);
	}
}

static double mbps(size_t bytes, double secs)
{
	return (double)bytes / secs / 1e6;
}

static void bench_chunker(const uint8_t *d, size_t len)
{
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	size_t off = 0, n = 0;
	double t = now();

	while (off < len) {
		off += chunker_next(&p, d + off, len - off);
		n++;
	}
	t = now() - t;
	printf("chunker          %8.0f MB/s  (%zu chunks, average %zu bytes)\n", mbps(len, t), n,
	       len / n);
}

static int sink_discard(void *payload, const void *buf, size_t len)
{
	(void)buf;
	*(size_t *)payload += len;
	return 0;
}

static int write_all(struct repo *r, struct manifest_stream *s, const uint8_t *d, size_t len,
		     int jobs)
{
	struct stream_writer *w;
	size_t off;
	int ret;

	ret = stream_writer_open(&w, r, s, jobs);
	for (off = 0; ret == 0 && off < len; off += 1 << 20)
		ret = stream_writer_write(w, d + off, len - off < (1 << 20) ? len - off : 1 << 20);
	if (ret == 0)
		ret = stream_writer_finish(w);
	stream_writer_free(w);
	return ret;
}

static int bench_pipeline(const uint8_t *d, size_t len, int jobs, int level)
{
	struct repo r = { .name = "bench", .compress_level = level };
	struct manifest m = { 0 };
	struct manifest_stream *s;
	size_t got = 0;
	double t1, t2, t3;
	int ret;

	r.store = memstore_open();
	ret = keys_generate(&r.keys);
	s = manifest_add_stream(&m, "new");
	t1 = now();
	if (ret == 0)
		ret = write_all(&r, s, d, len, jobs);
	t1 = now() - t1;
	s = manifest_add_stream(&m, "dedup");
	t2 = now();
	if (ret == 0)
		ret = write_all(&r, s, d, len, jobs);
	t2 = now() - t2;
	t3 = now();
	if (ret == 0)
		ret = stream_read(&r, s, jobs, sink_discard, &got);
	t3 = now() - t3;
	if (ret)
		fprintf(stderr, "bench: %s\n", pgk_errmsg());
	else
		printf("jobs %2d level %d  write %7.0f MB/s  rewrite (all dedup) %7.0f MB/s  "
		       "read %7.0f MB/s\n", jobs, level, mbps(len, t1), mbps(len, t2),
		       mbps(got, t3));
	manifest_free(&m);
	memstore_close(r.store);
	keys_wipe(&r.keys);
	return ret;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256, len = mib << 20;
	int maxjobs = argc > 2 ? atoi(argv[2]) : 4, jobs;
	uint8_t *d;

	if (!mib || maxjobs < 1) {
		fprintf(stderr, "usage: bench_pipeline [MiB] [max jobs]\n");
		return 2;
	}
	d = xmalloc(len);
	fill(d, len, 1);
	printf("%zu MiB of random data (incompressible)\n", mib);
	bench_chunker(d, len);
	for (jobs = 1; jobs <= maxjobs; jobs *= 2)
		if (bench_pipeline(d, len, jobs, 3))
			return 1;
	free(d);
	return 0;
}

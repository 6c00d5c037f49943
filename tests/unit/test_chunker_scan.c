/*
 * The incremental chunker (chunker_scan) against the one-shot one
 * (chunker_next): fed piece by piece in odd sizes, it must cut at exactly
 * the same places, or dedup against stored backups would silently end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "pipeline/chunker.h"
#include "tap.h"

#define MiB (1024u * 1024u)

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t z;
	size_t i;

	for (i = 0; i < len; i++) {
		z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		p[i] = (uint8_t)(z ^ (z >> 31));
	}
}

/* Chunk lengths from chunker_next over the whole input at once. */
static size_t cuts_next(const struct chunker_params *p, const uint8_t *d, size_t len,
			size_t *out, size_t maxout)
{
	size_t off = 0, n = 0, c;

	while (off < len && n < maxout) {
		c = chunker_next(p, d + off, len - off);
		out[n++] = c;
		off += c;
	}
	return n;
}

/*
 * The same as a reader does it: bytes arrive in pieces of the given sizes
 * (cycled), each chunk is scanned as it grows, and at the end the rest is
 * the last chunk.
 */
static size_t cuts_scan(const struct chunker_params *p, const uint8_t *d, size_t len,
			const size_t *pieces, size_t npieces, size_t *out, size_t maxout)
{
	struct chunker_scan st;
	size_t start = 0, have = 0, n = 0, k = 0, step, c;

	chunker_scan_reset(&st);
	while (have < len && n < maxout) {
		step = pieces[k++ % npieces];
		if (step > len - have)
			step = len - have;
		/* Never past max within one chunk, as the pipeline's buffer. */
		if (have + step - start > p->max)
			step = start + p->max - have;
		have += step;
		while ((c = chunker_scan(p, &st, d + start, have - start)) != 0 && n < maxout) {
			out[n++] = c;
			start += c;
			chunker_scan_reset(&st);
		}
	}
	if (have > start && n < maxout)
		out[n++] = have - start;
	return n;
}

static void check_same(const struct chunker_params *p, const uint8_t *d, size_t len,
		       const size_t *pieces, size_t npieces, const char *label)
{
	size_t maxout = len / p->min + 2;
	size_t *a = xmalloc(maxout * sizeof(*a)), *b = xmalloc(maxout * sizeof(*b));
	size_t na, nb;

	na = cuts_next(p, d, len, a, maxout);
	nb = cuts_scan(p, d, len, pieces, npieces, b, maxout);
	ok(na == nb && memcmp(a, b, na * sizeof(*a)) == 0,
	   "%s: the same %zu cuts as chunker_next (scan found %zu)", label, na, nb);
	free(a);
	free(b);
}

int main(void)
{
	static const size_t odd[] = { 1, 7, 4093, 65537, 262144, 1000003, 13, 3 * MiB + 5 };
	static const size_t pipe_reads[] = { 65536 };
	static const size_t big_reads[] = { 4 * MiB };
	struct chunker_params def = CHUNKER_DEFAULT_PARAMS;
	struct chunker_params small = { 2048, 8192, 65536 };
	size_t len = 48 * MiB;
	uint8_t *d = xmalloc(len);
	struct chunker_scan st;
	uint8_t tiny[16] = { 0 };

	chunker_scan_reset(&st);
	is_int(chunker_scan(&def, &st, tiny, 0), 0, "nothing yet: no cut");
	is_int(chunker_scan(&def, &st, tiny, sizeof(tiny)), 0, "16 bytes: below min, no cut");

	fill_random(d, len, 11);
	/* A run of zeros has no cut point: it is cut at max. */
	memset(d + 20 * MiB, 0, 9 * MiB);
	check_same(&def, d, len, odd, sizeof(odd) / sizeof(odd[0]), "default, odd pieces");
	check_same(&def, d, len, pipe_reads, 1, "default, 64 KiB reads");
	check_same(&def, d, len, big_reads, 1, "default, 4 MiB reads");
	check_same(&small, d, 8 * MiB, odd, sizeof(odd) / sizeof(odd[0]), "small params, odd pieces");
	check_same(&def, d, 300 * 1024, odd, sizeof(odd) / sizeof(odd[0]), "a stream shorter than max");
	free(d);
	return done_testing();
}

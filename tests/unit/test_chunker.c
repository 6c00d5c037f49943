/*
 * Content-defined chunking: bounds, average size, determinism, and the
 * property dedup rests on: an edit moves only the boundaries next to it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "pipeline/chunker.h"
#include "tap.h"

#define MiB (1024u * 1024u)

/* A fixed generator, so that a failure can be reproduced byte for byte. */
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

struct cuts {
	size_t *end;	/* offset just past each chunk */
	size_t n;
};

static struct cuts chunk_all(const struct chunker_params *p, const uint8_t *d, size_t len)
{
	struct cuts c = { NULL, 0 };
	size_t off = 0, cap = 0, n;

	while (off < len) {
		n = chunker_next(p, d + off, len - off);
		if (n == 0)
			break;
		off += n;
		if (c.n == cap) {
			cap = cap ? 2 * cap : 256;
			c.end = xrealloc(c.end, cap * sizeof(*c.end));
		}
		c.end[c.n++] = off;
	}
	return c;
}

static bool has_cut(const struct cuts *c, size_t at)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->end[mid] == at)
			return true;
		if (c->end[mid] < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void test_tiny(void)
{
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	uint8_t buf[16] = { 1, 2, 3 };
	uint8_t *big = xmalloc(p.min + 1);

	is_int(chunker_next(&p, buf, 0), 0, "empty input: no chunk");
	is_int(chunker_next(&p, buf, 1), 1, "one byte: a one-byte chunk (caller decides at eof)");
	is_int(chunker_next(&p, buf, sizeof(buf)), sizeof(buf), "16 bytes: all of it");
	fill_random(big, p.min + 1, 7);
	is_int(chunker_next(&p, big, p.min), p.min, "exactly min bytes: all of it");
	is_int(chunker_next(&p, big, p.min + 1), p.min + 1, "min + 1 bytes: no cut before min");
	free(big);
}

static void test_bounds_and_average(const struct chunker_params *p, size_t len,
				    const char *label)
{
	uint8_t *d = xmalloc(len);
	struct cuts c;
	size_t i, prev = 0, size, too_small = 0, too_big = 0;
	double avg;

	fill_random(d, len, 42);
	c = chunk_all(p, d, len);
	ok(c.n > 0 && c.end[c.n - 1] == len, "%s: chunks cover all %zu bytes", label, len);
	for (i = 0; i < c.n; i++) {
		size = c.end[i] - prev;
		prev = c.end[i];
		if (size > p->max)
			too_big++;
		if (size < p->min && i + 1 < c.n)
			too_small++;
	}
	is_int(too_big, 0, "%s: no chunk above max", label);
	is_int(too_small, 0, "%s: no chunk but the last below min", label);
	avg = (double)len / (double)c.n;
	ok(avg > (double)p->avg * 0.75 && avg < (double)p->avg * 1.75,
	   "%s: average %.0f bytes for a target of %zu (%zu chunks)", label, avg, p->avg, c.n);
	free(c.end);
	free(d);
}

/* Same boundaries whatever the buffer length, as long as it reaches the cut. */
static void test_stateless(void)
{
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	size_t len = 16 * MiB, n, m, extra;
	uint8_t *d = xmalloc(len);
	struct cuts a, b;
	bool same = true;

	fill_random(d, len, 3);
	a = chunk_all(&p, d, len);
	b = chunk_all(&p, d, len);
	ok(a.n == b.n && memcmp(a.end, b.end, a.n * sizeof(*a.end)) == 0,
	   "two runs over the same data cut at the same places");
	n = chunker_next(&p, d, len);
	for (extra = 0; extra < 4096; extra += 511) {
		m = chunker_next(&p, d, n + extra);
		if (m != n)
			same = false;
	}
	ok(same, "the first cut (%zu) does not depend on how much follows it", n);
	m = chunker_next(&p, d, n - 1);
	is_int(m, n - 1, "a buffer that ends before the cut is returned whole (need more data)");
	free(a.end);
	free(b.end);
	free(d);
}

static void test_zeros(void)
{
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	size_t len = 3 * p.max;
	uint8_t *d = xzalloc(len);
	struct cuts c = chunk_all(&p, d, len);

	ok(c.n == 3 && c.end[0] == p.max && c.end[1] == 2 * p.max,
	   "uniform data is cut at max (%zu chunks)", c.n);
	free(c.end);
	free(d);
}

/*
 * Compare boundaries before and after an edit at `at` that changed the
 * length by `delta`: boundaries after the edit must reappear shifted.
 */
static size_t moved_after_edit(const struct cuts *orig, const struct cuts *edited, size_t at,
			       long delta)
{
	size_t i, moved = 0;

	for (i = 0; i < orig->n; i++) {
		if (orig->end[i] <= at)
			continue;
		if (!has_cut(edited, (size_t)((long)orig->end[i] + delta)))
			moved++;
	}
	return moved;
}

static void test_edit_locality(void)
{
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	size_t len = 64 * MiB, mid = 40 * MiB + 12345, before_mid = 0, i;
	uint8_t *d = xmalloc(len + 16), *e = xmalloc(len + 16);
	struct cuts orig, ins, del, ovw;

	fill_random(d, len, 99);
	orig = chunk_all(&p, d, len);

	/* five bytes inserted near the start */
	memcpy(e, d, 100);
	memcpy(e + 100, "\x01\x02\x03\x04\x05", 5);
	memcpy(e + 105, d + 100, len - 100);
	ins = chunk_all(&p, e, len + 5);
	ok(moved_after_edit(&orig, &ins, 100, 5) <= 2,
	   "5 bytes inserted at offset 100: at most 2 of %zu boundaries move", orig.n);

	/* 1000 bytes deleted in the middle */
	memcpy(e, d, mid);
	memcpy(e + mid, d + mid + 1000, len - mid - 1000);
	del = chunk_all(&p, e, len - 1000);
	for (i = 0; i < orig.n && orig.end[i] <= mid; i++)
		before_mid += has_cut(&del, orig.end[i]);
	ok(before_mid == i, "1000 bytes deleted at 40 MiB: every earlier boundary kept");
	ok(moved_after_edit(&orig, &del, mid + 1000, -1000) <= 2,
	   "  and at most 2 later boundaries move");

	/* 64 bytes overwritten in place */
	memcpy(e, d, len);
	fill_random(e + mid, 64, 1234);
	ovw = chunk_all(&p, e, len);
	ok(moved_after_edit(&orig, &ovw, mid, 0) <= 2,
	   "64 bytes overwritten at 40 MiB: at most 2 boundaries move");

	free(orig.end);
	free(ins.end);
	free(del.end);
	free(ovw.end);
	free(d);
	free(e);
}

/*
 * The gear table and the cut rule define every chunk ever stored: pin the
 * first boundaries of a fixed input, recorded when the format was released,
 * so that any change to either fails here before it breaks dedup for users.
 */
static void test_pinned_boundaries(void)
{
	static const size_t want[] = {
		1520392, 2725772, 4178776, 5285895, 6383799, 7480207, 8388608,
	};
	struct chunker_params p = CHUNKER_DEFAULT_PARAMS;
	size_t len = 8 * MiB, i;
	uint8_t *d = xmalloc(len);
	struct cuts c;
	bool same;

	fill_random(d, len, 0x70676b6565702d31ULL);
	c = chunk_all(&p, d, len);
	same = c.n == sizeof(want) / sizeof(want[0]);
	for (i = 0; same && i < sizeof(want) / sizeof(want[0]); i++)
		same = c.end[i] == want[i];
	ok(same, "boundaries of the reference input are the released ones");
	if (!same)
		for (i = 0; i < c.n; i++)
			diag("cut %zu at %zu", i, c.end[i]);
	free(c.end);
	free(d);
}

int main(void)
{
	struct chunker_params def = CHUNKER_DEFAULT_PARAMS;
	struct chunker_params small = { 2048, 8192, 65536 };

	test_tiny();
	test_bounds_and_average(&def, 64 * MiB, "default 256K/1M/4M");
	test_bounds_and_average(&small, 16 * MiB, "small 2K/8K/64K");
	test_stateless();
	test_zeros();
	test_edit_locality();
	test_pinned_boundaries();
	return done_testing();
}

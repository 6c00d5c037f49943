/*
 * The stream pipeline against an in-memory store: byte-exact round trips at
 * several sizes and thread counts, dedup across streams, and every failure
 * (missing, damaged chunk; failing store; bad manifest) reported by name.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "tap.h"

#define MiB (1024u * 1024u)

static struct repo repo;

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

/* Half random, half text-like, so that both codec paths run. */
static uint8_t *make_data(size_t len, uint64_t seed)
{
	uint8_t *d = xmalloc(len ? len : 1);
	size_t i;

	fill_random(d, len, seed);
	for (i = len / 2; i < len; i++)
		d[i] = (uint8_t)("INSERT INTO t VALUES (42, 'pgkeep');\n"[i % 37] + (i >> 20) % 5);
	/* the seed every 4 KiB keeps streams of equal length from sharing chunks */
	for (i = len / 2; i + sizeof(seed) <= len; i += 4096)
		memcpy(d + i, &seed, sizeof(seed));
	return d;
}

static void sha256_hex(const uint8_t *d, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned mdlen, i;

	EVP_Digest(d, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* XXH3-128 in one call, canonical (big-endian) hex. */
static void xxh128_hex(const uint8_t *d, size_t len, char out[33])
{
	XXH128_canonical_t c;
	unsigned i;

	XXH128_canonicalFromHash(&c, XXH3_128bits(d, len));
	for (i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", c.digest[i]);
}

static int write_stream_ref(struct manifest_stream *s, const uint8_t *d, size_t len, int jobs,
			    const struct manifest_stream *ref);

/* Write d through a stream writer in odd-sized pieces. */
static int write_stream(struct manifest_stream *s, const uint8_t *d, size_t len, int jobs)
{
	return write_stream_ref(s, d, len, jobs, NULL);
}

/* The same with a reference stream for deltas. */
static int write_stream_ref(struct manifest_stream *s, const uint8_t *d, size_t len, int jobs,
			    const struct manifest_stream *ref)
{
	static const size_t pieces[] = { 1, 7, 4093, 65537, 1000003, 3 * MiB + 5, 13 };
	struct stream_writer *w;
	size_t off = 0, n, k = 0;
	int ret;

	ret = stream_writer_open(&w, &repo, s, ref, jobs);
	if (ret)
		return ret;
	while (off < len && ret == 0) {
		n = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];
		if (n > len - off)
			n = len - off;
		ret = stream_writer_write(w, d + off, n);
		off += n;
	}
	if (ret == 0)
		ret = stream_writer_finish(w);
	stream_writer_free(w);
	return ret;
}

/* A stream's chunk list as an array, read through its list objects. */
static struct manifest_chunk *chunks_of(const struct manifest_stream *s)
{
	struct manifest_chunk *out = xzalloc((s->nchunks + 1) * sizeof(*out));
	const struct manifest_chunk *mc;
	struct manifest_cursor *c;
	size_t n = 0;
	int ret;

	manifest_stream_cursor_open(&repo, s, &c);
	while ((ret = manifest_cursor_next(c, &mc)) == 1 && n < s->nchunks)
		out[n++] = *mc;
	if (ret < 0)
		diag("chunk list of %s: %s", s->name, pgk_errmsg());
	manifest_cursor_close(c);
	return out;
}

struct collect {
	struct pgk_buf buf;
	size_t fail_after;	/* return -42 once this many bytes arrived; 0 = never */
};

static int collect_sink(void *payload, const void *buf, size_t len)
{
	struct collect *c = payload;

	buf_append(&c->buf, buf, len);
	if (c->fail_after && c->buf.len >= c->fail_after)
		return -42;
	return 0;
}

static void round_trip(size_t len, int jobs)
{
	struct manifest m = { 0 };
	struct manifest_stream *s = manifest_add_stream(&m, "base.tar");
	struct collect c = { PGK_BUF_INIT, 0 };
	uint8_t *d = make_data(len, len + (uint64_t)jobs);
	struct manifest_chunk *chunks;
	char want[65];
	uint64_t sum = 0;
	size_t i;
	int ret;

	ret = write_stream(s, d, len, jobs);
	is_int(ret, 0, "write %zu bytes with %d jobs: %s", len, jobs, ret ? pgk_errmsg() : "ok");
	is_int(s->size, len, "  stream size recorded");
	xxh128_hex(d, len, want);
	ok(s->sum_alg == SUM_XXH3_128, "  stream checksum is XXH3-128");
	is_str(s->sum, want, "  and is the data's");
	chunks = chunks_of(s);
	for (i = 0; i < s->nchunks; i++)
		sum += chunks[i].size;
	free(chunks);
	ok(sum == len && (len == 0) == (s->nchunks == 0), "  %zu chunks add up to the stream",
	   s->nchunks);
	ret = stream_read(&repo, s, jobs, collect_sink, &c);
	is_int(ret, 0, "  read back with %d jobs: %s", jobs, ret ? pgk_errmsg() : "ok");
	ok(c.buf.len == len && (len == 0 || memcmp(c.buf.data, d, len) == 0),
	   "  same %zu bytes back", len);
	buf_free(&c.buf);
	manifest_free(&m);
	free(d);
}

/* Chunk ids do not depend on how many threads cut and stored them. */
static void test_jobs_agree(void)
{
	struct manifest m = { 0 };
	struct manifest_stream *a, *b;
	size_t len = 12 * MiB, i;
	uint8_t *d = make_data(len, 5);
	bool same;

	a = manifest_add_stream(&m, "one");
	is_int(write_stream(a, d, len, 1), 0, "12 MiB with 1 job");
	b = manifest_add_stream(&m, "eight");
	a = &m.streams[0];
	is_int(write_stream(b, d, len, 8), 0, "the same 12 MiB with 8 jobs");
	same = a->nchunks == b->nchunks;
	{
		struct manifest_chunk *ca = chunks_of(a), *cb = chunks_of(b);

		for (i = 0; same && i < a->nchunks; i++)
			same = strcmp(ca[i].id, cb[i].id) == 0 && ca[i].size == cb[i].size;
		free(ca);
		free(cb);
	}
	ok(same, "  same chunk list, in the same order");
	is_int(b->stored, 0, "  the second stream stored nothing new");
	manifest_free(&m);
	free(d);
}

static void test_dedup(void)
{
	struct manifest m = { 0 };
	struct manifest_stream *s;
	size_t len = 40 * MiB, nchunks, newer;
	uint8_t *d = make_data(len, 77), *e;
	uint64_t puts;

	s = manifest_add_stream(&m, "first");
	is_int(write_stream(s, d, len, 4), 0, "dedup: first 40 MiB stream");
	nchunks = s->nchunks;
	ok(s->stored > 0, "  it stored %llu bytes", (unsigned long long)s->stored);

	/* Its list objects aside: they are this stream's own. */
	puts = memstore_puts(repo.store);
	s = manifest_add_stream(&m, "again");
	is_int(write_stream(s, d, len, 4), 0, "  the same stream again");
	is_int(memstore_puts(repo.store) - puts - s->nlists, 0, "  no object stored the second time");
	is_int(s->stored, 0, "  nothing counted as stored");

	/* about 1%: three 100 KiB overwrites and one 1000-byte insertion */
	e = xmalloc(len + 1000);
	memcpy(e, d, 5 * MiB);
	fill_random(e + 5 * MiB, 1000, 1);
	memcpy(e + 5 * MiB + 1000, d + 5 * MiB, len - 5 * MiB);
	fill_random(e + 12 * MiB, 100 * 1024, 2);
	fill_random(e + 22 * MiB, 100 * 1024, 3);
	fill_random(e + 33 * MiB, 100 * 1024, 4);
	puts = memstore_puts(repo.store);
	s = manifest_add_stream(&m, "changed");
	is_int(write_stream(s, e, len + 1000, 4), 0, "  a 1%% modified stream");
	newer = (size_t)(memstore_puts(repo.store) - puts - s->nlists);
	ok(newer >= 4 && newer <= 10, "  %zu of %zu chunks stored anew for 4 edits", newer,
	   s->nchunks);
	ok(s->stored < len / 4, "  %llu bytes stored for it", (unsigned long long)s->stored);
	diag("first stream had %zu chunks", nchunks);
	manifest_free(&m);
	free(d);
	free(e);
}

/* A stream with its chunk list, and its data, for the failure tests. */
struct fixture {
	struct manifest m;
	struct manifest_stream *s;
	struct manifest_chunk *chunks;	/* its list, read back */
	uint8_t *d;
	size_t len;
};

static void fixture_make(struct fixture *f, size_t len, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->len = len;
	f->d = make_data(len, seed);
	f->s = manifest_add_stream(&f->m, "damaged.tar");
	if (write_stream(f->s, f->d, len, 3))
		diag("fixture write failed: %s", pgk_errmsg());
	f->chunks = chunks_of(f->s);
}

static void fixture_free(struct fixture *f)
{
	free(f->chunks);
	manifest_free(&f->m);
	free(f->d);
}

static size_t bytes_before(const struct manifest_chunk *chunks, size_t k)
{
	size_t i, n = 0;

	for (i = 0; i < k; i++)
		n += chunks[i].size;
	return n;
}

static void test_missing_and_corrupt(void)
{
	struct fixture f;
	struct collect c = { PGK_BUF_INIT, 0 };
	char key[CHUNK_KEY_MAX];
	size_t k;
	int ret;

	fixture_make(&f, 20 * MiB, 11);
	ok(f.s->nchunks >= 8, "damage: a stream of %zu chunks", f.s->nchunks);

	k = 5;
	chunk_key(f.chunks[k].id, key, sizeof(key));
	ok(strncmp(key, "chunks/", 7) == 0 && strncmp(key + 7, f.chunks[k].id, 2) == 0 &&
	   key[9] == '/' && strcmp(key + 10, f.chunks[k].id) == 0,
	   "chunk key is chunks/XX/ID (%s)", key);
	is_int(memstore_delete(repo.store, key), 0, "  chunk %zu deleted from the store", k);
	ret = stream_read(&repo, f.s, 4, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "  read fails: the repository is damaged");
	ok(strstr(pgk_errmsg(), f.chunks[k].id) && strstr(pgk_errmsg(), "missing") &&
	   strstr(pgk_errmsg(), key), "  message names the chunk: %s", pgk_errmsg());
	ok(strstr(pgk_errmsg(), "damaged.tar") != NULL, "  and the stream");
	ok(c.buf.len == bytes_before(f.chunks, k) && memcmp(c.buf.data, f.d, c.buf.len) == 0,
	   "  only the %zu verified bytes before it reached the sink", c.buf.len);
	buf_free(&c.buf);
	fixture_free(&f);

	fixture_make(&f, 20 * MiB, 12);
	k = 3;
	chunk_key(f.chunks[k].id, key, sizeof(key));
	is_int(memstore_corrupt(repo.store, key, 1000), 0, "chunk %zu: one byte flipped", k);
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "  read fails as corrupt");
	ok(strstr(pgk_errmsg(), key) != NULL, "  message names the object: %s", pgk_errmsg());
	ok(c.buf.len == bytes_before(f.chunks, k), "  nothing of the damaged chunk reached the sink");
	buf_free(&c.buf);
	fixture_free(&f);
}

static void test_bad_manifest(void)
{
	struct fixture f;
	struct collect c = { PGK_BUF_INIT, 0 };
	struct manifest_chunk saved;
	int ret;

	fixture_make(&f, 6 * MiB, 21);
	f.s->sum[0] = f.s->sum[0] == '0' ? '1' : '0';
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "a wrong stream checksum is refused");
	is_str(pgk_errmsg(), "stream damaged.tar: checksum mismatch", "  with the stream named");
	buf_reset(&c.buf);

	/* A stream from before XXH3 carries SHA-256, and is checked with it. */
	f.s->sum_alg = SUM_SHA256;
	sha256_hex(f.d, f.len, f.s->sum);
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	ok(ret == 0 && c.buf.len == f.len && memcmp(c.buf.data, f.d, f.len) == 0,
	   "a stream recorded with SHA-256 reads back: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&c.buf);
	f.s->sum[63] = f.s->sum[63] == '0' ? '1' : '0';
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "  and a wrong SHA-256 is refused");
	buf_reset(&c.buf);
	fixture_free(&f);

	/* A chunk list held in memory, as a manifest of format 1 has it. */
	fixture_make(&f, 6 * MiB, 22);
	manifest_stream_expand(&repo, f.s);
	saved = f.s->chunks[1];
	f.s->chunks[1] = f.s->chunks[0];
	f.s->chunks[0] = saved;
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "chunks listed out of order are refused");
	buf_reset(&c.buf);
	f.s->chunks[0] = f.s->chunks[1];
	f.s->chunks[1] = saved;
	f.s->chunks[2].size--;
	f.s->size--;
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, PGKEEP_ECORRUPT, "a chunk size that disagrees with the object is refused");
	ok(strstr(pgk_errmsg(), f.s->chunks[2].id) != NULL, "  naming it: %s", pgk_errmsg());
	buf_reset(&c.buf);
	f.s->chunks[2].size++;
	c.fail_after = 3 * MiB;
	ret = stream_read(&repo, f.s, 2, collect_sink, &c);
	is_int(ret, -42, "a failing sink stops the read with its own code");
	buf_free(&c.buf);
	fixture_free(&f);
}

static void test_failing_store(int jobs, unsigned nth)
{
	struct manifest m = { 0 };
	struct manifest_stream *s = manifest_add_stream(&m, "doomed.tar");
	size_t len = 30 * MiB;
	uint8_t *d = make_data(len, 1000 + nth + (uint64_t)jobs);
	int ret;

	memstore_fail_put(repo.store, nth);
	ret = write_stream(s, d, len, jobs);
	memstore_fail_put(repo.store, 0);
	is_int(ret, PGKEEP_EIO, "store failing at put %u, %d jobs: the writer fails", nth, jobs);
	ok(strstr(pgk_errmsg(), "injected failure") && strstr(pgk_errmsg(), "doomed.tar"),
	   "  with the store's message and the stream: %s", pgk_errmsg());
	manifest_free(&m);
	free(d);
}

static void test_backpressure(void)
{
	struct manifest m = { 0 };
	struct manifest_stream *s = manifest_add_stream(&m, "slow.tar");
	size_t len = 24 * MiB;
	uint8_t *d = make_data(len, 31337);

	/* Earlier tests ran 4 jobs against the same store. */
	memstore_reset_concurrent_puts(repo.store);
	memstore_set_put_delay(repo.store, 20000);
	is_int(write_stream(s, d, len, 3), 0, "a slow store with 3 jobs");
	memstore_set_put_delay(repo.store, 0);
	ok(memstore_max_concurrent_puts(repo.store) <= 3,
	   "  never more than 3 puts at once (%u)", memstore_max_concurrent_puts(repo.store));
	manifest_free(&m);
	free(d);
}

/*
 * Rows of a table as a dump holds them, day by day: each day a row in 100
 * (a different one) is gone and every 97th row changed, as scattered
 * updates leave a table; new rows are appended.
 */
static size_t dump_rows(uint8_t *p, size_t cap, unsigned day)
{
	size_t len = 0;
	unsigned i;

	for (i = 0; len + 100 < cap; i++) {
		if (day && i % 100 == day)
			continue;
		len += (size_t)snprintf((char *)p + len, cap - len,
					"%u\t%u\t%08x%08x\tnote %u for customer %u\n", i,
					i % 97 == day ? day : 0, i * 2654435761u, i * 40503u, i % 4099,
					i % 1000);
	}
	return len;
}

/* The bases chunk id is stored against (n = 0: stored whole). */
static void bases_of(const char *id, struct obj_bases *bs)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	char key[CHUNK_KEY_MAX];

	bs->n = 0;
	chunk_key(id, key, sizeof(key));
	if (store_get(repo.store, key, &obj) == 0)
		obj_chunk_bases(&repo.keys, key, obj.data, obj.len, bs);
	buf_free(&obj);
}

/* Chunks of s stored as deltas (new ones only, when fresh). */
static size_t count_deltas_of(const struct manifest_stream *s, bool fresh)
{
	struct manifest_chunk *chunks = chunks_of(s);
	struct obj_bases bs;
	size_t i, n = 0;

	for (i = 0; i < s->nchunks; i++) {
		if (fresh && chunks[i].stored == 0)
			continue;
		bases_of(chunks[i].id, &bs);
		n += bs.n > 0;
	}
	free(chunks);
	return n;
}

static size_t count_deltas(const struct manifest_stream *s)
{
	return count_deltas_of(s, false);
}

/* Delta chunks of s with a base that is itself a delta. */
static size_t count_chained(const struct manifest_stream *s)
{
	struct manifest_chunk *chunks = chunks_of(s);
	struct obj_bases bs, inner;
	size_t i, k, n = 0;

	for (i = 0; i < s->nchunks; i++) {
		bases_of(chunks[i].id, &bs);
		for (k = 0; k < bs.n; k++) {
			bases_of(bs.id[k], &inner);
			n += inner.n > 0;
		}
	}
	free(chunks);
	return n;
}

static void test_deltas(void)
{
	size_t cap = 24 * MiB, len[3], i, records;
	struct obj_bases bs;
	struct manifest m = { 0 };
	struct manifest_stream *s[3];
	struct collect c = { PGK_BUF_INIT, 0 };
	uint8_t *d[3];
	char key[CHUNK_KEY_MAX];
	struct pgk_buf saved = PGK_BUF_INIT;
	const char *base = NULL;
	int ret, day;

	repo.delta = true;
	for (day = 0; day < 3; day++) {
		d[day] = xmalloc(cap);
		len[day] = dump_rows(d[day], cap, (unsigned)day);
	}
	s[0] = manifest_add_stream(&m, "day0");
	is_int(write_stream(s[0], d[0], len[0], 3), 0, "deltas: day 0, %zu bytes, no reference",
	       len[0]);
	is_int(count_deltas(s[0]), 0, "  stored whole");
	{
		struct manifest_chunk *c0 = chunks_of(s[0]);

		ok(s[0]->nchunks > 8 && c0[0].known, "  %zu chunks, anchors recorded",
		   s[0]->nchunks);
		free(c0);
	}
	records = memstore_count(repo.store, "deltas/");

	s[1] = manifest_add_stream(&m, "day1");
	s[0] = &m.streams[0];
	ret = write_stream_ref(s[1], d[1], len[1], 3, s[0]);
	is_int(ret, 0, "  day 1 (a row in 100 gone, scattered changes) against day 0");
	ok(count_deltas(s[1]) * 10 >= s[1]->nchunks * 9, "  %zu of %zu chunks stored as deltas",
	   count_deltas(s[1]), s[1]->nchunks);
	ok(s[1]->stored * 10 < s[0]->stored, "  %llu bytes stored, day 0 took %llu",
	   (unsigned long long)s[1]->stored, (unsigned long long)s[0]->stored);
	ok(memstore_count(repo.store, "deltas/") - records >= count_deltas(s[1]),
	   "  a deltas/ record for each base of each");
	ret = stream_read(&repo, s[1], 4, collect_sink, &c);
	ok(ret == 0 && c.buf.len == len[1] && memcmp(c.buf.data, d[1], len[1]) == 0,
	   "  reads back exactly: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&c.buf);

	s[2] = manifest_add_stream(&m, "day2");
	s[0] = &m.streams[0];
	s[1] = &m.streams[1];
	ret = write_stream_ref(s[2], d[2], len[2], 2, s[1]);
	is_int(ret, 0, "  day 2 against day 1");
	ok(count_deltas(s[2]) * 10 >= s[2]->nchunks * 9, "  %zu of %zu chunks stored as deltas",
	   count_deltas(s[2]), s[2]->nchunks);
	is_int(count_chained(s[2]), 0, "  every base is a whole chunk (one level, never a chain)");
	ret = stream_read(&repo, s[2], 3, collect_sink, &c);
	ok(ret == 0 && c.buf.len == len[2] && memcmp(c.buf.data, d[2], len[2]) == 0,
	   "  reads back exactly: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&c.buf);

	/* A base that is gone: the delta's read names it. */
	{
		struct manifest_chunk *c2 = chunks_of(s[2]);

		for (i = 0; i < s[2]->nchunks && !base; i++) {
			bases_of(c2[i].id, &bs);
			if (bs.n)
				base = bs.id[0];
		}
		free(c2);
	}
	chunk_key(base, key, sizeof(key));
	store_get(repo.store, key, &saved);
	is_int(memstore_delete(repo.store, key), 0, "  a base chunk deleted");
	ret = stream_read(&repo, s[2], 2, collect_sink, &c);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "base chunk") &&
	   strstr(pgk_errmsg(), base), "  read fails naming the base: %s", pgk_errmsg());
	buf_reset(&c.buf);

	/* A reference whose base is unreadable: stored whole, the backup goes on. */
	repo.delta = false;
	{
		struct manifest m2 = { 0 };
		struct manifest_stream *t = manifest_add_stream(&m2, "off");

		memcpy(d[2] + len[2] / 2, "changed by hand", 15);
		ret = write_stream_ref(t, d[2], len[2], 2, s[1]);
		ok(ret == 0 && t->stored > 0 && count_deltas_of(t, true) == 0,
		   "  delta = no: changed chunks stored whole");
		repo.delta = true;
		memcpy(d[2] + len[2] / 3, "changed again!!", 15);
		ret = write_stream_ref(t = manifest_add_stream(&m2, "nobase"), d[2], len[2], 2, s[2]);
		ok(ret == 0, "  a reference with a missing base still backs up: %s",
		   ret ? pgk_errmsg() : "ok");
		/* Unchanged chunks are day 2's deltas: they need the base back. */
		store_put(repo.store, key, saved.data, saved.len, 0);
		ret = stream_read(&repo, t, 2, collect_sink, &c);
		ok(ret == 0 && c.buf.len == len[2] && memcmp(c.buf.data, d[2], len[2]) == 0,
		   "  and reads back exactly");
		buf_reset(&c.buf);
		manifest_free(&m2);
	}
	buf_free(&c.buf);
	buf_free(&saved);
	manifest_free(&m);
	for (day = 0; day < 3; day++)
		free(d[day]);
}

/*
 * The reference read through small list objects into a window of 8 of its
 * chunks, which has to move along the stream: deltas are still found; and
 * a damaged reference list only costs deltas.
 */
static void test_delta_window(void)
{
	size_t cap = 24 * MiB, len[2], nlists;
	struct manifest m = { 0 };
	struct manifest_stream *s[3];
	struct collect c = { PGK_BUF_INIT, 0 };
	char key[LIST_KEY_MAX];
	uint8_t *d[2];
	int ret, day;

	repo.delta = true;
	list_chunks_cap = 5;
	pipeline_ref_window = 8;
	for (day = 0; day < 2; day++) {
		d[day] = xmalloc(cap);
		len[day] = dump_rows(d[day], cap, (unsigned)day + 3);
	}
	s[0] = manifest_add_stream(&m, "w0");
	is_int(write_stream(s[0], d[0], len[0], 2), 0, "window: a reference in lists of 5 chunks");
	nlists = s[0]->nlists;
	ok(s[0]->nchunks > 16 && nlists == (s[0]->nchunks + 4) / 5, "  %zu chunks in %zu lists",
	   s[0]->nchunks, nlists);
	s[1] = manifest_add_stream(&m, "w1");
	s[0] = &m.streams[0];
	ret = write_stream_ref(s[1], d[1], len[1], 3, s[0]);
	is_int(ret, 0, "  the next day against it, 8 reference chunks at a time");
	ok(count_deltas(s[1]) * 10 >= s[1]->nchunks * 8, "  %zu of %zu chunks stored as deltas",
	   count_deltas(s[1]), s[1]->nchunks);
	ret = stream_read(&repo, s[1], 2, collect_sink, &c);
	ok(ret == 0 && c.buf.len == len[1] && memcmp(c.buf.data, d[1], len[1]) == 0,
	   "  reads back exactly: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&c.buf);

	/* The reference's third list damaged: the backup goes on, whole chunks from there. */
	list_key(s[0]->list_set, s[0]->index, 2, key, sizeof(key));
	memstore_corrupt(repo.store, key, 60);
	memcpy(d[1] + len[1] / 2, "changed by hand", 15);
	s[2] = manifest_add_stream(&m, "w2");
	s[0] = &m.streams[0];
	ret = write_stream_ref(s[2], d[1], len[1], 2, s[0]);
	is_int(ret, 0, "  a reference with a damaged list still backs up: %s",
	       ret ? pgk_errmsg() : "ok");
	ret = stream_read(&repo, s[2], 2, collect_sink, &c);
	ok(ret == 0 && c.buf.len == len[1] && memcmp(c.buf.data, d[1], len[1]) == 0,
	   "  and reads back exactly");
	buf_free(&c.buf);
	list_chunks_cap = LIST_CHUNKS_MAX;
	pipeline_ref_window = 32768;
	manifest_free(&m);
	for (day = 0; day < 2; day++)
		free(d[day]);
}

int main(void)
{
	static const size_t sizes[] = { 0, 1, 3 * MiB, 40 * MiB };
	size_t i;

	repo.store = memstore_open();
	repo.name = "test";
	repo.compress_level = 3;
	if (keys_generate(&repo.keys)) {
		diag("keys: %s", pgk_errmsg());
		return 1;
	}

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip(sizes[i], 1);
		round_trip(sizes[i], 4);
	}
	test_jobs_agree();
	test_dedup();
	test_missing_and_corrupt();
	test_bad_manifest();
	test_failing_store(1, 1);
	test_failing_store(4, 3);
	test_failing_store(4, 12);
	test_backpressure();
	test_deltas();
	test_delta_window();

	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

/*
 * The storage plugin contract: what every plugin must do, checked through
 * the agent's own loader and wrappers.  Prints TAP.
 *
 * Usage:  contract PLUGIN [key=value ...]
 *
 *   PLUGIN is a plugin name, looked up as NAME.so in $PGKEEP_TEST_PLUGIN_DIR
 *   (then $PGKEEP_PLUGIN_DIR, then the installed directory), or a path to a
 *   .so.  The key=value pairs are the repository options the plugin is opened
 *   with, e.g.
 *
 *       $top_builddir/tests/plugin/contract local path=/tmp/x
 *       $top_builddir/tests/plugin/contract s3 endpoint=http://127.0.0.1:4568 \
 *               bucket=test access_key_id=S3RVER secret_access_key=S3RVER \
 *               allow_insecure=yes
 *
 *   Everything is written below a fresh random prefix "ct-<hex>/" and removed
 *   at the end, so the suite can run against a shared server or bucket.
 *   Exit status 0 when every check passed.  A plugin test script runs it
 *   after starting its server and reports it as one of its own TAP lines.
 *
 *   The largest round trip is 24 MiB, enough to cross any multipart
 *   threshold at its default; a script that shrinks the part size to a few
 *   KiB to exercise multipart may lower it with PGKEEP_CONTRACT_LARGE_MIB
 *   (at least 2) rather than send thousands of parts.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/store.h"
#include "tap.h"

#define MiB (1024 * 1024)
#define NLIST 300
#define NTHREADS 8
#define KEYS_PER_THREAD 8

static struct pgk_store *st;
static char base[40];		/* "ct-<16 hex>/" */

static char *key_of(const char *rest)
{
	return xasprintf("%s%s", base, rest);
}

/* Deterministic bytes, different for every seed. */
static uint8_t *make_data(size_t len, uint64_t seed)
{
	uint8_t *d = xmalloc(len ? len : 1);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		d[i] = (uint8_t)(x >> 24);
	}
	return d;
}

/* Odd write sizes, so that no plugin gets only aligned blocks. */
static const size_t write_sizes[] = { 1, 7, 4093, 65537, 1, 1048577, 13, 262147, 3 * MiB + 5 };

/*
 * Stream data into key through the raw ops.  When `hold` is set it is
 * called between the last write and the commit (the race uses it).
 */
static int put_stream(const char *key, const uint8_t *data, size_t len, unsigned flags,
		      bool do_abort, void (*hold)(void), char *err)
{
	size_t off = 0, w = 0;
	void *put = NULL;
	int ret;

	err[0] = '\0';
	ret = st->ops.put_begin(st->handle, key, len, flags, &put, err);
	if (ret < 0) {
		if (hold)
			hold();
		return ret;
	}
	while (off < len) {
		size_t n = write_sizes[w++ % (sizeof(write_sizes) / sizeof(write_sizes[0]))];

		if (n > len - off)
			n = len - off;
		ret = st->ops.put_write(put, data + off, n, err);
		if (ret < 0) {
			st->ops.put_abort(put);
			if (hold)
				hold();
			return ret;
		}
		off += n;
	}
	if (hold)
		hold();
	if (do_abort) {
		st->ops.put_abort(put);
		return 0;
	}
	return st->ops.put_commit(put, err);
}

/* Byte-for-byte comparison that says where the first difference is. */
static bool same_bytes(const struct pgk_buf *got, const uint8_t *want, size_t len, const char *what)
{
	size_t i;

	if (got->len != len) {
		diag("%s: got %zu bytes, want %zu", what, got->len, len);
		return false;
	}
	if (len == 0 || memcmp(got->data, want, len) == 0)
		return true;
	for (i = 0; got->data[i] == want[i]; i++)
		;
	diag("%s: first difference at byte %zu", what, i);
	return false;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip(size_t len)
{
	char name[64], err[PGKEEP_ERRLEN];
	struct pgk_buf got = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	uint8_t *data = make_data(len, len);
	char *key;
	int ret;

	snprintf(name, sizeof(name), "rt/size-%zu", len);
	key = key_of(name);
	ret = put_stream(key, data, len, 0, false, NULL, err);
	is_int(ret, 0, "put of %zu bytes in odd-sized writes", len);
	if (ret)
		diag("%s", err);
	ret = store_get(st, key, &got);
	is_int(ret, 0, "get of %zu bytes", len);
	if (ret)
		diag("%s", pgk_errmsg());
	ok(ret == 0 && same_bytes(&got, data, len, key), "%zu bytes read back identical", len);
	ret = store_stat(st, key, &sb);
	ok(ret == 0 && sb.size == len, "stat reports %zu bytes (got %llu)", len,
	   (unsigned long long)sb.size);
	buf_free(&got);
	free(data);
	free(key);
}

/* ------------------------------------------------------------ missing keys */

static void test_missing(void)
{
	struct pgk_buf got = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	char *key = key_of("missing/never-written");
	int ret;

	ret = store_get(st, key, &got);
	is_int(ret, PGKEEP_ENOTFOUND, "get of a missing key is ENOTFOUND");
	diag("message: %s", pgk_errmsg());
	ok(got.len == 0, "and delivers no bytes");
	ret = store_stat(st, key, &sb);
	is_int(ret, PGKEEP_ENOTFOUND, "stat of a missing key is ENOTFOUND");
	ret = store_remove(st, key);
	is_int(ret, 0, "delete of a missing key succeeds");
	buf_free(&got);
	free(key);
}

/* ------------------------------------------------------------ ranged get */

static int collect(void *payload, const void *buf, size_t len)
{
	buf_append(payload, buf, len);
	return 0;
}

static void test_range(void)
{
	static const struct {
		uint64_t off, len;
	} cases[] = {
		{ 0, 10 }, { 1000, 5000 }, { MiB - 6, UINT64_MAX }, { 12345, MiB - 12345 },
		{ 77, 1 }, { 0, UINT64_MAX }, { 4093, 2 * 65537 },
	};
	char err[PGKEEP_ERRLEN];
	char *key = key_of("rt/size-1048576");
	uint8_t *data = make_data(MiB, MiB);
	size_t i;

	if (!store_has_feature(st, PGKEEP_FEAT_RANGE_GET)) {
		diag("plugin does not advertise PGKEEP_FEAT_RANGE_GET: ranges not checked");
		goto out;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pgk_buf got = PGK_BUF_INIT;
		uint64_t off = cases[i].off, len = cases[i].len;
		size_t want = len == UINT64_MAX ? MiB - off : len;
		int ret;

		err[0] = '\0';
		ret = st->ops.get(st->handle, key, off, len, collect, &got, err);
		if (ret)
			diag("%s", err);
		ok(ret == 0 && same_bytes(&got, data + off, want, "range"),
		   "ranged get offset %llu length %s%llu", (unsigned long long)off,
		   len == UINT64_MAX ? "to the end, " : "",
		   (unsigned long long)(len == UINT64_MAX ? want : len));
		buf_free(&got);
	}
out:
	free(data);
	free(key);
}

/* A sink that stops the transfer: get must hand its value back. */
static int stop_sink(void *payload, const void *buf, size_t len)
{
	(*(int *)payload)++;
	return 17;
}

static void test_sink_stop(void)
{
	char err[PGKEEP_ERRLEN] = "";
	char *key = key_of("rt/size-1048576");
	int calls = 0, ret;

	ret = st->ops.get(st->handle, key, 0, UINT64_MAX, stop_sink, &calls, err);
	is_int(ret, 17, "get returns the sink's non-zero value unchanged");
	is_int(calls, 1, "and calls the sink no more after it");
	free(key);
}

/* ------------------------------------------------------------ the key rule */

static int count_keys(void *payload, const char *key, const struct pgkeep_stat *sb)
{
	(*(size_t *)payload)++;
	return 0;
}

/* Keys outside the rule of pgkeep/storage.h are refused before any store work. */
static void test_key_rule(void)
{
	static const char *const bad[] = { "a/../b", "a//b", "a/./b", "k/x.tmp.y", "k/", "sp ace" };
	struct pgk_buf got = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	size_t i, n = 0;
	char *prefix;
	int ret;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *rel = xasprintf("badkeys/%s", bad[i]), *key = key_of(rel);

		ret = store_put(st, key, "x", 1, 0);
		is_int(ret, PGKEEP_EINVAL, "put of the key '%s' is EINVAL", key);
		ret = store_get(st, key, &got);
		is_int(ret, PGKEEP_EINVAL, "  and so is get");
		ret = store_stat(st, key, &sb);
		is_int(ret, PGKEEP_EINVAL, "  stat");
		ret = store_remove(st, key);
		is_int(ret, PGKEEP_EINVAL, "  and delete");
		free(key);
		free(rel);
	}
	ret = store_get(st, "/abs", &got);
	is_int(ret, PGKEEP_EINVAL, "an absolute key is EINVAL");
	ret = store_list(st, "../", count_keys, &n);
	is_int(ret, PGKEEP_EINVAL, "a list prefix outside the rule is EINVAL");
	prefix = key_of("badkeys/");
	ret = store_list(st, prefix, count_keys, &n);
	ok(ret == 0 && n == 0, "no refused put left an object (%zu under %s)", n, prefix);
	free(prefix);
	buf_free(&got);
}

/* ------------------------------------------------------------ put flags */

static void test_if_absent_and_overwrite(void)
{
	struct pgk_buf got = PGK_BUF_INIT;
	char err[PGKEEP_ERRLEN];
	uint8_t *a = make_data(5000, 1), *b = make_data(3000, 2), *c = make_data(7001, 3);
	char *key = key_of("flags/obj");
	struct pgkeep_stat sb;
	int ret;

	ret = put_stream(key, a, 5000, PGKEEP_PUT_IF_ABSENT, false, NULL, err);
	is_int(ret, 0, "put-if-absent of a new key succeeds");
	ret = put_stream(key, b, 3000, PGKEEP_PUT_IF_ABSENT, false, NULL, err);
	is_int(ret, PGKEEP_EEXISTS, "put-if-absent of an existing key is EEXISTS");
	diag("message: %s", err);
	ret = store_put(st, key, b, 3000, PGKEEP_PUT_IF_ABSENT);
	is_int(ret, PGKEEP_EEXISTS, "so is the whole-object store_put (not retried into success)");
	ret = store_get(st, key, &got);
	ok(ret == 0 && same_bytes(&got, a, 5000, key), "the original content is untouched");

	ret = put_stream(key, c, 7001, 0, false, NULL, err);
	is_int(ret, 0, "plain put over an existing key succeeds");
	ret = store_get(st, key, &got);
	ok(ret == 0 && same_bytes(&got, c, 7001, key), "and the new content replaced the old");
	ret = store_stat(st, key, &sb);
	ok(ret == 0 && sb.size == 7001, "stat follows the overwrite");
	ret = store_put(st, key, b, 3000, 0);
	is_int(ret, 0, "store_put overwrites too");
	ret = store_get(st, key, &got);
	ok(ret == 0 && same_bytes(&got, b, 3000, key), "with the shorter content, not a mix");

	buf_free(&got);
	free(a);
	free(b);
	free(c);
	free(key);
}

/* ------------------------------------------------------------ lists */

struct keyset {
	char **k;
	uint64_t *size;
	size_t n, cap;
	int stop_after;		/* >0: return 42 after that many keys */
};

static int add_key(void *payload, const char *key, const struct pgkeep_stat *sb)
{
	struct keyset *s = payload;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->k = xrealloc(s->k, s->cap * sizeof(*s->k));
		s->size = xrealloc(s->size, s->cap * sizeof(*s->size));
	}
	s->size[s->n] = sb ? sb->size : UINT64_MAX;
	s->k[s->n++] = xstrdup(key);
	if (s->stop_after && (int)s->n >= s->stop_after)
		return 42;
	return 0;
}

static void keyset_free(struct keyset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->k[i]);
	free(s->k);
	free(s->size);
	memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The list layout: names that share string prefixes across directories. */
static char *list_rel(int i)
{
	static const char *const dirs[] = { "a/", "ab/", "b/", "a/sub/", "a/sub/deep/", "" };

	return xasprintf("list/%s%03d", dirs[i % 6], i);
}

static size_t list_size(int i)
{
	return (size_t)(i * 37) % 1000;
}

static void check_listing(const char *rel_prefix)
{
	struct keyset got = { 0 }, want = { 0 };
	char *prefix = key_of(rel_prefix);
	bool same, sizes_ok = true;
	size_t i;
	int ret;

	for (i = 0; i < NLIST; i++) {
		char *rel = list_rel((int)i), *k = key_of(rel);
		struct pgkeep_stat sb = { list_size((int)i), 0 };

		if (strncmp(k, prefix, strlen(prefix)) == 0)
			add_key(&want, k, &sb);
		free(rel);
		free(k);
	}
	ret = store_list(st, prefix, add_key, &got);
	/* Sizes first: sorting moves the keys but not their sizes.  The list
	 * index is the last three digits of the name. */
	for (i = 0; i < got.n; i++) {
		size_t len = strlen(got.k[i]);

		if (len < 3 || got.size[i] != list_size(atoi(got.k[i] + len - 3)))
			sizes_ok = false;
	}
	/* An empty listing has no array: qsort must not see a null base. */
	if (got.n)
		qsort(got.k, got.n, sizeof(*got.k), cmp_str);
	if (want.n)
		qsort(want.k, want.n, sizeof(*want.k), cmp_str);
	same = ret == 0 && got.n == want.n;
	for (i = 0; same && i < got.n; i++)
		same = strcmp(got.k[i], want.k[i]) == 0;
	ok(same, "list '%s' gives exactly the %zu keys written under it", rel_prefix, want.n);
	if (!same) {
		diag("list returned %d (%s), %zu keys", ret, ret ? pgk_errmsg() : "", got.n);
		for (i = 0; i < got.n && i < 5; i++)
			diag("  got %s", got.k[i]);
	}
	if (same && got.n)
		ok(sizes_ok, "list '%s' reports each object's size", rel_prefix);
	keyset_free(&got);
	keyset_free(&want);
	free(prefix);
}

static void test_list(void)
{
	static const char *const prefixes[] = {
		"list/", "list/a/", "list/a", "list/ab/", "list/a/sub/", "list/a/sub/deep/",
		"list/b/", "list/a/00", "list/0", "list/1", "list/nothing/", "list/zz",
	};
	struct keyset got = { 0 };
	bool all_put = true;
	char *prefix;
	size_t i;
	int ret;

	for (i = 0; i < NLIST; i++) {
		char *rel = list_rel((int)i), *k = key_of(rel);
		uint8_t *d = make_data(list_size((int)i), i);

		if (store_put(st, k, d, list_size((int)i), 0) < 0) {
			if (all_put)
				diag("%s", pgk_errmsg());
			all_put = false;
		}
		free(d);
		free(rel);
		free(k);
	}
	ok(all_put, "%d objects written for listing", NLIST);
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		check_listing(prefixes[i]);

	got.stop_after = 3;
	prefix = key_of("list/");
	ret = store_list(st, prefix, add_key, &got);
	is_int(ret, 42, "list returns the callback's non-zero value");
	is_int(got.n, 3, "and stops calling it");
	keyset_free(&got);
	free(prefix);
}

/* ------------------------------------------------------------ abort, delete */

static void test_abort(void)
{
	struct keyset got = { 0 };
	char err[PGKEEP_ERRLEN];
	uint8_t *d = make_data(200000, 9);
	char *key = key_of("abort/obj"), *prefix = key_of("abort/");
	struct pgkeep_stat sb;
	int ret;

	ret = put_stream(key, d, 200000, 0, true, NULL, err);
	is_int(ret, 0, "put begun, written and aborted");
	ret = store_stat(st, key, &sb);
	is_int(ret, PGKEEP_ENOTFOUND, "an aborted put leaves no object (stat)");
	ret = store_list(st, prefix, add_key, &got);
	ok(ret == 0 && got.n == 0, "and nothing under its prefix in a listing (%zu keys)", got.n);
	keyset_free(&got);

	ret = put_stream(key, d, 200000, PGKEEP_PUT_IF_ABSENT, true, NULL, err);
	ret = store_stat(st, key, &sb);
	is_int(ret, PGKEEP_ENOTFOUND, "an aborted put-if-absent leaves no object either");
	ret = put_stream(key, d, 1000, PGKEEP_PUT_IF_ABSENT, false, NULL, err);
	is_int(ret, 0, "and does not block a later put-if-absent of the key");
	free(d);
	free(key);
	free(prefix);
}

static void test_delete(void)
{
	struct pgk_buf got = PGK_BUF_INIT;
	struct keyset ks = { 0 };
	char *key = key_of("del/obj"), *prefix = key_of("del/");
	struct pgkeep_stat sb;
	int ret;

	ret = store_put(st, key, "gone soon", 9, 0);
	is_int(ret, 0, "put an object to delete");
	ret = store_remove(st, key);
	is_int(ret, 0, "delete it");
	ret = store_get(st, key, &got);
	is_int(ret, PGKEEP_ENOTFOUND, "get after delete is ENOTFOUND");
	ret = store_stat(st, key, &sb);
	is_int(ret, PGKEEP_ENOTFOUND, "stat after delete is ENOTFOUND");
	ret = store_list(st, prefix, add_key, &ks);
	ok(ret == 0 && ks.n == 0, "list after delete does not show it");
	ret = store_remove(st, key);
	is_int(ret, 0, "deleting it again succeeds");
	keyset_free(&ks);
	buf_free(&got);
	free(key);
	free(prefix);
}

/* ------------------------------------------------------------ concurrency */

static pthread_barrier_t race_barrier;

static void race_hold(void)
{
	pthread_barrier_wait(&race_barrier);
}

struct worker {
	pthread_t tid;
	int id;
	int ret;
	int failures;
	char err[PGKEEP_ERRLEN];
	uint8_t *data;
	size_t len;
};

static size_t writer_len(int t, int j)
{
	return (size_t)(t * 7919 + j * 104729) % 300000 + 1;
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	int j;

	for (j = 0; j < KEYS_PER_THREAD; j++) {
		char rel[64], *k;
		uint8_t *d = make_data(writer_len(w->id, j), (uint64_t)(1000 + w->id * 100 + j));
		int ret;

		snprintf(rel, sizeof(rel), "par/t%d/k%d", w->id, j);
		k = key_of(rel);
		ret = put_stream(k, d, writer_len(w->id, j), 0, false, NULL, w->err);
		if (ret < 0 && !w->failures++)
			w->ret = ret;
		free(d);
		free(k);
	}
	return NULL;
}

static void *racer_main(void *arg)
{
	struct worker *w = arg;
	char *k = key_of("race/one");

	w->ret = put_stream(k, w->data, w->len, PGKEEP_PUT_IF_ABSENT, false, race_hold, w->err);
	free(k);
	return NULL;
}

static void test_concurrency(void)
{
	struct worker ws[NTHREADS], rs[NTHREADS];
	struct pgk_buf got = PGK_BUF_INIT;
	int i, j, wins = 0, exists = 0, other = 0, match = -1, bad_reads = 0;
	char *key;

	memset(ws, 0, sizeof(ws));
	memset(rs, 0, sizeof(rs));
	for (i = 0; i < NTHREADS; i++) {
		ws[i].id = i;
		pthread_create(&ws[i].tid, NULL, writer_main, &ws[i]);
	}
	pthread_barrier_init(&race_barrier, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		rs[i].id = i;
		rs[i].len = 150000 + (size_t)i * 1001;
		rs[i].data = make_data(rs[i].len, (uint64_t)(5000 + i));
		pthread_create(&rs[i].tid, NULL, racer_main, &rs[i]);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(ws[i].tid, NULL);
		pthread_join(rs[i].tid, NULL);
	}
	pthread_barrier_destroy(&race_barrier);

	for (i = 0; i < NTHREADS; i++) {
		if (ws[i].failures)
			diag("writer %d: %d failed puts: %s", i, ws[i].failures, ws[i].err);
		ok(ws[i].failures == 0, "writer thread %d stored its %d keys", i, KEYS_PER_THREAD);
	}
	for (i = 0; i < NTHREADS; i++)
		for (j = 0; j < KEYS_PER_THREAD; j++) {
			char rel[64], *k;
			uint8_t *d = make_data(writer_len(i, j), (uint64_t)(1000 + i * 100 + j));

			snprintf(rel, sizeof(rel), "par/t%d/k%d", i, j);
			k = key_of(rel);
			if (store_get(st, k, &got) < 0 || !same_bytes(&got, d, writer_len(i, j), k))
				bad_reads++;
			free(d);
			free(k);
		}
	is_int(bad_reads, 0, "all %d keys written concurrently read back identical",
	       NTHREADS * KEYS_PER_THREAD);

	for (i = 0; i < NTHREADS; i++) {
		if (rs[i].ret == 0)
			wins++;
		else if (rs[i].ret == PGKEEP_EEXISTS)
			exists++;
		else {
			other++;
			diag("racer %d: %s", i, rs[i].err);
		}
	}
	is_int(other, 0, "racing put-if-absent: every writer either won or got EEXISTS");
	if (store_has_feature(st, PGKEEP_FEAT_IF_ABSENT_ATOMIC)) {
		is_int(wins, 1, "racing put-if-absent: exactly one of %d writers wins", NTHREADS);
	} else {
		diag("plugin does not advertise PGKEEP_FEAT_IF_ABSENT_ATOMIC: %d winners", wins);
		ok(wins >= 1, "racing put-if-absent: at least one writer succeeds");
	}
	key = key_of("race/one");
	if (store_get(st, key, &got) == 0)
		for (i = 0; i < NTHREADS; i++)
			if (got.len == rs[i].len && memcmp(got.data, rs[i].data, got.len) == 0)
				match = i;
	ok(match >= 0, "the stored object is one writer's complete content");
	if (store_has_feature(st, PGKEEP_FEAT_IF_ABSENT_ATOMIC))
		ok(match >= 0 && rs[match].ret == 0, "and that writer is the winner");
	for (i = 0; i < NTHREADS; i++)
		free(rs[i].data);
	buf_free(&got);
	free(key);
}

/* ------------------------------------------------------------ options */

static void test_unknown_option(const char *plugin, const char *dir,
				const struct pgkeep_option *opts, size_t nopts)
{
	struct pgkeep_option *o = xmalloc((nopts + 1) * sizeof(*o));
	struct pgk_store *other = NULL;
	int ret;

	memcpy(o, opts, nopts * sizeof(*o));
	o[nopts].key = "no_such_option_xyz";
	o[nopts].value = "1";
	ret = store_open(&other, "contract", plugin, dir, o, nopts + 1);
	is_int(ret, PGKEEP_EINVAL, "an unknown option is refused with EINVAL");
	ok(ret < 0 && strstr(pgk_errmsg(), "no_such_option_xyz"),
	   "naming the option (%s)", pgk_errmsg());
	if (ret == 0)
		store_close(other);
	free(o);
}

/* ------------------------------------------------------------ cleanup */

static void cleanup(void)
{
	struct keyset ks = { 0 };
	size_t i;
	int failed = 0, ret;

	ret = store_list(st, base, add_key, &ks);
	if (ret)
		diag("%s", pgk_errmsg());
	for (i = 0; i < ks.n; i++)
		if (store_remove(st, ks.k[i]) < 0 && !failed++)
			diag("%s", pgk_errmsg());
	ok(ret == 0 && failed == 0, "removed the %zu objects the suite wrote", ks.n);
	keyset_free(&ks);
	ret = store_list(st, base, add_key, &ks);
	ok(ret == 0 && ks.n == 0, "nothing is left under %s", base);
	keyset_free(&ks);
}

static size_t large_mib(void)
{
	const char *v = getenv("PGKEEP_CONTRACT_LARGE_MIB");
	long n = v ? atol(v) : 24;

	return n >= 2 ? (size_t)n : 24;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("PGKEEP_TEST_PLUGIN_DIR");
	struct pgkeep_option *opts;
	unsigned char rnd[8];
	size_t nopts = 0, i;
	int a;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PLUGIN [key=value ...]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	opts = xzalloc((size_t)argc * sizeof(*opts));
	for (a = 2; a < argc; a++) {
		char *eq = strchr(argv[a], '=');

		if (!eq) {
			fprintf(stderr, "%s: option '%s' is not key=value\n", argv[0], argv[a]);
			return 2;
		}
		*eq = '\0';
		opts[nopts].key = argv[a];
		opts[nopts++].value = eq + 1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return 2;
	strcpy(base, "ct-");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(base + 3 + 2 * i, 3, "%02x", rnd[i]);
	strcat(base, "/");

	if (store_open(&st, "contract", argv[1], dir, opts, nopts) < 0) {
		printf("Bail out! %s\n", pgk_errmsg());
		free(opts);
		return 1;
	}
	diag("plugin %s (%s), features 0x%llx, keys under %s", st->ops.name, st->path,
	     (unsigned long long)st->ops.features, base);

	test_missing();
	test_round_trip(0);
	test_round_trip(1);
	test_round_trip(MiB);
	test_round_trip(large_mib() * MiB);
	test_range();
	test_sink_stop();
	test_if_absent_and_overwrite();
	test_abort();
	test_key_rule();
	test_delete();
	test_list();
	test_concurrency();
	test_unknown_option(argv[1], dir, opts, nopts);
	cleanup();

	store_close(st);
	free(opts);
	return done_testing();
}

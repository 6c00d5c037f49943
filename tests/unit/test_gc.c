/*
 * Garbage collection of chunks with deltas, against an in-memory store: a
 * base stays while a chunk that needs it stays (named by a manifest, or too
 * young to collect), records go with their chunks, and verify's checks see
 * bases as referenced and name a missing one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/gc.h"
#include "tap.h"

static struct repo repo;

/* A chunk id: 64 times the same hex digit. */
static const char *id_of(char c)
{
	static char ids[16][65];
	int i = c >= 'a' ? c - 'a' + 10 : c - '0';

	memset(ids[i], c, 64);
	ids[i][64] = '\0';
	return ids[i];
}

static bool has(const char *key)
{
	struct pgkeep_stat st;

	return store_stat(repo.store, key, &st) == 0;
}

static bool has_chunk(char c)
{
	char key[CHUNK_KEY_MAX];

	chunk_key(id_of(c), key, sizeof(key));
	return has(key);
}

static bool has_record(char c, char b)
{
	char key[DELTA_KEY_MAX];

	delta_key(id_of(c), id_of(b), key, sizeof(key));
	return has(key);
}

/* Put chunk c (written `age` seconds ago), as a delta of b when b is set. */
static void put_chunk(char c, char b, int64_t age)
{
	char key[DELTA_KEY_MAX];

	if (b) {
		delta_key(id_of(c), id_of(b), key, sizeof(key));
		store_put(repo.store, key, "", 0, 0);
		memstore_set_mtime(repo.store, key, (int64_t)time(NULL) - age);
	}
	chunk_key(id_of(c), key, sizeof(key));
	store_put(repo.store, key, "x", 1, 0);
	memstore_set_mtime(repo.store, key, (int64_t)time(NULL) - age);
}

/*
 * a: whole, old, base of c;  c: old delta of a;  e: whole, old, base of d;
 * d: young delta of e;  f: whole, old, nothing needs it.
 */
static void populate(void)
{
	put_chunk('a', 0, 86400);
	put_chunk('c', 'a', 86400);
	put_chunk('e', 0, 86400);
	put_chunk('d', 'e', 10);
	put_chunk('f', 0, 86400);
}

static void test_sweep(void)
{
	char *refs[] = { (char *)id_of('c') };
	struct gc_result res = { 0 };
	int ret;

	populate();
	ret = gc_sweep_chunks(&repo, refs, 1, 3600, true, &res);
	ok(ret == 0 && res.removed == 1 && res.young == 1,
	   "dry run: one chunk to remove, one young (%zu, %zu)", res.removed, res.young);
	ok(has_chunk('f'), "  nothing removed");

	memset(&res, 0, sizeof(res));
	ret = gc_sweep_chunks(&repo, refs, 1, 3600, false, &res);
	is_int(ret, 0, "sweep with c referenced, grace 1 h");
	is_int(res.removed, 1, "  removes one chunk");
	ok(!has_chunk('f'), "  the chunk nothing needs");
	ok(has_chunk('c') && has_chunk('a') && has_record('c', 'a'),
	   "  c stays with its base a and its record");
	ok(has_chunk('d') && has_chunk('e') && has_record('d', 'e'),
	   "  young d stays, and so does its old base e");

	memset(&res, 0, sizeof(res));
	ret = gc_sweep_chunks(&repo, NULL, 0, 0, false, &res);
	ok(ret == 0 && res.removed == 4, "nothing referenced, no grace: all four go (%zu)",
	   res.removed);
	ok(!has_record('c', 'a') && !has_record('d', 'e'), "  and the records with them");
	is_int(memstore_count(repo.store, ""), 0, "  the store is empty");
}

static void test_verify_views(void)
{
	char *refs[] = { (char *)id_of('c') }, *present[] = { (char *)id_of('c') }, **v = NULL;
	size_t n = 0, i;
	bool a_listed = false;
	int ret;

	populate();
	ret = gc_unreferenced_chunks(&repo, refs, 1, &v, &n);
	for (i = 0; i < n; i++)
		a_listed |= strcmp(v[i], id_of('a')) == 0;
	ok(ret == 0 && n == 3 && !a_listed,
	   "unreferenced: d, e and f, not c's base a (%zu listed)", n);
	gc_free_ids(v, n);

	ret = gc_missing_bases(&repo, refs, 1, present, 1, &v, &n);
	ok(ret == 0 && n == 1 && strncmp(v[0], id_of('c'), 64) == 0 && v[0][64] == '-' &&
	   strcmp(v[0] + 65, id_of('a')) == 0, "missing bases: c needs a, which is not present");
	gc_free_ids(v, n);
	present[0] = (char *)id_of('a');
	ret = gc_missing_bases(&repo, refs, 1, present, 1, &v, &n);
	ok(ret == 0 && n == 0, "  none when a is present");
	gc_free_ids(v, n);
}

int main(void)
{
	repo.store = memstore_open();
	repo.name = "test";
	test_sweep();
	test_verify_views();
	memstore_close(repo.store);
	return done_testing();
}

/*
 * Garbage collection of chunks with deltas, against an in-memory store: a
 * base stays while a chunk that needs it stays (named by a manifest, or too
 * young to collect), records go with their chunks, verify's checks see bases
 * as referenced and name a missing one, and splitting the work into passes
 * over id ranges changes nothing but the memory it takes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/gc.h"
#include "repo/keys.h"
#include "repo/manifest.h"
#include "tap.h"

static struct repo repo;

/* A chunk id: 64 times the same hex digit, so its first byte is 0xcc. */
static const char *id_of(char c)
{
	static char ids[16][65];
	int i = c >= 'a' ? c - 'a' + 10 : c - '0';

	memset(ids[i], c, 64);
	ids[i][64] = '\0';
	return ids[i];
}

/* Another id in the same range as id_of(c): c, then 63 times d. */
static const char *id2_of(char c, char d)
{
	static char id[65];

	memset(id, d, 64);
	id[0] = c;
	id[64] = '\0';
	return id;
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

static void put_at(const char *key, const char *data, size_t len, int64_t age)
{
	store_put(repo.store, key, data, len, 0);
	memstore_set_mtime(repo.store, key, (int64_t)time(NULL) - age);
}

static void put_record(const char *id, const char *base, int64_t age)
{
	char key[DELTA_KEY_MAX];

	delta_key(id, base, key, sizeof(key));
	put_at(key, "", 0, age);
}

/* Put chunk c (written `age` seconds ago), as a delta of b when b is set. */
static void put_chunk(char c, char b, int64_t age)
{
	char key[DELTA_KEY_MAX], id[65];

	snprintf(id, sizeof(id), "%s", id_of(c));
	if (b)
		put_record(id, id_of(b), age);
	chunk_key(id, key, sizeof(key));
	put_at(key, "x", 1, age);
}

/* References from an array of chunk ids; missing ones are noted. */
struct array_refs {
	const char **ids;
	size_t n;
	char missing[512];	/* the first digit of each id reported missing */
};

static int walk_array(void *payload, unsigned pass, unsigned npasses, gc_ref_fn fn, void *arg)
{
	struct array_refs *a = payload;
	size_t i;
	int rc;

	(void)pass, (void)npasses;
	for (i = 0; i < a->n; i++) {
		rc = fn(arg, a->ids[i]);
		if (rc < 0)
			return rc;
		if (rc == 1 && strlen(a->missing) + 1 < sizeof(a->missing))
			strncat(a->missing, a->ids[i], 1);
	}
	return 0;
}

static struct gc_refs refs_of(struct array_refs *a)
{
	return (struct gc_refs){ .walk = walk_array, .payload = a, .total = a->n };
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
	const char *c_only[] = { id_of('c') };
	struct array_refs a = { c_only, 1, "" }, none = { NULL, 0, "" };
	struct gc_refs refs = refs_of(&a), no_refs = refs_of(&none);
	struct gc_result res = { 0 };
	int ret;

	populate();
	ret = gc_sweep_chunks(&repo, &refs, GC_PASS_IDS, 3600, true, &res);
	ok(ret == 0 && res.removed == 1 && res.young == 1,
	   "dry run: one chunk to remove, one young (%zu, %zu)", res.removed, res.young);
	ok(has_chunk('f'), "  nothing removed");

	memset(&res, 0, sizeof(res));
	ret = gc_sweep_chunks(&repo, &refs, GC_PASS_IDS, 3600, false, &res);
	is_int(ret, 0, "sweep with c referenced, grace 1 h");
	is_int(res.removed, 1, "  removes one chunk");
	ok(!has_chunk('f'), "  the chunk nothing needs");
	ok(has_chunk('c') && has_chunk('a') && has_record('c', 'a'),
	   "  c stays with its base a and its record");
	ok(has_chunk('d') && has_chunk('e') && has_record('d', 'e'),
	   "  young d stays, and so does its old base e");

	memset(&res, 0, sizeof(res));
	ret = gc_sweep_chunks(&repo, &no_refs, GC_PASS_IDS, 0, false, &res);
	ok(ret == 0 && res.removed == 4, "nothing referenced, no grace: all four go (%zu)",
	   res.removed);
	ok(!has_record('c', 'a') && !has_record('d', 'e'), "  and the records with them");
	is_int(memstore_count(repo.store, ""), 0, "  the store is empty");
}

static void test_check_views(void)
{
	const char *c_only[] = { id_of('c') };
	struct array_refs a = { c_only, 1, "" };
	struct gc_refs refs = refs_of(&a);
	struct gc_check found;
	char key[CHUNK_KEY_MAX];
	int ret;

	populate();
	ret = gc_check_chunks(&repo, &refs, GC_PASS_IDS, &found);
	ok(ret == 0 && found.unreferenced == 3 && found.nmissing_bases == 0 && !a.missing[0],
	   "check: d, e and f unreferenced, not c's base a; nothing missing (%zu, %zu)",
	   found.unreferenced, found.nmissing_bases);
	gc_check_free(&found);

	chunk_key(id_of('a'), key, sizeof(key));
	memstore_delete(repo.store, key);
	ret = gc_check_chunks(&repo, &refs, GC_PASS_IDS, &found);
	ok(ret == 0 && found.nmissing_bases == 1 &&
	   strncmp(found.missing_bases[0], id_of('c'), 64) == 0 &&
	   found.missing_bases[0][64] == '-' && strcmp(found.missing_bases[0] + 65, id_of('a')) == 0,
	   "missing bases: c needs a, which is not present");
	gc_check_free(&found);

	chunk_key(id_of('c'), key, sizeof(key));
	memstore_delete(repo.store, key);
	ret = gc_check_chunks(&repo, &refs, GC_PASS_IDS, &found);
	is_str(a.missing, "c", "a named chunk that is gone is told missing");
	gc_check_free(&found);
}

static void test_passes(void)
{
	is_int(gc_passes(0, GC_PASS_IDS), 1, "passes: none for an empty repository");
	is_int(gc_passes(GC_PASS_IDS, GC_PASS_IDS), 1, "  one while the budget holds all");
	is_int(gc_passes(GC_PASS_IDS + 1, GC_PASS_IDS), 2, "  two just above it");
	is_int(gc_passes(30ull * 1024 * 1024, GC_PASS_IDS), 64,
	       "  64 for 30 backups of a million chunks");
	is_int(gc_passes(1ull << 40, 1), 256, "  never more than one per first byte");
}

/* ---- a repository of backups, swept in one pass and in many ---- */

static void save_backup(const char *id, int64_t start, const char *stream1, const char *stream2)
{
	struct manifest m;
	struct manifest_stream *s;
	const char *p;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.type = BACKUP_BASE;
	m.sysid = 7;
	m.pg_version = 150004;
	m.timeline = 1;
	m.start_lsn = 0x1000000;
	m.stop_lsn = 0x2000000;
	snprintf(m.wal_start, sizeof(m.wal_start), "000000010000000000000001");
	snprintf(m.wal_stop, sizeof(m.wal_stop), "000000010000000000000002");
	m.wal_seg_size = 16 * 1024 * 1024;
	m.start_time = start;
	m.stop_time = start + 60;
	s = manifest_add_stream(&m, "base.tar");
	memset(s->sum, '0', 32);	/* an XXH3-128 checksum, as new streams carry */
	for (p = stream1; *p; p++)
		manifest_stream_add_chunk(s, id_of(*p), 1, 1), s->size++;
	s = manifest_add_stream(&m, "16384.tar");
	memset(s->sum, '0', 32);	/* an XXH3-128 checksum, as new streams carry */
	for (p = stream2; *p; p++)
		manifest_stream_add_chunk(s, id_of(*p), 1, 1), s->size++;
	if (manifest_save(&repo, &m) < 0)
		diag("save %s: %s", id, pgk_errmsg());
	manifest_free(&m);
}

/*
 * Three backups, the oldest expired; bases in other id ranges than their
 * deltas (9 of 2, e of 3, d of 4, 6 of 8), a delta whose chunk is missing
 * (a of b), young chunks and stale records.
 */
static void populate_backups(void)
{
	memstore_close(repo.store);
	repo.store = memstore_open();
	save_backup("20260101T000000Z-base", 1767225600, "7d", "");
	save_backup("20260102T000000Z-base", 1767312000, "15", "9");
	save_backup("20260103T000000Z-base", 1767398400, "5c", "a");
	put_chunk('0', 0, 86400);
	put_chunk('1', 0, 86400);
	put_chunk('2', 0, 86400);
	put_chunk('3', 0, 86400);
	put_chunk('4', 0, 86400);
	put_chunk('5', 0, 86400);
	put_chunk('6', '8', 86400);
	put_chunk('7', 0, 86400);
	put_chunk('8', 0, 86400);
	put_chunk('9', '2', 86400);
	put_record(id_of('a'), id_of('b'), 86400);	/* chunk a itself is missing */
	put_chunk('b', 0, 86400);
	put_chunk('c', 0, 86400);
	put_chunk('d', '4', 86400);
	put_chunk('e', '3', 10);
	put_chunk('f', 0, 10);
	put_record(id2_of('4', '0'), id_of('c'), 86400);	/* stale */
	put_record(id2_of('d', '1'), id_of('1'), 10);	/* young, its chunk not yet there */
}

static int add_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct pgk_buf *b = payload;

	(void)st;
	buf_printf(b, "%s\n", key);
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key in the store, sorted, one a line. */
static char *snapshot(void)
{
	struct pgk_buf b = PGK_BUF_INIT, out = PGK_BUF_INIT;
	char **lines = NULL, *text, *p, *nl;
	size_t n = 0, i;

	store_list(repo.store, "", add_key, &b);
	text = buf_detach(&b);
	for (p = text; p && (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		lines = xrealloc(lines, (n + 1) * sizeof(*lines));
		lines[n++] = p;
	}
	if (n > 1)
		qsort(lines, n, sizeof(*lines), cmp_line);
	for (i = 0; i < n; i++)
		buf_printf(&out, "%s\n", lines[i]);
	free(lines);
	free(text);
	return out.data ? buf_detach(&out) : xstrdup("");
}

/* Sweep the backups that stay with this budget; the store's keys after. */
static char *sweep_backups(size_t budget, bool dry_run, struct gc_result *res, int *ret)
{
	struct manifest *list = NULL;
	struct gc_backups b;
	struct gc_refs refs;
	/* As expire passes them: the oldest backup is the one expiring, not walked. */
	bool skip[3] = { true, false, false };
	size_t n = 0;

	populate_backups();
	memset(res, 0, sizeof(*res));
	*ret = manifest_list_summary(&repo, &list, &n);
	if (*ret == 0 && n != 3)
		*ret = -100;
	if (*ret == 0) {
		b = (struct gc_backups){ .r = &repo, .list = list, .n = n, .skip = skip };
		gc_refs_of_backups(&refs, &b);
		if (refs.total != 8)
			diag("total references %llu, not 8", (unsigned long long)refs.total);
		*ret = gc_sweep_chunks(&repo, &refs, budget, 3600, dry_run, res);
	}
	if (*ret < 0)
		diag("%s", pgk_errmsg());
	manifest_list_free(list, n);
	return snapshot();
}

static void test_sweep_passes(void)
{
	static const char gone[] = "0467 8d";	/* ' ': none */
	struct gc_result one, many;
	char *after_one, *after_many, key[DELTA_KEY_MAX];
	size_t budgets[] = { 4, 2, 1 }, i;
	bool all_gone = true, all_there = true;
	const char *p;
	int ret;

	after_one = sweep_backups(GC_PASS_IDS, false, &one, &ret);
	is_int(ret, 0, "backups swept in one pass");
	ok(one.removed == 6 && one.young == 2,
	   "  six chunks removed, two young kept (%zu, %zu)", one.removed, one.young);
	for (p = gone; *p; p++)
		if (*p != ' ')
			all_gone &= !has_chunk(*p);
	for (p = "12359bcef"; *p; p++)
		all_there &= has_chunk(*p);
	ok(all_gone, "  gone: unnamed, the expired backup's, and the base only it needed");
	ok(all_there, "  kept: named, bases of named or young deltas, young");
	ok(has_record('9', '2') && has_record('a', 'b') && has_record('e', '3'),
	   "  the records of kept deltas stay, also of a named chunk that is missing");
	ok(!has_record('6', '8') && !has_record('d', '4'), "  those of removed deltas go");
	delta_key(id2_of('4', '0'), id_of('c'), key, sizeof(key));
	ok(!has(key), "  an old record without a chunk goes");
	delta_key(id2_of('d', '1'), id_of('1'), key, sizeof(key));
	ok(has(key), "  a young one stays");

	for (i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		after_many = sweep_backups(budgets[i], false, &many, &ret);
		ok(ret == 0 && strcmp(after_one, after_many) == 0,
		   "budget of %zu ids (%u passes): the same objects remain", budgets[i],
		   gc_passes(8, budgets[i]));
		ok(many.removed == one.removed && many.bytes == one.bytes &&
		   many.young == one.young && many.locked == one.locked,
		   "  and the same counts (%zu removed, %zu young)", many.removed, many.young);
		if (strcmp(after_one, after_many) != 0)
			diag("one pass left:\n%s\nmany left:\n%s", after_one, after_many);
		free(after_many);
	}
	free(sweep_backups(GC_PASS_IDS, true, &one, &ret));
	after_many = sweep_backups(1, true, &many, &ret);
	ok(ret == 0 && many.removed == one.removed && many.young == one.young,
	   "dry run: the same counts in one pass and in eight (%zu, %zu)", many.removed,
	   many.young);
	ok(strstr(after_many, "chunks/00/") != NULL, "  and nothing removed");
	free(after_many);
	free(after_one);
}

static int cmp_char(const void *a, const void *b)
{
	return *(const char *)a - *(const char *)b;
}

static void test_check_passes(void)
{
	const char *named[] = { id_of('1'), id_of('5'), id_of('9'), id_of('5'), id_of('c'),
				id_of('a'), "not an id" };
	struct gc_check one, many;
	size_t budgets[] = { 3, 1 }, i, j;
	struct array_refs a1 = { named, 7, "" };
	struct gc_refs refs = refs_of(&a1);
	char key[CHUNK_KEY_MAX];
	struct gc_result res;
	int ret;

	free(sweep_backups(GC_PASS_IDS, true, &res, &ret));
	chunk_key(id_of('2'), key, sizeof(key));
	memstore_delete(repo.store, key);
	ret = gc_check_chunks(&repo, &refs, GC_PASS_IDS, &one);
	ok(ret == 0 && one.unreferenced == 9,
	   "check in one pass: nine chunks nothing needs (%zu)", one.unreferenced);
	ok(one.nmissing_bases == 1 && strncmp(one.missing_bases[0], id_of('9'), 64) == 0 &&
	   strcmp(one.missing_bases[0] + 65, id_of('2')) == 0, "  9's base 2 missing");
	is_str(a1.missing, "an", "  a missing, and a name that is no id");
	for (i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		struct array_refs a = { named, 7, "" };
		bool same;

		refs = refs_of(&a);
		ret = gc_check_chunks(&repo, &refs, budgets[i], &many);
		same = ret == 0 && many.unreferenced == one.unreferenced &&
		       many.nmissing_bases == one.nmissing_bases;
		for (j = 0; same && j < one.nmissing_bases; j++)
			same = strcmp(many.missing_bases[j], one.missing_bases[j]) == 0;
		ok(same, "budget of %zu ids (%u passes): the same findings", budgets[i],
		   gc_passes(7, budgets[i]));
		/* Told pass by pass: the order is the ranges'. */
		qsort(a.missing, strlen(a.missing), 1, cmp_char);
		is_str(a.missing, a1.missing, "  the same chunks told missing");
		gc_check_free(&many);
	}
	gc_check_free(&one);
}

/* Many ids, each named four times: repeats dropped as the sets fill. */
static void many_id(unsigned i, char out[65])
{
	snprintf(out, 65, "%02x%062x", (i * 37) & 0xff, i);
}

static int walk_many(void *payload, unsigned pass, unsigned npasses, gc_ref_fn fn, void *arg)
{
	unsigned i, round, *named = payload;
	char id[65];
	int rc;

	(void)pass, (void)npasses;
	for (round = 0; round < 4; round++)
		for (i = 0; i < *named; i++) {
			many_id(i, id);
			rc = fn(arg, id);
			if (rc < 0)
				return rc;
		}
	return 0;
}

static void test_many(void)
{
	unsigned named = 6000, i;
	struct gc_refs refs = { walk_many, &named, 4 * 6000 };
	size_t budgets[] = { GC_PASS_IDS, 5000 }, b;
	char id[65], key[CHUNK_KEY_MAX];

	for (b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
		struct gc_result res = { 0 };
		bool named_stay = true;
		int ret;

		memstore_close(repo.store);
		repo.store = memstore_open();
		for (i = 0; i < 9000; i++) {
			many_id(i, id);
			chunk_key(id, key, sizeof(key));
			put_at(key, "x", 1, 86400);
		}
		ret = gc_sweep_chunks(&repo, &refs, budgets[b], 3600, false, &res);
		for (i = 0; i < named; i++) {
			many_id(i, id);
			chunk_key(id, key, sizeof(key));
			named_stay &= has(key);
		}
		ok(ret == 0 && res.removed == 3000 && named_stay,
		   "%u passes, 24000 references to 6000 chunks of 9000: the other 3000 go (%zu)",
		   gc_passes(refs.total, budgets[b]), res.removed);
	}
}

int main(void)
{
	repo.store = memstore_open();
	repo.name = "test";
	repo.compress_level = 3;
	if (keys_generate(&repo.keys)) {
		diag("keys: %s", pgk_errmsg());
		return 1;
	}
	test_passes();
	test_sweep();
	test_check_views();
	test_sweep_passes();
	test_check_passes();
	test_many();
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

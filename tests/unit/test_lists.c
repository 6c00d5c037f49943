/*
 * List objects: chunk lists written in pieces (a small cap, so that every
 * boundary is crossed) read back in order through the cursor; a list that is
 * damaged, truncated, missing, swapped with its neighbour or replayed from
 * another backup is refused naming the backup, the stream and the object;
 * manifests of format 1 still read; the stream writer never holds more than
 * one list; orphan lists are found and swept.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "tap.h"

static struct repo repo;

static void entry(unsigned seed, unsigned i, struct manifest_chunk *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%032x%032x", seed, i * 2654435761u);
	c->size = 100 + i % 7;
	c->stored = i % 3 ? 0 : 60 + i;
	c->known = i % 4 != 0;
	c->anchor = c->known ? 0xf00dfacecafe0000ULL + i : 0;
}

/* A dump backup of one stream of n chunks (and an empty second stream), saved. */
static int make_backup(const char *id, unsigned seed, unsigned n, struct manifest *m)
{
	struct manifest_stream *s;
	struct manifest_chunk c;
	struct list_out lo;
	unsigned i;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->type = BACKUP_DUMP;
	m->start_time = 1000 + seed;
	m->stop_time = 2000 + seed;
	s = manifest_add_stream(m, "db.dump");
	memset(s->sum, 'b', 32);
	list_out_init(&lo, &repo, s);
	for (i = 0; ret == 0 && i < n; i++) {
		entry(seed, i, &c);
		s->size += c.size;
		s->stored += c.stored;
		ret = list_out_append(&lo, &c);
	}
	if (ret == 0)
		ret = list_out_flush(&lo);
	list_out_free(&lo);
	s = manifest_add_stream(m, "empty");
	memset(s->sum, 'e', 32);
	list_out_init(&lo, &repo, s);
	if (ret == 0)
		ret = list_out_flush(&lo);
	list_out_free(&lo);
	if (ret == 0)
		ret = manifest_save(&repo, m);
	return ret;
}

/* Read stream k of m through a cursor: count and check every entry; 0 or the error. */
static int read_all(const struct manifest *m, size_t k, unsigned seed, unsigned *got,
		    unsigned *right)
{
	struct manifest_cursor *c;
	const struct manifest_chunk *mc;
	struct manifest_chunk want;
	int ret;

	*got = *right = 0;
	ret = manifest_cursor_open(&repo, m, k, &c);
	if (ret)
		return ret;
	while ((ret = manifest_cursor_next(c, &mc)) == 1) {
		entry(seed, *got, &want);
		*right += strcmp(mc->id, want.id) == 0 && mc->size == want.size &&
			  mc->stored == want.stored && mc->known == want.known &&
			  mc->anchor == want.anchor;
		(*got)++;
	}
	manifest_cursor_close(c);
	return ret;
}

static void test_round_trip(void)
{
	static const unsigned counts[] = { 1, 2, 3, 4, 9, 10 };
	struct manifest m, l;
	unsigned got, right, i;
	char id[32];
	int ret;

	list_chunks_cap = 3;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		snprintf(id, sizeof(id), "rt-%u", counts[i]);
		ret = make_backup(id, counts[i], counts[i], &m);
		is_int(ret, 0, "%u chunks, 3 a list: saved: %s", counts[i], ret ? pgk_errmsg() : "ok");
		ok(m.streams[0].nlists == (counts[i] + 2) / 3 && m.streams[1].nlists == 0,
		   "  in %zu list object(s), none for the empty stream", m.streams[0].nlists);
		manifest_free(&m);
		ret = manifest_load(&repo, id, &l);
		ok(ret == 0 && l.streams[0].listed && !l.streams[0].chunks &&
		   l.streams[0].nchunks == counts[i] && l.streams[0].max_chunk == 100 + (counts[i] > 6 ? 6 : counts[i] - 1),
		   "  loaded without its lists: %s", ret ? pgk_errmsg() : "ok");
		ret = read_all(&l, 0, counts[i], &got, &right);
		ok(ret == 0 && got == counts[i] && right == counts[i],
		   "  the cursor yields them in order (%u of %u right): %s", right, got,
		   ret ? pgk_errmsg() : "ok");
		ret = read_all(&l, 1, 0, &got, &right);
		ok(ret == 0 && got == 0, "  the empty stream ends at once");
		manifest_free(&l);
	}
	list_chunks_cap = LIST_CHUNKS_MAX;

	ret = manifest_load_full(&repo, "rt-10", &l);
	ok(ret == 0 && l.streams[0].chunks && l.streams[0].nchunks == 10,
	   "manifest_load_full expands the lists");
	ret = read_all(&l, 0, 10, &got, &right);
	ok(ret == 0 && got == 10 && right == 10, "  and the cursor reads the expanded list");
	manifest_free(&l);
}

/* The key of list seq of the first stream of backup id. */
static void key_of(const char *id, size_t seq, char *key, size_t len)
{
	struct manifest m;

	manifest_load(&repo, id, &m);
	list_key(m.list_set, 0, seq, key, len);
	manifest_free(&m);
}

/* Read backup id's first stream; the error message, or NULL when it read. */
static const char *refused(const char *id)
{
	struct manifest m;
	unsigned got, right;
	int ret;

	ret = manifest_load(&repo, id, &m);
	if (ret == 0)
		ret = read_all(&m, 0, 0, &got, &right);
	manifest_free(&m);
	return ret == PGKEEP_ECORRUPT ? pgk_errmsg() : NULL;
}

static bool names(const char *msg, const char *id, const char *key)
{
	return msg && strstr(msg, id) && strstr(msg, "db.dump") && strstr(msg, key);
}

static void test_damage(void)
{
	struct pgk_buf l0 = PGK_BUF_INIT, l1 = PGK_BUF_INIT, o0 = PGK_BUF_INIT;
	struct pgk_buf plain = PGK_BUF_INIT;
	char k0[LIST_KEY_MAX], k1[LIST_KEY_MAX], other[LIST_KEY_MAX];
	struct manifest m, *list;
	const char *msg;
	size_t n;

	list_chunks_cap = 4;
	make_backup("dmg", 7, 12, &m);
	manifest_free(&m);
	make_backup("other", 8, 12, &m);
	manifest_free(&m);
	list_chunks_cap = LIST_CHUNKS_MAX;
	key_of("dmg", 0, k0, sizeof(k0));
	key_of("dmg", 1, k1, sizeof(k1));
	key_of("other", 0, other, sizeof(other));
	ok(refused("dmg") == NULL, "a backup of three lists reads");
	store_get(repo.store, k0, &l0);
	store_get(repo.store, k1, &l1);
	store_get(repo.store, other, &o0);

	memstore_corrupt(repo.store, k1, 50);
	msg = refused("dmg");
	ok(names(msg, "dmg", k1), "a damaged list is refused, named: %s", msg ? msg : "(read)");
	store_put(repo.store, k1, l1.data, l1.len, 0);

	/* Sealed with the right key, count and all, but two entries short. */
	repo_get(&repo, k1, OBJ_LIST, &plain);
	plain.len -= 2 * LIST_ENTRY_LEN;
	plain.data[12] -= 2;
	repo_put(&repo, k1, OBJ_LIST, plain.data, plain.len, 0);
	msg = refused("dmg");
	ok(names(msg, "dmg", k1), "a truncated list is refused, named: %s", msg ? msg : "(read)");
	store_put(repo.store, k1, l1.data, l1.len, 0);

	store_put(repo.store, k0, l1.data, l1.len, 0);
	store_put(repo.store, k1, l0.data, l0.len, 0);
	msg = refused("dmg");
	ok(names(msg, "dmg", k0), "two lists swapped are refused, named: %s", msg ? msg : "(read)");
	store_put(repo.store, k0, l0.data, l0.len, 0);
	store_put(repo.store, k1, l1.data, l1.len, 0);

	store_put(repo.store, k0, o0.data, o0.len, 0);
	msg = refused("dmg");
	ok(names(msg, "dmg", k0), "a list replayed from another backup is refused, named: %s",
	   msg ? msg : "(read)");
	store_put(repo.store, k0, l0.data, l0.len, 0);

	memstore_delete(repo.store, k1);
	msg = refused("dmg");
	ok(names(msg, "dmg", k1) && strstr(msg, "missing"), "a missing list is refused: %s",
	   msg ? msg : "(read)");
	ok(manifest_list(&repo, &list, &n) == PGKEEP_ECORRUPT, "  and fails the full listing");
	ok(manifest_list_summary(&repo, &list, &n) == 0, "  but not the summary listing");
	manifest_list_free(list, n);
	store_put(repo.store, k1, l1.data, l1.len, 0);
	ok(refused("dmg") == NULL, "  put back, it reads again");
	buf_free(&l0);
	buf_free(&l1);
	buf_free(&o0);
	buf_free(&plain);
}

/* Format 1: chunk lists inline, as every backup before list objects has them. */
static void test_inline(void)
{
	struct manifest m = { 0 }, l, *list;
	struct manifest_stream *s;
	struct manifest_chunk c, *mc;
	struct pgk_buf json = PGK_BUF_INIT;
	unsigned i, got, right;
	size_t n, k;
	int ret;

	snprintf(m.id, sizeof(m.id), "inline");
	m.type = BACKUP_DUMP;
	m.start_time = 5;
	s = manifest_add_stream(&m, "db.dump");
	for (i = 0; i < 20; i++) {
		entry(3, i, &c);
		mc = manifest_stream_add_chunk(s, c.id, c.size, c.stored);
		mc->known = c.known;
		mc->anchor = c.anchor;
		s->size += c.size;
	}
	memset(s->sum, 'c', 32);
	manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	ok(strstr((char *)json.data, "\"manifest\":1,") && strstr((char *)json.data, "\"chunks\""),
	   "a manifest built in memory is written in format 1");
	buf_free(&json);
	is_int(manifest_save(&repo, &m), 0, "  saved");
	manifest_free(&m);
	ret = manifest_load(&repo, "inline", &l);
	ok(ret == 0 && !l.streams[0].listed && l.streams[0].chunks && l.streams[0].max_chunk == 106,
	   "  loads with its chunks held, largest chunk found");
	ret = read_all(&l, 0, 3, &got, &right);
	ok(ret == 0 && got == 20 && right == 20, "  the cursor yields them");
	manifest_free(&l);
	ret = manifest_list_summary(&repo, &list, &n);
	for (k = 0; k < n && strcmp(list[k].id, "inline") != 0; k++)
		;
	ok(ret == 0 && k < n, "  listed in the summary");
	if (k < n) {
		ret = read_all(&list[k], 0, 3, &got, &right);
		ok(ret == 0 && got == 20 && right == 20, "  a cursor over its summary reads it");
	}
	manifest_list_free(list, n);
}

/* Format 2 fields that cannot be. */
static void test_bad_json(void)
{
	static const struct {
		const char *stream, *field, *what;
	} cases[] = {
		{ "\"nchunks\":3,\"max_chunk\":10,\"lists\":[[2,\"SHA\"]]", "nchunks", "counts that disagree" },
		{ "\"nchunks\":20000,\"max_chunk\":10,\"lists\":[[20000,\"SHA\"]]", "lists", "a list above the limit" },
		{ "\"nchunks\":2,\"max_chunk\":10,\"lists\":[[2,\"ABCSHA\"]]", "lists", "a bad digest" },
		{ "\"nchunks\":2,\"max_chunk\":3,\"lists\":[[2,\"SHA\"]]", "max_chunk", "chunks too small for the size" },
		{ "\"nchunks\":2,\"max_chunk\":10,\"lists\":[[2,\"SHA\"]],\"chunks\":[]", "chunks", "inline chunks too" },
		{ "\"nchunks\":2,\"max_chunk\":10", "lists", "no lists" },
	};
	char sha[65], stream[512], text[2048];
	struct manifest m;
	size_t i;
	int ret;

	memset(sha, 'd', 64);
	sha[64] = 0;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* SHA in a case stands for a well-formed digest. */
		const char *at = strstr(cases[i].stream, "SHA");

		if (at)
			snprintf(stream, sizeof(stream), "%.*s%s%s", (int)(at - cases[i].stream),
				 cases[i].stream, sha, at + 3);
		else
			snprintf(stream, sizeof(stream), "%s", cases[i].stream);
		snprintf(text, sizeof(text),
			 "{\"manifest\":2,\"id\":\"x\",\"type\":\"dump\",\"sysid\":1,\"pg_version\":150000,"
			 "\"timeline\":1,\"start_lsn\":0,\"stop_lsn\":0,\"wal_start\":\"\",\"wal_stop\":\"\","
			 "\"start_time\":1,\"stop_time\":2,\"list_set\":\"%s\",\"streams\":[{\"name\":\"s\","
			 "\"size\":10,\"stored\":0,\"sha256\":\"%s\",%s}]}",
			 "0123456789abcdef0123456789abcdef", sha, stream);
		ret = manifest_from_json(&m, text, strlen(text), "backups/x.manifest");
		ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), cases[i].field),
		   "format 2 with %s is refused: %s", cases[i].what, pgk_errmsg());
	}
	snprintf(text, sizeof(text),
		 "{\"manifest\":2,\"id\":\"x\",\"type\":\"dump\",\"sysid\":1,\"pg_version\":150000,"
		 "\"timeline\":1,\"start_lsn\":0,\"stop_lsn\":0,\"wal_start\":\"\",\"wal_stop\":\"\","
		 "\"start_time\":1,\"stop_time\":2,\"streams\":[]}");
	ret = manifest_from_json(&m, text, strlen(text), "backups/x.manifest");
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "list_set"),
	   "format 2 without a list set is refused");
}

static int sink_count(void *payload, const void *buf, size_t len)
{
	(void)buf;
	*(uint64_t *)payload += len;
	return 0;
}

/* The writer stores a list as each fills: it never holds the stream's list. */
static void test_writer(void)
{
	struct manifest m = { 0 };
	struct manifest_stream *s;
	struct stream_writer *w;
	size_t len = 6u << 20, i, lists_before = memstore_count(repo.store, "lists/");
	uint8_t *d = xmalloc(len);
	uint64_t seed = 99, z, got = 0;
	bool bounded = true;
	int ret;

	for (i = 0; i < len; i++) {
		z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		d[i] = (uint8_t)(z ^ (z >> 27));
	}
	list_chunks_cap = 2;
	snprintf(m.id, sizeof(m.id), "written");
	m.type = BACKUP_BASE;
	s = manifest_add_stream(&m, "base.tar");
	ret = stream_writer_open(&w, &repo, s, NULL, 3);
	for (i = 0; ret == 0 && i < len; i += 65536) {
		ret = stream_writer_write(w, d + i, 65536);
		/* Lists are stored as they fill, not at the end. */
		bounded &= s->chunks == NULL;
	}
	if (ret == 0)
		ret = stream_writer_finish(w);
	stream_writer_free(w);
	list_chunks_cap = LIST_CHUNKS_MAX;
	is_int(ret, 0, "a 6 MiB stream written with 2 chunks a list: %s", ret ? pgk_errmsg() : "ok");
	ok(bounded && s->chunks == NULL && s->listed, "  no chunk list held in the stream");
	ok(s->nchunks >= 3 && s->nlists == (s->nchunks + 1) / 2 &&
	   memstore_count(repo.store, "lists/") - lists_before == s->nlists,
	   "  %zu chunks in %zu list objects", s->nchunks, s->nlists);
	for (i = 0; i < s->nlists; i++)
		bounded &= s->lists[i].count <= 2;
	ok(bounded, "  none of more than 2 entries");
	ret = stream_read(&repo, s, 2, sink_count, &got);
	ok(ret == 0 && got == len, "  read back through the lists: %s", ret ? pgk_errmsg() : "ok");
	is_int(manifest_save(&repo, &m), 0, "  its manifest saved (format 2)");
	manifest_free(&m);
	free(d);
}

static void test_sweep(void)
{
	struct manifest *list;
	struct gc_result res = { 0 };
	char live[LIST_KEY_MAX], orphan_old[LIST_KEY_MAX], orphan_young[LIST_KEY_MAX];
	char gone[LIST_KEY_MAX];
	bool *goneflag;
	size_t n, k, count = 0, before;
	int ret;

	/* A killed backup: lists, no manifest. */
	list_key("00000000000000000000000000000001", 0, 0, orphan_old, sizeof(orphan_old));
	list_key("00000000000000000000000000000002", 0, 0, orphan_young, sizeof(orphan_young));
	repo_put(&repo, orphan_old, OBJ_LIST, "x", 1, 0);
	repo_put(&repo, orphan_young, OBJ_LIST, "x", 1, 0);
	memstore_set_mtime(repo.store, orphan_old, time(NULL) - 7200);
	key_of("rt-10", 0, live, sizeof(live));
	key_of("other", 0, gone, sizeof(gone));

	ret = manifest_list_summary(&repo, &list, &n);
	if (ret)
		diag("summary: %s", pgk_errmsg());
	ret = ret ? ret : lists_unreferenced(&repo, list, n, &count);
	ok(ret == 0 && count == 2, "two list objects of no backup found (%zu)", count);

	goneflag = xzalloc(n * sizeof(*goneflag));
	for (k = 0; k < n; k++)
		goneflag[k] = strcmp(list[k].id, "other") == 0;
	before = memstore_count(repo.store, "lists/");
	ret = lists_sweep(&repo, list, n, goneflag, 3600, true, &res);
	ok(ret == 0 && memstore_count(repo.store, "lists/") == before && res.removed == 4 &&
	   res.young == 1, "dry run: %zu would go, %zu young kept", res.removed, res.young);
	memset(&res, 0, sizeof(res));
	ret = lists_sweep(&repo, list, n, goneflag, 3600, false, &res);
	ok(ret == 0 && res.removed == 4 && memstore_count(repo.store, "lists/") == before - 4,
	   "sweep: the expired backup's lists and the old orphan removed");
	ok(store_stat(repo.store, live, &(struct pgkeep_stat){ 0 }) == 0 &&
	   store_stat(repo.store, orphan_young, &(struct pgkeep_stat){ 0 }) == 0 &&
	   store_stat(repo.store, orphan_old, &(struct pgkeep_stat){ 0 }) == PGKEEP_ENOTFOUND &&
	   store_stat(repo.store, gone, &(struct pgkeep_stat){ 0 }) == PGKEEP_ENOTFOUND,
	   "  a kept backup's lists and a young orphan stay");
	free(goneflag);
	manifest_list_free(list, n);
}

/*
 * A backup with a tablespace stream is written in format 3, so that a
 * pgkeep from before tablespaces refuses it instead of restoring its data
 * directory alone; a format 2 manifest naming a tablespace is refused.
 */
static void test_tablespace_format(void)
{
	struct pgk_buf json = PGK_BUF_INIT;
	struct manifest m, back;
	char *text, *at;
	int ret;

	ret = make_backup("ts-1", 2, 2, &m);
	is_int(ret, 0, "a listed backup to give a tablespace: %s", ret ? pgk_errmsg() : "ok");
	if (ret)
		return;
	ret = manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	ok(ret == 0 && strstr((char *)json.data, "\"manifest\":2"),
	   "  without a tablespace it is format 2");
	buf_reset(&json);
	manifest_stream_set_tablespace(&m.streams[1], 16385, "/srv/spc");
	ret = manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	text = (char *)json.data;
	at = ret == 0 ? strstr(text, "\"manifest\":3") : NULL;
	ok(at != NULL, "  with one it is format 3");
	ret = manifest_from_json(&back, text, strlen(text), "ts-1");
	ok(ret == 0 && back.streams[1].tblspc_oid == 16385, "  which reads back: %s",
	   ret ? pgk_errmsg() : "ok");
	if (ret == 0)
		manifest_free(&back);
	if (at) {
		at[strlen("\"manifest\":")] = '2';
		ret = manifest_from_json(&back, text, strlen(text), "ts-1");
		ok(ret < 0 && strstr(pgk_errmsg(), "tablespace_oid"),
		   "  the same as format 2 is refused: %s", ret ? pgk_errmsg() : "read");
		if (ret == 0)
			manifest_free(&back);
	}
	buf_free(&json);
	manifest_free(&m);
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
	test_round_trip();
	test_damage();
	test_inline();
	test_bad_json();
	test_writer();
	test_sweep();
	test_tablespace_format();
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

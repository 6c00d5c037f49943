/*
 * The golden backups of tests/data/backups, written once (make_golden),
 * must read forever: manifests of formats 2 and 3, chunk lists in list
 * objects, chunks stored whole, uncompressed and as a delta.  A change to
 * any of those formats that a release could not read fails here.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/mem.h"
#include "golden.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "tap.h"

static struct repo repo;
static char *data_dir;
static size_t loaded;

static int read_file(const char *path, struct pgk_buf *out)
{
	FILE *f = fopen(path, "rb");
	char piece[4096];
	size_t n;

	if (!f)
		return -1;
	while ((n = fread(piece, 1, sizeof(piece), f)) > 0)
		buf_append(out, piece, n);
	fclose(f);
	return 0;
}

/* Each file under the directory becomes the object its relative path names. */
static int load_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	const char *key = path + strlen(data_dir) + 1;

	(void)sb;
	(void)ftw;
	if (type != FTW_F || strcmp(key, "README") == 0)
		return 0;
	if (read_file(path, &obj) == 0 && store_put(repo.store, key, obj.data, obj.len, 0) == 0)
		loaded++;
	else
		diag("cannot load %s", path);
	buf_free(&obj);
	return 0;
}

static int load(void)
{
	const char *top = getenv("top_srcdir");
	struct pgk_buf slot = PGK_BUF_INIT;
	char *path = xasprintf("%s/tests/data/format-v1/keyslot.json", top ? top : ".");
	int ret;

	data_dir = xasprintf("%s/tests/data/backups", top ? top : ".");
	ret = read_file(path, &slot);
	if (ret == 0)
		ret = keyslot_unwrap(&repo.keys, GOLDEN_PASSPHRASE, slot.data, slot.len);
	free(path);
	buf_free(&slot);
	if (ret)
		return -1;
	nftw(data_dir, load_one, 8, FTW_PHYS);
	is_int(loaded, 14, "the 14 golden objects are there");
	return loaded == 14 ? 0 : -1;
}

static void chunk_id_of(char which, char id[65])
{
	struct pgk_buf plain = PGK_BUF_INIT;

	golden_chunk(&plain, which);
	keys_chunk_id(&repo.keys, plain.data, plain.len, id);
	buf_free(&plain);
}

/* The manifest object itself: JSON that says its format. */
static void manifest_format(const char *id, int want)
{
	struct pgk_buf plain = PGK_BUF_INIT;
	struct json_object *o = NULL, *v;
	char *key = xasprintf("backups/%s.manifest", id);
	int ret;

	ret = repo_get(&repo, key, OBJ_MANIFEST, &plain);
	if (ret == 0)
		buf_append(&plain, "", 1);
	if (ret == 0)
		o = json_tokener_parse((const char *)plain.data);
	ok(o && json_object_object_get_ex(o, "manifest", &v) && json_object_get_int(v) == want,
	   "%s opens and says manifest format %d: %s", key, want, ret ? pgk_errmsg() : "ok");
	json_object_put(o);
	buf_free(&plain);
	free(key);
}

static void check_header(const struct manifest *m, const char *id, uint64_t lsn,
			 const char *seg, int64_t start_us, int64_t stop_us, const char *label)
{
	ok(strcmp(m->id, id) == 0 && m->type == BACKUP_BASE && m->sysid == GOLDEN_SYSID &&
	   m->pg_version == GOLDEN_PG_VERSION && m->timeline == 1,
	   "  id, type, cluster, version, timeline");
	ok(m->start_lsn == lsn + 0x28 && m->stop_lsn == lsn + 0x100 &&
	   strcmp(m->wal_start, seg) == 0 && strcmp(m->wal_stop, seg) == 0,
	   "  LSNs and WAL range");
	ok(manifest_start_us(m) == start_us && manifest_stop_us(m) == stop_us &&
	   m->start_time == start_us / 1000000 && m->stop_time == stop_us / 1000000 + 1,
	   "  times, exact and in seconds (the stop rounded up)");
	ok(m->label && strcmp(m->label, label) == 0 && !m->dbname && !m->format, "  label");
}

static int collect(void *payload, const void *buf, size_t len)
{
	buf_append(payload, buf, len);
	return 0;
}

/*
 * A stream's chunk list through the cursor (each list object checked
 * against the manifest), then its bytes through the reader.
 */
static void check_stream(const struct manifest_stream *s, const char *name, const char *chunks,
			 const char *stored, size_t nlists)
{
	struct pgk_buf want = PGK_BUF_INIT, got = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	const struct manifest_chunk *mc;
	struct manifest_cursor *cur = NULL;
	size_t n = 0, bad = 0;
	uint32_t max = 0;
	char id[65];
	int ret;

	ok(strcmp(s->name, name) == 0 && s->listed && s->nlists == nlists &&
	   s->nchunks == strlen(chunks) && s->sum_alg == SUM_XXH3_128,
	   "  stream %s: %zu chunks in %zu list objects, an XXH3-128 sum", name, strlen(chunks),
	   nlists);
	ret = manifest_stream_cursor_open(&repo, s, &cur);
	while (ret == 0 && (ret = manifest_cursor_next(cur, &mc)) == 1) {
		ret = 0;
		if (n >= strlen(chunks)) {
			bad++;
			break;
		}
		buf_reset(&plain);
		golden_chunk(&plain, chunks[n]);
		keys_chunk_id(&repo.keys, plain.data, plain.len, id);
		bad += strcmp(mc->id, id) != 0 || mc->size != plain.len || !mc->known ||
		       mc->anchor != keys_chunk_anchor(&repo.keys, plain.data, plain.len) ||
		       (stored[n] == '0') != (mc->stored == 0);
		max = plain.len > max ? (uint32_t)plain.len : max;
		buf_append(&want, plain.data, plain.len);
		n++;
	}
	manifest_cursor_close(cur);
	ok(ret == 0 && n == strlen(chunks) && bad == 0 && s->size == want.len &&
	   s->max_chunk == max,
	   "  its entries: ids, sizes, anchors, what each stored: %s", ret ? pgk_errmsg() : "ok");
	ret = stream_read(&repo, s, 2, collect, &got);
	ok(ret == 0 && got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
	   "  reads back to its bytes, whole-stream sum checked: %s", ret ? pgk_errmsg() : "ok");
	buf_free(&want);
	buf_free(&got);
	buf_free(&plain);
}

/* The list object itself: magic, version, count, 49-byte entries. */
static void list_object(const struct manifest *m)
{
	struct pgk_buf plain = PGK_BUF_INIT;
	char key[LIST_KEY_MAX], id[65];
	uint8_t raw[32];
	int ret;

	list_key(m->list_set, 0, 0, key, sizeof(key));
	ret = repo_get(&repo, key, OBJ_LIST, &plain);
	chunk_id_of('a', id);
	ok(ret == 0 && hex_decode(id, 32, raw) && plain.len == 16 + 2 * 49 &&
	   memcmp(plain.data, "PGKLIST\0", 8) == 0 && plain.data[8] == 1 && plain.data[12] == 2 &&
	   memcmp(plain.data + 16, raw, 32) == 0 && plain.data[16 + 48] == 1,
	   "%s: magic, version 1, two entries, the first chunk's id and flags: %s", key,
	   ret ? pgk_errmsg() : "ok");
	buf_free(&plain);
}

static int base_of(void *arg, const char *base_id, struct pgk_buf *plain)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	char key[CHUNK_KEY_MAX];
	int ret;

	(void)arg;
	chunk_key(base_id, key, sizeof(key));
	ret = store_get(repo.store, key, &obj);
	if (ret == 0)
		ret = obj_open(&repo.keys, OBJ_CHUNK, key, obj.data, obj.len, plain);
	buf_free(&obj);
	return ret;
}

/* Chunk B0 is stored as a delta of A0 (compression 2), with its deltas/ record. */
static void delta_object(void)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT, want = PGK_BUF_INIT;
	struct obj_bases bs = { 0 };
	char key[CHUNK_KEY_MAX], rec[DELTA_KEY_MAX], a[65], b[65];
	struct pgkeep_stat st;
	int ret;

	chunk_id_of('a', a);
	chunk_id_of('b', b);
	chunk_key(b, key, sizeof(key));
	delta_key(b, a, rec, sizeof(rec));
	ret = store_get(repo.store, key, &obj);
	ok(ret == 0 && obj.len > OBJ_HEADER_LEN && obj.data[9] == 2 && obj_is_delta(obj.data, obj.len),
	   "%s is a delta (compression 2)", key);
	ret = obj_chunk_bases(&repo.keys, key, obj.data, obj.len, &bs);
	ok(ret == 0 && bs.n == 1 && strcmp(bs.id[0], a) == 0, "  of one base, chunk A0: %s",
	   ret ? pgk_errmsg() : "ok");
	ret = obj_open_chunk(&repo.keys, key, obj.data, obj.len, &plain, base_of, NULL);
	golden_chunk(&want, 'b');
	ok(ret == 0 && plain.len == want.len && memcmp(plain.data, want.data, want.len) == 0,
	   "  opens to its plaintext: %s", ret ? pgk_errmsg() : "ok");
	ok(store_stat(repo.store, rec, &st) == 0, "  its record %s is there", rec);
	buf_free(&obj);
	buf_free(&plain);
	buf_free(&want);
}

static void backups(void)
{
	struct manifest m;
	int ret;

	manifest_format(GOLDEN_BACKUP_1, 2);
	ret = manifest_load(&repo, GOLDEN_BACKUP_1, &m);
	is_int(ret, 0, "backup 1 loads: %s", ret ? pgk_errmsg() : "ok");
	if (ret == 0) {
		check_header(&m, GOLDEN_BACKUP_1, 0x3000000, "000000010000000000000003",
			     1796695200123456, 1796695203654321, "golden backup 1");
		is_int(m.nstreams, 1, "  one stream");
		check_stream(&m.streams[0], "base.tar", "anc", "sss", 2);
		ok(m.streams[0].tblspc_oid == 0 && !m.streams[0].tblspc_location,
		   "  not a tablespace");
		list_object(&m);
		manifest_free(&m);
	}
	manifest_format(GOLDEN_BACKUP_2, 3);
	ret = manifest_load(&repo, GOLDEN_BACKUP_2, &m);
	is_int(ret, 0, "backup 2 loads: %s", ret ? pgk_errmsg() : "ok");
	if (ret == 0) {
		check_header(&m, GOLDEN_BACKUP_2, 0x5000000, "000000010000000000000005",
			     1796698800500000, 1796698807250000, "golden backup 2");
		is_int(m.nstreams, 2, "  two streams");
		/* N and A2 were in backup 1 already: stored 0. */
		check_stream(&m.streams[0], "base.tar", "bnc", "s00", 2);
		check_stream(&m.streams[1], "tblspc/16385.tar", "t", "s", 1);
		ok(m.streams[1].tblspc_oid == GOLDEN_TBLSPC_OID && m.streams[1].tblspc_location &&
		   strcmp(m.streams[1].tblspc_location, GOLDEN_TBLSPC_LOCATION) == 0,
		   "  the second is tablespace %u at %s", GOLDEN_TBLSPC_OID, GOLDEN_TBLSPC_LOCATION);
		manifest_free(&m);
	}
}

static void sysid(void)
{
	int ret = repo_check_sysid(&repo, GOLDEN_SYSID);

	is_int(ret, 0, "meta/sysid records the golden cluster: %s", ret ? pgk_errmsg() : "ok");
	repo.sysid = 0;
	ok(repo_check_sysid(&repo, GOLDEN_SYSID + 1) < 0, "  and refuses another");
	pgk_error_clear();
}

int main(void)
{
	repo.store = memstore_open();
	repo.name = "golden";
	repo.compress_level = 3;
	if (load() < 0) {
		printf("Bail out! the golden backups cannot be loaded: %s\n", pgk_errmsg());
		return 1;
	}
	backups();
	delta_object();
	sysid();
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

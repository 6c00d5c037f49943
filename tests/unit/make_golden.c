/*
 * Wrote the golden backups of tests/data/backups (see its README) with the
 * writers backups use: chunks sealed whole or as a delta, list objects,
 * manifests.  Run once; running it again makes other bytes (fresh nonces
 * and list sets), and the files must never be replaced.  It is built with
 * the tests so that it keeps compiling, and never run by them.
 *
 *   make tests/unit/make_golden
 *   tests/unit/make_golden tests/data/format-v1/keyslot.json OUTDIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/mem.h"
#include "golden.h"
#include "memstore.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/streamsum.h"

static struct repo repo;

static int fail(const char *what)
{
	fprintf(stderr, "make_golden: %s: %s\n", what, pgk_errmsg());
	return -1;
}

static int read_all(const char *path, struct pgk_buf *out)
{
	FILE *f = fopen(path, "rb");
	char piece[4096];
	size_t n;

	if (!f)
		return pgk_error(PGKEEP_EIO, "cannot open %s: %s", path, strerror(errno));
	while ((n = fread(piece, 1, sizeof(piece), f)) > 0)
		buf_append(out, piece, n);
	fclose(f);
	return 0;
}

/* Seal a chunk whole, or as a delta of chunk `base` with its deltas/ record. */
static int seal_chunk(const char *key, const char *id, const struct pgk_buf *plain, char base,
		      struct pgk_buf *sealed)
{
	struct obj_bases bs = { .n = 1, .plain = PGK_BUF_INIT };
	char rec[DELTA_KEY_MAX];
	int ret;

	if (!base)
		return obj_seal(&repo.keys, OBJ_CHUNK, key, repo.compress_level, plain->data,
				plain->len, sealed);
	golden_chunk(&bs.plain, base);
	keys_chunk_id(&repo.keys, bs.plain.data, bs.plain.len, bs.id[0]);
	delta_key(id, bs.id[0], rec, sizeof(rec));
	ret = repo_put(&repo, rec, OBJ_META, "", 0, PGKEEP_PUT_IF_ABSENT);
	if (ret == 0)
		ret = obj_seal_delta(&repo.keys, key, repo.compress_level, &bs, plain->data,
				     plain->len, sealed);
	buf_free(&bs.plain);
	return ret;
}

/* One chunk of a stream: stored unless the repository has it, then listed. */
static int add_chunk(struct list_out *lo, struct stream_sum *sum, char which, char base)
{
	struct manifest_stream *s = lo->s;
	struct pgk_buf plain = PGK_BUF_INIT, sealed = PGK_BUF_INIT;
	struct manifest_chunk mc = { .known = true };
	char key[CHUNK_KEY_MAX];
	struct pgkeep_stat st;
	int ret = 0;

	golden_chunk(&plain, which);
	keys_chunk_id(&repo.keys, plain.data, plain.len, mc.id);
	mc.size = (uint32_t)plain.len;
	mc.anchor = keys_chunk_anchor(&repo.keys, plain.data, plain.len);
	chunk_key(mc.id, key, sizeof(key));
	stream_sum_update(sum, plain.data, plain.len);
	s->size += plain.len;
	if (store_stat(repo.store, key, &st) != 0) {
		ret = seal_chunk(key, mc.id, &plain, base, &sealed);
		if (ret == 0)
			ret = store_put(repo.store, key, sealed.data, sealed.len,
					PGKEEP_PUT_IF_ABSENT);
		mc.stored = (uint32_t)sealed.len;
		s->stored += sealed.len;
	}
	if (ret == 0)
		ret = list_out_append(lo, &mc);
	buf_free(&plain);
	buf_free(&sealed);
	return ret;
}

/* A stream of chunks, each letter a chunk of golden_chunk; bases[i] is chunk i's delta base or 0. */
static int add_stream(struct manifest *m, const char *name, const char *chunks,
		      const char *bases)
{
	struct manifest_stream *s = manifest_add_stream(m, name);
	struct stream_sum sum;
	struct list_out lo;
	size_t i;
	int ret;

	s->sum_alg = STREAM_SUM_DEFAULT;
	ret = stream_sum_init(&sum, s->sum_alg);
	if (ret)
		return ret;
	list_out_init(&lo, &repo, s);
	for (i = 0; ret == 0 && chunks[i]; i++)
		ret = add_chunk(&lo, &sum, chunks[i], bases[i] == '-' ? 0 : bases[i]);
	if (ret == 0)
		ret = list_out_flush(&lo);
	if (ret == 0)
		ret = stream_sum_final_hex(&sum, s->sum);
	list_out_free(&lo);
	stream_sum_free(&sum);
	return ret;
}

static void header(struct manifest *m, const char *id, uint64_t lsn, const char *seg,
		   int64_t start_us, int64_t stop_us, const char *label)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->type = BACKUP_BASE;
	m->sysid = GOLDEN_SYSID;
	m->pg_version = GOLDEN_PG_VERSION;
	m->timeline = 1;
	m->start_lsn = lsn + 0x28;
	m->stop_lsn = lsn + 0x100;
	snprintf(m->wal_start, sizeof(m->wal_start), "%s", seg);
	snprintf(m->wal_stop, sizeof(m->wal_stop), "%s", seg);
	m->wal_seg_size = 16u << 20;
	manifest_set_start(m, start_us);
	manifest_set_stop(m, stop_us);
	m->label = xstrdup(label);
}

static int write_backups(void)
{
	struct manifest m;
	int ret;

	ret = repo_check_sysid(&repo, GOLDEN_SYSID);
	if (ret)
		return fail("meta/sysid");
	/* Lists of two entries, so that a stream of three has two. */
	list_chunks_cap = 2;
	header(&m, GOLDEN_BACKUP_1, 0x3000000, "000000010000000000000003",
	       1796695200123456, 1796695203654321, "golden backup 1");
	ret = add_stream(&m, "base.tar", "anc", "---");
	if (ret == 0)
		ret = manifest_save(&repo, &m);
	manifest_free(&m);
	if (ret)
		return fail(GOLDEN_BACKUP_1);
	header(&m, GOLDEN_BACKUP_2, 0x5000000, "000000010000000000000005",
	       1796698800500000, 1796698807250000, "golden backup 2");
	ret = add_stream(&m, "base.tar", "bnc", "a--");
	if (ret == 0) {
		ret = add_stream(&m, "tblspc/16385.tar", "t", "-");
		manifest_stream_set_tablespace(&m.streams[1], GOLDEN_TBLSPC_OID,
					       GOLDEN_TBLSPC_LOCATION);
	}
	if (ret == 0)
		ret = manifest_save(&repo, &m);
	manifest_free(&m);
	return ret ? fail(GOLDEN_BACKUP_2) : 0;
}

static int mkdirs_for(char *path)
{
	char *p;

	for (p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "make_golden: mkdir %s: %s\n", path, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* Every object of the store, as a file named by its key under the directory. */
static int dump_one(void *payload, const char *key, const struct pgkeep_stat *st)
{
	const char *dir = payload;
	struct pgk_buf obj = PGK_BUF_INIT;
	char *path = xasprintf("%s/%s", dir, key);
	FILE *f = NULL;
	int ret = -1;

	(void)st;
	if (store_get(repo.store, key, &obj) == 0 && mkdirs_for(path) == 0)
		f = fopen(path, "wbx");
	if (f && fwrite(obj.data, 1, obj.len, f) == obj.len && fclose(f) == 0)
		ret = 0;
	else
		fprintf(stderr, "make_golden: cannot write %s\n", path);
	free(path);
	buf_free(&obj);
	return ret;
}

int main(int argc, char **argv)
{
	struct pgk_buf slot = PGK_BUF_INIT;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: make_golden KEYSLOT.json OUTDIR\n");
		return 2;
	}
	if (read_all(argv[1], &slot) < 0 ||
	    keyslot_unwrap(&repo.keys, GOLDEN_PASSPHRASE, slot.data, slot.len) < 0) {
		fail(argv[1]);
		return 1;
	}
	repo.store = memstore_open();
	repo.name = "golden";
	repo.compress_level = 3;
	ret = write_backups();
	if (ret == 0 && mkdir(argv[2], 0755) < 0) {
		fprintf(stderr, "make_golden: mkdir %s: %s\n", argv[2], strerror(errno));
		ret = -1;
	}
	if (ret == 0 && store_list(repo.store, "", dump_one, argv[2]))
		ret = fail(argv[2]);
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	buf_free(&slot);
	return ret ? 1 : 0;
}

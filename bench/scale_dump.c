/*
 * A dump backup with a very long chunk list, cheaply: its one stream is n
 * repetitions of a single 256-byte chunk, stored once, with the stream's
 * true checksum, written through the real list and manifest code as a backup
 * would write it (the checksum a backup would record too).  For bench/run.sh's scale phase, which measures the peak
 * memory of the commands that read such a backup.
 *   scale_dump CONFIG REPO N   (prints the backup id)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/context.h"
#include "common/error.h"
#include "common/mem.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/streamsum.h"

#define SCALE_CHUNK 256
#define SCALE_SYSID UINT64_C(7300000000000000001)

/* The one chunk, stored unless the repository has it; its entry in *c. */
static int put_chunk(struct repo *r, const uint8_t *data, struct manifest_chunk *c)
{
	struct pgk_buf sealed = PGK_BUF_INIT;
	char key[CHUNK_KEY_MAX];
	int ret;

	memset(c, 0, sizeof(*c));
	keys_chunk_id(&r->keys, data, SCALE_CHUNK, c->id);
	c->size = SCALE_CHUNK;
	chunk_key(c->id, key, sizeof(key));
	ret = obj_seal(&r->keys, OBJ_CHUNK, key, r->compress_level, data, SCALE_CHUNK, &sealed);
	if (ret == 0)
		ret = store_put(r->store, key, sealed.data, sealed.len, PGKEEP_PUT_IF_ABSENT);
	if (ret == 0)
		c->stored = (uint32_t)sealed.len;
	if (ret == PGKEEP_EEXISTS)
		ret = 0;
	buf_free(&sealed);
	return ret;
}

static int make_dump(struct repo *r, uint64_t n)
{
	uint8_t data[SCALE_CHUNK];
	struct manifest m = { 0 };
	struct manifest_stream *s;
	struct manifest_chunk c;
	struct list_out lo;
	struct stream_sum sum;
	struct tm tm;
	time_t now = time(NULL);
	char stamp[32];
	uint64_t i;
	int ret;

	for (i = 0; i < SCALE_CHUNK; i++)
		data[i] = (uint8_t)("scale chunk, the same every time\n"[i % 33]);
	ret = repo_check_sysid(r, SCALE_SYSID);
	if (ret == 0)
		ret = put_chunk(r, data, &c);
	if (ret)
		return ret;

	/* An id of its own per size: one second apart per million. */
	m.start_time = (int64_t)now - (int64_t)(n / 1000000) - 1;
	m.stop_time = (int64_t)now;
	gmtime_r(&(time_t){ (time_t)m.start_time }, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(m.id, sizeof(m.id), "%s-dump", stamp);
	m.type = BACKUP_DUMP;
	m.sysid = SCALE_SYSID;
	m.pg_version = 150000;
	m.timeline = 1;
	m.dbname = xstrdup("scale");
	m.format = xstrdup("custom");
	s = manifest_add_stream(&m, "scale.dump");
	ret = stream_sum_init(&sum, STREAM_SUM_DEFAULT);
	if (ret) {
		manifest_free(&m);
		return ret;
	}
	list_out_init(&lo, r, s);
	for (i = 0; ret == 0 && i < n; i++) {
		ret = stream_sum_update(&sum, data, sizeof(data));
		if (ret)
			break;
		ret = list_out_append(&lo, &c);
		/* Stored once: later entries are dedup hits. */
		s->stored += c.stored;
		c.stored = 0;
	}
	if (ret == 0)
		ret = list_out_flush(&lo);
	list_out_free(&lo);
	s->size = n * SCALE_CHUNK;
	s->sum_alg = sum.alg;
	if (ret == 0)
		ret = stream_sum_final_hex(&sum, s->sum);
	stream_sum_free(&sum);
	if (ret == 0)
		ret = manifest_save(r, &m);
	if (ret == 0)
		printf("%s\n", m.id);
	manifest_free(&m);
	return ret;
}

int main(int argc, char **argv)
{
	struct pgk_globals g = { 0 };
	struct pgk_config cfg;
	struct repo *r = NULL;
	char *end;
	uint64_t n;
	int ret;

	if (argc != 4 || (n = strtoull(argv[3], &end, 10)) == 0 || *end) {
		fprintf(stderr, "usage: scale_dump CONFIG REPO N\n");
		return 3;
	}
	g.config_path = argv[1];
	g.repo_name = argv[2];
	memset(&cfg, 0, sizeof(cfg));
	ret = ctx_load_config(&g, &cfg);
	if (ret == 0)
		ret = ctx_open_repo(&g, &cfg, &r);
	if (ret == 0)
		ret = make_dump(r, n);
	if (ret)
		fprintf(stderr, "scale_dump: %s\n", pgk_errmsg());
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret ? 1 : 0;
}

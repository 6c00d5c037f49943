/*
 * Writes the decrypted manifest JSON of every backup in a repository into a
 * directory, one file per backup, and the plaintext of each of its list
 * objects, one file per list: seeds for fuzz_manifest that look like what
 * pgkeep really writes.  Usage: manifest_seed CONFIG OUTDIR
 */
#include <stdio.h>
#include <string.h>

#include "cmd/context.h"
#include "common/error.h"
#include "repo/lists.h"
#include "repo/manifest.h"

static int write_file(const char *path, const struct pgk_buf *b)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
		fprintf(stderr, "manifest_seed: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

/* The first few list objects of each stream: the format, not the volume. */
#define SEED_LISTS_PER_STREAM 2

static int write_one(struct repo *r, const char *id, const char *dir)
{
	struct manifest m;
	struct pgk_buf json = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	char path[4096];
	size_t i, k;
	uint32_t n;
	int ret;

	memset(&m, 0, sizeof(m));
	ret = manifest_load(r, id, &m);
	if (ret == 0)
		ret = manifest_to_json(&m, &json);
	if (ret == 0) {
		snprintf(path, sizeof(path), "%s/%s.json", dir, id);
		ret = write_file(path, &json);
	}
	for (i = 0; ret == 0 && i < m.nstreams; i++) {
		for (k = 0; ret == 0 && k < m.streams[i].nlists && k < SEED_LISTS_PER_STREAM; k++) {
			ret = list_fetch(r, &m.streams[i], k, &plain, &n);
			snprintf(path, sizeof(path), "%s/%s-%zu-%zu.list", dir, id, i, k);
			if (ret == 0)
				ret = write_file(path, &plain);
		}
	}
	manifest_free(&m);
	buf_free(&json);
	buf_free(&plain);
	return ret;
}

int main(int argc, char **argv)
{
	struct pgk_globals g = { 0 };
	struct pgk_config cfg;
	struct manifest *list = NULL;
	struct repo *r = NULL;
	size_t n = 0, i;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: manifest_seed CONFIG OUTDIR\n");
		return 3;
	}
	g.config_path = argv[1];
	memset(&cfg, 0, sizeof(cfg));
	ret = ctx_load_config(&g, &cfg);
	if (ret == 0)
		ret = ctx_open_repo(&g, &cfg, &r);
	if (ret == 0)
		ret = manifest_list_summary(r, &list, &n);
	for (i = 0; ret == 0 && i < n; i++)
		ret = write_one(r, list[i].id, argv[2]);
	if (ret != 0)
		fprintf(stderr, "manifest_seed: %s\n", pgk_errmsg());
	else
		printf("%zu manifests written to %s\n", n, argv[2]);
	manifest_list_free(list, n);
	repo_close(r);
	config_free(&cfg);
	return ret == 0 ? 0 : 1;
}

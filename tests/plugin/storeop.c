/*
 * One storage call through the agent's loader and wrappers (retries
 * included), for test scripts that need a store call per process.
 *
 * Usage:  storeop PLUGIN [key=value ...] -- put KEY FILE [ifabsent]
 *                                        | get KEY FILE | stat KEY
 *                                        | rm KEY | list PREFIX
 *
 * Exit status tells the error apart: 0 ok, 2 not found, 3 exists, 4 no
 * space, 5 auth, 6 retry, 1 anything else (the message goes to stderr).
 * stat prints the size, list prints one key per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/store.h"

static int exit_code(int ret)
{
	switch (ret) {
	case 0: return 0;
	case PGKEEP_ENOTFOUND: return 2;
	case PGKEEP_EEXISTS: return 3;
	case PGKEEP_ENOSPC: return 4;
	case PGKEEP_EAUTH: return 5;
	case PGKEEP_ERETRY: return 6;
	}
	return 1;
}

static int print_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	printf("%s\n", key);
	return 0;
}

static int read_file(const char *path, struct pgk_buf *b)
{
	char chunk[65536];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return pgk_error(PGKEEP_EIO, "cannot open %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(b, chunk, n);
	fclose(f);
	return 0;
}

static int write_file(const char *path, const struct pgk_buf *b)
{
	FILE *f = fopen(path, "wb");

	if (!f || (b->len && fwrite(b->data, 1, b->len, f) != b->len)) {
		if (f)
			fclose(f);
		return pgk_error(PGKEEP_EIO, "cannot write %s", path);
	}
	return fclose(f) == 0 ? 0 : pgk_error(PGKEEP_EIO, "cannot write %s", path);
}

static int run(struct pgk_store *st, int argc, char **argv)
{
	struct pgk_buf b = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	const char *op = argv[0];
	int ret;

	if (strcmp(op, "put") == 0 && (argc == 3 || argc == 4)) {
		ret = read_file(argv[2], &b);
		if (ret == 0)
			ret = store_put(st, argv[1], b.data, b.len,
					argc == 4 && strcmp(argv[3], "ifabsent") == 0 ?
						PGKEEP_PUT_IF_ABSENT : 0);
	} else if (strcmp(op, "get") == 0 && argc == 3) {
		ret = store_get(st, argv[1], &b);
		if (ret == 0)
			ret = write_file(argv[2], &b);
	} else if (strcmp(op, "stat") == 0 && argc == 2) {
		ret = store_stat(st, argv[1], &sb);
		if (ret == 0)
			printf("%llu\n", (unsigned long long)sb.size);
	} else if (strcmp(op, "rm") == 0 && argc == 2) {
		ret = store_remove(st, argv[1]);
	} else if (strcmp(op, "list") == 0 && argc == 2) {
		ret = store_list(st, argv[1], print_key, NULL);
	} else {
		ret = pgk_error(PGKEEP_EINVAL, "bad operation or arguments");
	}
	buf_free(&b);
	return ret;
}

int main(int argc, char **argv)
{
	struct pgkeep_option *opts;
	struct pgk_store *st;
	size_t nopts = 0;
	int a, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: storeop PLUGIN [key=value ...] -- OP ARGS\n");
		return 1;
	}
	opts = xzalloc((size_t)argc * sizeof(*opts));
	for (a = 2; a < argc && strcmp(argv[a], "--") != 0; a++) {
		char *eq = strchr(argv[a], '=');

		if (!eq) {
			fprintf(stderr, "storeop: option '%s' is not key=value\n", argv[a]);
			free(opts);
			return 1;
		}
		*eq = '\0';
		opts[nopts].key = argv[a];
		opts[nopts++].value = eq + 1;
	}
	if (a + 1 >= argc) {
		fprintf(stderr, "storeop: no operation after --\n");
		free(opts);
		return 1;
	}
	ret = store_open(&st, "test", argv[1], getenv("PGKEEP_TEST_PLUGIN_DIR"), opts, nopts);
	if (ret == 0) {
		ret = run(st, argc - a - 1, argv + a + 1);
		store_close(st);
	}
	if (ret)
		fprintf(stderr, "storeop: %s\n", pgk_errmsg());
	free(opts);
	return exit_code(ret);
}

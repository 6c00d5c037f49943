/*
 * plugin-io: drive one storage plugin from the shell, for fault tests and
 * benchmarks that need a single operation on a real store.
 *
 *   plugin-io [-o KEY=VALUE]... [-x] [-s SIZE_HINT] [-b BUFSIZE] PLUGIN.so OP ARG...
 *
 *   put KEY          store stdin under KEY (-x: only if absent)
 *   get KEY [OFF LEN] write the object (or a range) to stdout
 *   stat KEY         print "SIZE MTIME"
 *   list PREFIX      print one key per line
 *   rm KEY           remove KEY
 *
 * Exit status: 0 done, 1 not found, 2 exists, 3 any other failure (the
 * plugin's message goes to stderr).
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pgkeep/storage.h>

static const struct pgkeep_storage_ops *ops;
static void *handle;

static void host_log(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void host_log(int level, const char *fmt, va_list ap)
{
	if (level > PGKEEP_LOG_INFO && !getenv("PLUGIN_IO_DEBUG"))
		return;
	fputs("plugin-io: log: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct pgkeep_host host = {
	.abi_version = PGKEEP_STORAGE_ABI_VERSION,
	.struct_size = sizeof(struct pgkeep_host),
	.log = host_log,
};

static int status(int rc, const char *err)
{
	if (rc == PGKEEP_OK)
		return 0;
	fprintf(stderr, "plugin-io: %s (code %d)\n", err, rc);
	return rc == PGKEEP_ENOTFOUND ? 1 : rc == PGKEEP_EEXISTS ? 2 : 3;
}

static int do_put(const char *key, unsigned flags, uint64_t hint, size_t bufsize)
{
	char err[PGKEEP_ERRLEN] = "";
	char *buf = malloc(bufsize);
	void *put;
	size_t n;
	int rc;

	if (!buf)
		return 3;
	rc = ops->put_begin(handle, key, hint, flags, &put, err);
	if (rc)
		goto out;
	while ((n = fread(buf, 1, bufsize, stdin)) > 0) {
		rc = ops->put_write(put, buf, n, err);
		if (rc) {
			ops->put_abort(put);
			goto out;
		}
	}
	if (ferror(stdin)) {
		ops->put_abort(put);
		snprintf(err, sizeof(err), "reading stdin: %s", strerror(errno));
		rc = PGKEEP_EIO;
		goto out;
	}
	rc = ops->put_commit(put, err);
out:
	free(buf);
	return status(rc, err);
}

static int sink(void *payload, const void *buf, size_t len)
{
	(void)payload;
	return fwrite(buf, 1, len, stdout) == len ? 0 : PGKEEP_EIO;
}

static int list_cb(void *payload, const char *key, const struct pgkeep_stat *st)
{
	(void)payload;
	printf("%s %" PRIu64 "\n", key, st->size);
	return 0;
}

static int run(const char *op, int argc, char **argv, unsigned flags, uint64_t hint,
	       size_t bufsize)
{
	char err[PGKEEP_ERRLEN] = "";
	struct pgkeep_stat st;
	int rc;

	if (!strcmp(op, "put") && argc == 1)
		return do_put(argv[0], flags, hint, bufsize);
	if (!strcmp(op, "get") && (argc == 1 || argc == 3)) {
		uint64_t off = argc == 3 ? strtoull(argv[1], NULL, 10) : 0;
		uint64_t len = argc == 3 ? strtoull(argv[2], NULL, 10) : UINT64_MAX;

		rc = ops->get(handle, argv[0], off, len, sink, NULL, err);
		if (fflush(stdout))
			rc = rc ? rc : PGKEEP_EIO;
		return status(rc, err);
	}
	if (!strcmp(op, "stat") && argc == 1) {
		rc = ops->stat(handle, argv[0], &st, err);
		if (!rc)
			printf("%" PRIu64 " %" PRId64 "\n", st.size, st.mtime);
		return status(rc, err);
	}
	if (!strcmp(op, "list") && argc <= 1)
		return status(ops->list(handle, argc ? argv[0] : "", list_cb, NULL, err), err);
	if (!strcmp(op, "rm") && argc == 1)
		return status(ops->remove(handle, argv[0], err), err);
	fprintf(stderr, "plugin-io: bad operation or arguments: %s\n", op);
	return 3;
}

int main(int argc, char **argv)
{
	struct pgkeep_option opts[64];
	char err[PGKEEP_ERRLEN] = "";
	pgkeep_storage_init_fn init;
	size_t nopts = 0, bufsize = 1 << 20;
	uint64_t hint = UINT64_MAX;
	unsigned flags = 0;
	void *dl;
	int c, rc;

	while ((c = getopt(argc, argv, "o:xs:b:")) != -1) {
		char *eq;

		switch (c) {
		case 'o':
			eq = strchr(optarg, '=');
			if (!eq || nopts == 64) {
				fprintf(stderr, "plugin-io: -o wants KEY=VALUE\n");
				return 3;
			}
			*eq = '\0';
			opts[nopts].key = optarg;
			opts[nopts++].value = eq + 1;
			break;
		case 'x': flags |= PGKEEP_PUT_IF_ABSENT; break;
		case 's': hint = strtoull(optarg, NULL, 10); break;
		case 'b': bufsize = strtoul(optarg, NULL, 10); break;
		default: return 3;
		}
	}
	if (argc - optind < 2 || !bufsize) {
		fprintf(stderr, "usage: plugin-io [-o K=V]... [-x] [-s HINT] [-b BUF] PLUGIN.so OP ARG...\n");
		return 3;
	}
	dl = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "plugin-io: %s\n", dlerror());
		return 3;
	}
	init = (pgkeep_storage_init_fn)dlsym(dl, PGKEEP_STORAGE_INIT_SYMBOL);
	if (!init || !(ops = init(&host))) {
		fprintf(stderr, "plugin-io: %s is not a pgkeep plugin\n", argv[optind]);
		return 3;
	}
	rc = ops->open(&handle, opts, nopts, err);
	if (rc)
		return status(rc, err);
	rc = run(argv[optind + 1], argc - optind - 2, argv + optind + 2, flags, hint, bufsize);
	ops->close(handle);
	return rc;
}

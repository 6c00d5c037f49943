/*
 * s3drive: drive one storage plugin call from the command line, for the S3
 * fault tests (a kill mid-upload, a wrong secret, a stalled server), which
 * need a separate process to time, kill and check the exit status of.
 *
 * usage: s3drive PLUGIN.so CMD [ARGS] [key=value ...]
 *   put KEY FILE          stream FILE ('-' = stdin) into KEY
 *   putgen KEY SIZE       write SIZE bytes of seeded pseudo-random data
 *   get KEY [OFF LEN]     write the object (or a range) to stdout
 *   stat KEY | rm KEY | list PREFIX
 * Exit status: 0 done, 2 not found, 3 exists, 4 authentication refused,
 * 1 any other error (message on stderr).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pgkeep/storage.h>

static const struct pgkeep_storage_ops *ops;
static char err[PGKEEP_ERRLEN];

static void host_log(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void host_log(int level, const char *fmt, va_list ap)
{
	fprintf(stderr, "s3drive: log[%d]: ", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct pgkeep_host host = { PGKEEP_STORAGE_ABI_VERSION,
					 sizeof(struct pgkeep_host), host_log };

static int to_stdout(void *payload, const void *buf, size_t len)
{
	return fwrite(buf, 1, len, stdout) == len ? 0 : -100;
}

static int print_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	printf("%s %llu\n", key, (unsigned long long)st->size);
	return 0;
}

static int put_stream(void *h, const char *key, FILE *in, uint64_t gen, unsigned flags)
{
	static char buf[1 << 16];
	uint64_t x = 88172645463325252ull;
	void *put;
	int rc;

	rc = ops->put_begin(h, key, in ? UINT64_MAX : gen, flags, &put, err);
	if (rc)
		return rc;
	for (;;) {
		size_t n, i;

		if (in) {
			n = fread(buf, 1, sizeof(buf), in);
		} else {
			n = gen < sizeof(buf) ? (size_t)gen : sizeof(buf);
			for (i = 0; i < n; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				buf[i] = (char)x;
			}
			gen -= n;
		}
		if (!n)
			break;
		rc = ops->put_write(put, buf, n, err);
		if (rc) {
			ops->put_abort(put);
			return rc;
		}
	}
	return ops->put_commit(put, err);
}

/* pos: the command and its positional arguments (those without '='). */
static int run(void *h, char **pos, int npos)
{
	const char *cmd = pos[0], *key = npos > 1 ? pos[1] : "";
	struct pgkeep_stat st;

	if ((!strcmp(cmd, "put") || !strcmp(cmd, "putnew")) && npos > 2) {
		FILE *in = strcmp(pos[2], "-") ? fopen(pos[2], "rb") : stdin;
		int rc;

		if (!in) {
			snprintf(err, sizeof(err), "cannot open %s", pos[2]);
			return PGKEEP_EIO;
		}
		rc = put_stream(h, key, in, 0, !strcmp(cmd, "putnew") ? PGKEEP_PUT_IF_ABSENT : 0);
		if (in != stdin)
			fclose(in);
		return rc;
	}
	if (!strcmp(cmd, "putgen") && npos > 2)
		return put_stream(h, key, NULL, strtoull(pos[2], NULL, 10), 0);
	if (!strcmp(cmd, "get")) {
		uint64_t off = 0, len = UINT64_MAX;

		if (npos > 3) {
			off = strtoull(pos[2], NULL, 10);
			len = strtoull(pos[3], NULL, 10);
		}
		return ops->get(h, key, off, len, to_stdout, NULL, err);
	}
	if (!strcmp(cmd, "stat")) {
		int rc = ops->stat(h, key, &st, err);

		if (!rc)
			printf("%llu %lld\n", (unsigned long long)st.size, (long long)st.mtime);
		return rc;
	}
	if (!strcmp(cmd, "rm"))
		return ops->remove(h, key, err);
	if (!strcmp(cmd, "list"))
		return ops->list(h, key, print_key, NULL, err);
	snprintf(err, sizeof(err), "bad command or arguments: %s", cmd);
	return PGKEEP_EINVAL;
}

int main(int argc, char **argv)
{
	struct pgkeep_option opts[64];
	pgkeep_storage_init_fn init;
	char *pos[8];
	size_t nopts = 0;
	int npos = 0;
	void *dl, *h;
	int rc, i;

	if (argc < 3 || argc > 70) {
		fprintf(stderr, "usage: s3drive PLUGIN.so CMD ARGS [key=value ...]\n");
		return 1;
	}
	dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	init = dl ? (pgkeep_storage_init_fn)dlsym(dl, PGKEEP_STORAGE_INIT_SYMBOL) : NULL;
	if (!init) {
		fprintf(stderr, "s3drive: cannot load %s: %s\n", argv[1], dlerror());
		return 1;
	}
	ops = init(&host);
	for (i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			if (npos < 8)
				pos[npos++] = argv[i];
			continue;
		}
		if (nopts == 64)
			break;
		*eq = '\0';
		opts[nopts].key = argv[i];
		opts[nopts++].value = eq + 1;
	}
	rc = ops->open(&h, opts, nopts, err);
	if (!rc) {
		rc = run(h, pos, npos);
		fflush(stdout);
		ops->close(h);
	}
	if (rc) {
		fprintf(stderr, "s3drive: %d: %s\n", rc, err);
		return rc == PGKEEP_ENOTFOUND ? 2 : rc == PGKEEP_EEXISTS ? 3 :
		       rc == PGKEEP_EAUTH ? 4 : 1;
	}
	return 0;
}

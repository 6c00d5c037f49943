/*
 * A small driver for storage plugins, used by tests/plugin/b2.sh to make
 * traffic while the fake B2 injects faults.  Options come from a file (one
 * key=value a line) so that secrets stay out of the argument list.
 *
 *   b2_drive PLUGIN.so OPTFILE put KEY FILE [ifabsent]
 *   b2_drive PLUGIN.so OPTFILE get KEY FILE
 *   b2_drive PLUGIN.so OPTFILE stat KEY | rm KEY | list PREFIX
 *   b2_drive PLUGIN.so OPTFILE par THREADS SIZE PREFIX
 *       THREADS threads each put SIZE bytes under PREFIX<n> on one handle,
 *       then each reads its object back and compares
 *   b2_drive PLUGIN.so OPTFILE race THREADS KEY
 *       THREADS threads put different bytes to KEY with PGKEEP_PUT_IF_ABSENT;
 *       prints how many won and whether the stored bytes are the winner's
 *
 * Exit status: 0 on success, 2 for "not found", 3 for "exists", 1 otherwise;
 * the plugin's message goes to stderr.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pgkeep/storage.h>

static const struct pgkeep_storage_ops *ops;
static void *handle;

static void drive_log(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void drive_log(int level, const char *fmt, va_list ap)
{
	if (level > PGKEEP_LOG_WARNING && !getenv("B2_DRIVE_DEBUG"))
		return;
	fputs("plugin: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct pgkeep_host host = {
	PGKEEP_STORAGE_ABI_VERSION, sizeof(struct pgkeep_host), drive_log
};

static int status_exit(int ret, const char *err)
{
	if (ret)
		fprintf(stderr, "b2_drive: %s\n", err);
	return ret == 0 ? 0 : ret == PGKEEP_ENOTFOUND ? 2 :
	       ret == PGKEEP_EEXISTS ? 3 : 1;
}

struct mem {
	unsigned char *p;
	size_t n;
};

static int mem_sink(void *payload, const void *buf, size_t len)
{
	struct mem *m = payload;
	unsigned char *np = realloc(m->p, m->n + len + 1);

	if (!np)
		return PGKEEP_ENOMEM;
	memcpy(np + m->n, buf, len);
	m->p = np;
	m->n += len;
	return 0;
}

static int put_buf(const char *key, const unsigned char *buf, size_t len,
		   unsigned flags, char *err)
{
	size_t off = 0, n;
	void *put;
	int ret;

	ret = ops->put_begin(handle, key, len, flags, &put, err);
	if (ret)
		return ret;
	/* odd-sized writes, so part boundaries fall inside writes */
	while (off < len) {
		n = len - off < 7777 ? len - off : 7777;
		ret = ops->put_write(put, buf + off, n, err);
		if (ret) {
			ops->put_abort(put);
			return ret;
		}
		off += n;
	}
	return ops->put_commit(put, err);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	size_t cap = 0, n;
	FILE *f = fopen(path, "rb");

	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
		}
		n = fread(buf + *len, 1, cap - *len, f);
		if (!n)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

struct job {
	pthread_t tid;
	unsigned id;
	size_t size;
	const char *prefix;
	unsigned flags;
	int ret;
	char err[PGKEEP_ERRLEN];
};

static void *par_job(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = malloc(j->size + 1);
	struct mem m = { 0 };
	char key[256];

	snprintf(key, sizeof(key), "%s%u", j->prefix, j->id);
	fill(buf, j->size, j->id + 1);
	j->ret = put_buf(key, buf, j->size, 0, j->err);
	if (!j->ret)
		j->ret = ops->get(handle, key, 0, UINT64_MAX, mem_sink, &m, j->err);
	if (!j->ret && (m.n != j->size || memcmp(m.p, buf, j->size))) {
		snprintf(j->err, sizeof(j->err), "%s: read back %zu bytes that differ",
			 key, m.n);
		j->ret = PGKEEP_ECORRUPT;
	}
	free(m.p);
	free(buf);
	return NULL;
}

static void *race_job(void *arg)
{
	struct job *j = arg;
	unsigned char buf[4096];

	fill(buf, sizeof(buf), j->id + 100);
	j->ret = put_buf(j->prefix, buf, sizeof(buf), PGKEEP_PUT_IF_ABSENT, j->err);
	return NULL;
}

static int run_threads(int n, void *(*fn)(void *), size_t size,
		       const char *prefix, struct job **out)
{
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	int i;

	for (i = 0; i < n; i++) {
		jobs[i].id = (unsigned)i;
		jobs[i].size = size;
		jobs[i].prefix = prefix;
		pthread_create(&jobs[i].tid, NULL, fn, &jobs[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(jobs[i].tid, NULL);
	*out = jobs;
	return 0;
}

static int cmd_race(int n, const char *key)
{
	struct job *jobs;
	struct mem m = { 0 };
	unsigned char buf[4096];
	char err[PGKEEP_ERRLEN];
	int i, won = 0, winner = -1, bad = 0, ret;

	run_threads(n, race_job, 0, key, &jobs);
	for (i = 0; i < n; i++) {
		if (jobs[i].ret == 0) {
			won++;
			winner = i;
		} else if (jobs[i].ret != PGKEEP_EEXISTS) {
			fprintf(stderr, "b2_drive: race %d: %s\n", i, jobs[i].err);
			bad++;
		}
	}
	ret = ops->get(handle, key, 0, UINT64_MAX, mem_sink, &m, err);
	if (ret)
		return status_exit(ret, err);
	if (winner >= 0)
		fill(buf, sizeof(buf), (unsigned)winner + 100);
	printf("winners %d errors %d stored-is-winner %s\n", won, bad,
	       winner >= 0 && m.n == sizeof(buf) && !memcmp(m.p, buf, sizeof(buf)) ?
	       "yes" : "no");
	free(m.p);
	free(jobs);
	return 0;
}

static int cmd_par(int n, size_t size, const char *prefix)
{
	struct job *jobs;
	int i, bad = 0;

	run_threads(n, par_job, size, prefix, &jobs);
	for (i = 0; i < n; i++) {
		if (jobs[i].ret) {
			fprintf(stderr, "b2_drive: job %d: %s\n", i, jobs[i].err);
			bad++;
		}
	}
	free(jobs);
	printf("%d of %d ok\n", n - bad, n);
	return bad ? 1 : 0;
}

static int list_cb(void *payload, const char *key, const struct pgkeep_stat *st)
{
	(void)payload;
	printf("%s %llu\n", key, (unsigned long long)st->size);
	return 0;
}

static int load_opts(const char *path, struct pgkeep_option **opts, size_t *n)
{
	static char line[4096];
	FILE *f = fopen(path, "r");
	char *eq;

	*n = 0;
	*opts = calloc(64, sizeof(**opts));
	if (!f)
		return -1;
	while (*n < 64 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		eq = strchr(line, '=');
		if (!eq || line[0] == '#')
			continue;
		*eq = '\0';
		(*opts)[*n].key = strdup(line);
		(*opts)[*n].value = strdup(eq + 1);
		(*n)++;
	}
	fclose(f);
	return 0;
}

static int run(int argc, char **argv)
{
	const char *cmd = argv[3];
	char err[PGKEEP_ERRLEN] = "";
	struct pgkeep_stat st;
	struct mem m = { 0 };
	unsigned char *buf;
	size_t len;
	FILE *f;
	int ret;

	if (!strcmp(cmd, "put") && argc >= 6) {
		buf = slurp(argv[5], &len);
		if (!buf && len)
			return 1;
		ret = put_buf(argv[4], buf ? buf : (unsigned char *)"", len,
			      argc > 6 ? PGKEEP_PUT_IF_ABSENT : 0, err);
		free(buf);
		return status_exit(ret, err);
	}
	if (!strcmp(cmd, "get") && argc >= 6) {
		ret = ops->get(handle, argv[4], 0, UINT64_MAX, mem_sink, &m, err);
		if (!ret) {
			f = fopen(argv[5], "wb");
			if (!f || fwrite(m.p ? (void *)m.p : "", 1, m.n, f) != m.n)
				ret = PGKEEP_EIO;
			if (f)
				fclose(f);
		}
		free(m.p);
		return status_exit(ret, err);
	}
	if (!strcmp(cmd, "stat") && argc >= 5) {
		ret = ops->stat(handle, argv[4], &st, err);
		if (!ret)
			printf("%llu\n", (unsigned long long)st.size);
		return status_exit(ret, err);
	}
	if (!strcmp(cmd, "rm") && argc >= 5)
		return status_exit(ops->remove(handle, argv[4], err), err);
	if (!strcmp(cmd, "list") && argc >= 5)
		return status_exit(ops->list(handle, argv[4], list_cb, NULL, err), err);
	if (!strcmp(cmd, "par") && argc >= 7)
		return cmd_par(atoi(argv[4]), strtoul(argv[5], NULL, 10), argv[6]);
	if (!strcmp(cmd, "race") && argc >= 6)
		return cmd_race(atoi(argv[4]), argv[5]);
	fprintf(stderr, "b2_drive: bad command\n");
	return 1;
}

int main(int argc, char **argv)
{
	struct pgkeep_option *opts;
	pgkeep_storage_init_fn init;
	char err[PGKEEP_ERRLEN] = "";
	size_t nopts;
	void *so;
	int ret;

	if (argc < 4) {
		fprintf(stderr, "usage: b2_drive PLUGIN.so OPTFILE CMD ARGS...\n");
		return 1;
	}
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "b2_drive: %s\n", dlerror());
		return 1;
	}
	init = (pgkeep_storage_init_fn)dlsym(so, PGKEEP_STORAGE_INIT_SYMBOL);
	if (!init || !(ops = init(&host)) || load_opts(argv[2], &opts, &nopts)) {
		fprintf(stderr, "b2_drive: cannot load %s or read %s\n", argv[1], argv[2]);
		return 1;
	}
	ret = ops->open(&handle, opts, nopts, err);
	if (!ret) {
		ret = run(argc, argv);
		ops->close(handle);
	} else {
		ret = status_exit(ret, err);
	}
	while (nopts--) {
		free((char *)opts[nopts].key);
		free((char *)opts[nopts].value);
	}
	free(opts);
	return ret;
}

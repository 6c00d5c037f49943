/*
 * A fault-injecting storage plugin for tests, after SQLite's test_vfs: it
 * wraps the local plugin (compiled in) and fails the Nth counted call.  The
 * count can live in a file, so that it runs on across the many short
 * processes a test drives (each pgkeep command is one).
 *
 * Options: path (for local), fail_at=N (1-based), fail_every=M (then every
 * Mth call after the first failure), fail_ops=put,get,stat,list,remove or
 * put_begin,put_write,put_commit (which calls count; default all),
 * fail_code=io|retry|nospc|auth|corrupt, fail_state=FILE, delay_ms=N (sleep
 * N milliseconds at the start of every call, so that a test can land a kill
 * or a signal inside an operation rather than between two).
 *
 * Like every plugin (include/pgkeep/storage.h), it owns retrying: an
 * injected retry failure stands for a transient failure of the request on
 * the wire, which the call tries again, counted, after a backoff, up to
 * retries=N more times (default PGKEEP_RETRY_ATTEMPTS - 1; retry_wait_ms=N,
 * default 100, is the first wait, doubled each time), before it gives up
 * with PGKEEP_ERETRY.  retries=0 makes it a plugin that has given up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <pgkeep/storage.h>

#include "local/local.h"

enum {
	OP_PUT_BEGIN = 1 << 0,
	OP_PUT_WRITE = 1 << 1,
	OP_PUT_COMMIT = 1 << 2,
	OP_GET = 1 << 3,
	OP_STAT = 1 << 4,
	OP_LIST = 1 << 5,
	OP_REMOVE = 1 << 6,
	OP_PUT = OP_PUT_BEGIN | OP_PUT_WRITE | OP_PUT_COMMIT,
	OP_ALL = (1 << 7) - 1,
};

static const struct {
	const char *name;
	unsigned mask;
} op_names[] = {
	{ "put", OP_PUT },	     { "put_begin", OP_PUT_BEGIN }, { "put_write", OP_PUT_WRITE },
	{ "put_commit", OP_PUT_COMMIT }, { "get", OP_GET },	    { "stat", OP_STAT },
	{ "list", OP_LIST },	     { "remove", OP_REMOVE },	    { "delete", OP_REMOVE },
};

static const struct {
	const char *name;
	int code;
} code_names[] = {
	{ "io", PGKEEP_EIO },	  { "retry", PGKEEP_ERETRY },	   { "nospc", PGKEEP_ENOSPC },
	{ "auth", PGKEEP_EAUTH }, { "corrupt", PGKEEP_ECORRUPT },
};

struct fault {
	const struct pgkeep_storage_ops *inner;
	void *ih;
	uint64_t fail_at, fail_every;
	uint64_t delay_ms;
	uint64_t retries, retry_wait_ms;
	unsigned ops;
	int code;
	char *state;		/* counter file, or NULL for an in-process count */
	pthread_mutex_t mu;
	uint64_t count;
};

static const struct pgkeep_host *fault_host;

struct fault_put {
	struct fault *f;
	void *inner;		/* NULL once a failure aborted it */
};

static const char *op_name(unsigned op)
{
	size_t i;

	for (i = 1; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i].mask == op)
			return op_names[i].name;
	return "?";
}

/* ------------------------------------------------------------- the count */

/* Add one to the counter file under flock, which also orders threads. */
static int state_next(struct fault *f, uint64_t *n, char *err)
{
	char text[32];
	ssize_t len;
	int fd, ret = 0;

	fd = open(f->state, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return pgkeep_fail(err, PGKEEP_EIO, "fault: cannot open %s: %s", f->state,
				   strerror(errno));
	if (flock(fd, LOCK_EX) < 0) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "fault: cannot lock %s: %s", f->state,
				  strerror(errno));
		goto out_close;
	}
	len = pread(fd, text, sizeof(text) - 1, 0);
	if (len < 0) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "fault: cannot read %s: %s", f->state,
				  strerror(errno));
		goto out_close;
	}
	text[len] = '\0';
	*n = strtoull(text, NULL, 10) + 1;
	len = snprintf(text, sizeof(text), "%" PRIu64 "\n", *n);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)len, 0) != len)
		ret = pgkeep_fail(err, PGKEEP_EIO, "fault: cannot write %s: %s", f->state,
				  strerror(errno));
out_close:
	close(fd);	/* drops the lock */
	return ret;
}

static void fault_delay(const struct fault *f)
{
	struct timespec ts;

	if (!f->delay_ms)
		return;
	ts.tv_sec = (time_t)(f->delay_ms / 1000);
	ts.tv_nsec = (long)(f->delay_ms % 1000) * 1000000L;
	/* A signal cuts the sleep short; the call then simply goes ahead. */
	nanosleep(&ts, NULL);
}

static void fault_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!fault_host || !fault_host->log)
		return;
	va_start(ap, fmt);
	fault_host->log(level, fmt, ap);
	va_end(ap);
}

/* The wait before try number attempt+2: retry_wait_ms doubled per attempt, jittered. */
static void fault_backoff(const struct fault *f, unsigned attempt)
{
	static __thread unsigned seed;
	uint64_t ms = f->retry_wait_ms;
	struct timespec ts;

	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	while (attempt-- > 0 && ms < 20000)
		ms *= 2;
	ms = ms / 2 + (uint64_t)rand_r(&seed) % (ms / 2 + 1);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One attempt of a request: 0 to go ahead, or the injected (or counter) failure. */
static int fault_check_once(struct fault *f, unsigned op, char *err)
{
	uint64_t n = 0;
	int ret;

	if (f->state) {
		ret = state_next(f, &n, err);
		if (ret < 0)
			return ret;
	} else {
		pthread_mutex_lock(&f->mu);
		n = ++f->count;
		pthread_mutex_unlock(&f->mu);
	}
	if (n < f->fail_at)
		return 0;
	if (n == f->fail_at || (f->fail_every && (n - f->fail_at) % f->fail_every == 0))
		return pgkeep_fail(err, f->code, "fault: injected failure of %s (call %" PRIu64 ")",
				   op_name(op), n);
	return 0;
}

/* 0 to go ahead with the call; an injected ERETRY is tried again first. */
static int fault_check(struct fault *f, unsigned op, char *err)
{
	unsigned attempt;
	int ret;

	fault_delay(f);
	if (!(f->ops & op) || (!f->fail_at && !f->fail_every))
		return 0;
	for (attempt = 0;; attempt++) {
		ret = fault_check_once(f, op, err);
		if (ret != PGKEEP_ERETRY || attempt >= f->retries)
			return ret;
		fault_log(PGKEEP_LOG_DEBUG, "%s; retry %u of %" PRIu64, err, attempt + 1,
			  f->retries);
		fault_backoff(f, attempt);
	}
}

/* ---------------------------------------------------------------- options */

static int parse_count(const char *key, const char *v, uint64_t *out, char *err)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-')
		return pgkeep_fail(err, PGKEEP_EINVAL, "fault: option %s: '%s' is not a count",
				   key, v);
	return 0;
}

static int parse_ops(const char *v, unsigned *out, char *err)
{
	const char *p = v;

	*out = 0;
	while (*p) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
			if (strlen(op_names[i].name) == n && strncmp(op_names[i].name, p, n) == 0)
				break;
		if (i == sizeof(op_names) / sizeof(op_names[0]))
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "fault: option fail_ops: unknown operation '%.*s'", (int)n,
					   p);
		*out |= op_names[i].mask;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!*out)
		return pgkeep_fail(err, PGKEEP_EINVAL, "fault: option fail_ops is empty");
	return 0;
}

static int parse_code(const char *v, int *out, char *err)
{
	size_t i;

	for (i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++)
		if (strcmp(code_names[i].name, v) == 0) {
			*out = code_names[i].code;
			return 0;
		}
	return pgkeep_fail(err, PGKEEP_EINVAL,
			   "fault: option fail_code: '%s' is not io, retry, nospc, auth or corrupt",
			   v);
}

static int parse_options(struct fault *f, const struct pgkeep_option *opts, size_t nopts,
			 const char **path, const char **create, char *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < nopts && ret == 0; i++) {
		const char *k = opts[i].key, *v = opts[i].value;

		if (strcmp(k, "path") == 0)
			*path = v;
		else if (strcmp(k, "create") == 0)
			*create = v;
		else if (strcmp(k, "fail_at") == 0)
			ret = parse_count(k, v, &f->fail_at, err);
		else if (strcmp(k, "fail_every") == 0)
			ret = parse_count(k, v, &f->fail_every, err);
		else if (strcmp(k, "delay_ms") == 0)
			ret = parse_count(k, v, &f->delay_ms, err);
		else if (strcmp(k, "retries") == 0)
			ret = parse_count(k, v, &f->retries, err);
		else if (strcmp(k, "retry_wait_ms") == 0)
			ret = parse_count(k, v, &f->retry_wait_ms, err);
		else if (strcmp(k, "fail_ops") == 0)
			ret = parse_ops(v, &f->ops, err);
		else if (strcmp(k, "fail_code") == 0)
			ret = parse_code(v, &f->code, err);
		else if (strcmp(k, "fail_state") == 0) {
			free(f->state);
			f->state = strdup(v);
			if (!f->state)
				ret = pgkeep_fail(err, PGKEEP_ENOMEM, "fault: out of memory");
		} else
			ret = pgkeep_fail(err, PGKEEP_EINVAL, "fault: unknown option '%s'", k);
	}
	if (ret == 0 && f->fail_every && !f->fail_at)
		f->fail_at = f->fail_every;
	if (ret == 0 && (f->retries > 100 || f->retry_wait_ms < 1 || f->retry_wait_ms > 60000))
		ret = pgkeep_fail(err, PGKEEP_EINVAL,
				  "fault: retries must be at most 100 and retry_wait_ms from 1 to 60000");
	return ret;
}

/* ------------------------------------------------------------ open, close */

static void fault_free(struct fault *f)
{
	pthread_mutex_destroy(&f->mu);
	free(f->state);
	free(f);
}

static int fault_open(void **handle, const struct pgkeep_option *opts, size_t nopts, char *err)
{
	struct pgkeep_option inner_opt[2];
	const char *path = NULL, *create = NULL;
	struct fault *f;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "fault: out of memory");
	pthread_mutex_init(&f->mu, NULL);
	f->inner = &pgk_local_ops;
	f->ops = OP_ALL;
	f->code = PGKEEP_EIO;
	f->retries = PGKEEP_RETRY_ATTEMPTS - 1;
	f->retry_wait_ms = 100;
	ret = parse_options(f, opts, nopts, &path, &create, err);
	if (ret < 0)
		goto out_free;
	if (!path) {
		ret = pgkeep_fail(err, PGKEEP_EINVAL, "fault: option 'path' is required");
		goto out_free;
	}
	inner_opt[0].key = "path";
	inner_opt[0].value = path;
	inner_opt[1].key = "create";
	inner_opt[1].value = create;
	ret = f->inner->open(&f->ih, inner_opt, create ? 2 : 1, err);
	if (ret < 0)
		goto out_free;
	*handle = f;
	return 0;

out_free:
	fault_free(f);
	return ret;
}

static void fault_close(void *handle)
{
	struct fault *f = handle;

	f->inner->close(f->ih);
	fault_free(f);
}

/* -------------------------------------------------------------------- put */

static int fault_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
			   void **put, char *err)
{
	struct fault *f = handle;
	struct fault_put *p;
	int ret;

	ret = fault_check(f, OP_PUT_BEGIN, err);
	if (ret < 0)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "fault: out of memory");
	p->f = f;
	ret = f->inner->put_begin(f->ih, key, size_hint, flags, &p->inner, err);
	if (ret < 0) {
		free(p);
		return ret;
	}
	*put = p;
	return 0;
}

/* A failed put leaves nothing behind, even if the caller goes on to commit. */
static int fault_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct fault_put *p = put;
	int ret;

	if (!p->inner)
		return pgkeep_fail(err, PGKEEP_EIO, "fault: write after a failed write");
	ret = fault_check(p->f, OP_PUT_WRITE, err);
	if (ret < 0) {
		p->f->inner->put_abort(p->inner);
		p->inner = NULL;
		return ret;
	}
	return p->f->inner->put_write(p->inner, buf, len, err);
}

static int fault_put_commit(void *put, char *err)
{
	struct fault_put *p = put;
	int ret;

	if (!p->inner) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "fault: commit after a failed write");
		goto out_free;
	}
	ret = fault_check(p->f, OP_PUT_COMMIT, err);
	if (ret < 0)
		p->f->inner->put_abort(p->inner);
	else
		ret = p->f->inner->put_commit(p->inner, err);
out_free:
	free(p);
	return ret;
}

static void fault_put_abort(void *put)
{
	struct fault_put *p = put;

	if (p->inner)
		p->f->inner->put_abort(p->inner);
	free(p);
}

/* ------------------------------------------------------------ the others */

static int fault_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		     pgkeep_sink_fn sink, void *payload, char *err)
{
	struct fault *f = handle;
	int ret = fault_check(f, OP_GET, err);

	return ret < 0 ? ret : f->inner->get(f->ih, key, offset, length, sink, payload, err);
}

static int fault_stat(void *handle, const char *key, struct pgkeep_stat *st, char *err)
{
	struct fault *f = handle;
	int ret = fault_check(f, OP_STAT, err);

	return ret < 0 ? ret : f->inner->stat(f->ih, key, st, err);
}

static int fault_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
		      char *err)
{
	struct fault *f = handle;
	int ret = fault_check(f, OP_LIST, err);

	return ret < 0 ? ret : f->inner->list(f->ih, prefix, cb, payload, err);
}

static int fault_remove(void *handle, const char *key, char *err)
{
	struct fault *f = handle;
	int ret = fault_check(f, OP_REMOVE, err);

	return ret < 0 ? ret : f->inner->remove(f->ih, key, err);
}

static const struct pgkeep_storage_ops fault_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "fault",
	.features = PGKEEP_FEAT_RANGE_GET | PGKEEP_FEAT_IF_ABSENT_ATOMIC | PGKEEP_FEAT_CREATE_ROOT,
	.open = fault_open,
	.close = fault_close,
	.put_begin = fault_put_begin,
	.put_write = fault_put_write,
	.put_commit = fault_put_commit,
	.put_abort = fault_put_abort,
	.get = fault_get,
	.stat = fault_stat,
	.list = fault_list,
	.remove = fault_remove,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	fault_host = host;
	return &fault_ops;
}

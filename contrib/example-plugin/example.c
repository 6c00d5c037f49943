/*
 * An example storage plugin: the smallest complete one, to copy from when
 * writing a new plugin (pgkeep-plugin(7)).  It keeps objects in memory, so a
 * repository on it lives as long as the process: useful for learning the
 * ABI and for the contract suite (tests/plugin/example.sh), not for backups.
 *
 * Build it as a libtool module exporting one symbol (contrib/Makefile.inc):
 *   -module -avoid-version -shared -export-symbols-regex '^pgkeep_storage_plugin_init$'
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pgkeep/storage.h>

/* One stored object.  A list is enough for an example; a real store is
 * somewhere else (a directory, a bucket) and indexed by it. */
struct object {
	struct object *next;
	char *key;
	unsigned char *data;
	size_t len;
	int64_t mtime;
};

/* The handle open returns.  Every call but open and close may come from
 * several threads at once, so everything in it is under the mutex. */
struct store {
	pthread_mutex_t mu;
	struct object *objects;
	uint64_t used;		/* bytes held by objects */
	uint64_t max_bytes;	/* option max_bytes; 0 = no limit */
};

/* A put in progress: bytes are gathered here, invisible to readers, and
 * become an object only in put_commit. */
struct put {
	struct store *st;
	char *key;
	unsigned flags;
	unsigned char *data;
	size_t len, cap;
};

/* The host's table, kept for logging (host->log is the only way to speak). */
static const struct pgkeep_host *host;

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
	va_list ap;

	if (!host || !host->log)
		return;
	va_start(ap, fmt);
	host->log(level, fmt, ap);
	va_end(ap);
}

/* Call with st->mu held. */
static struct object *find(struct store *st, const char *key)
{
	struct object *o;

	for (o = st->objects; o; o = o->next)
		if (strcmp(o->key, key) == 0)
			return o;
	return NULL;
}

static void object_free(struct object *o)
{
	free(o->key);
	free(o->data);
	free(o);
}

/* Every call that takes a key checks it by the rule all plugins share. */
static int check_key(const char *key, char *err)
{
	if (!pgkeep_key_valid(key))
		return pgkeep_fail(err, PGKEEP_EINVAL, "example: invalid key '%s'", key);
	return PGKEEP_OK;
}

/* ------------------------------------------------------------ open, close */

static int parse_size(const char *value, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(value, &end, 10);
	if (errno || end == value || *end || *value == '-')
		return -1;
	*out = n;
	return 0;
}

static int example_open(void **handle, const struct pgkeep_option *opts, size_t nopts, char *err)
{
	struct store *st = calloc(1, sizeof(*st));
	size_t i;

	if (!st)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory");
	/* Unknown options are refused by name: a typo must not go unnoticed. */
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "max_bytes") == 0) {
			if (parse_size(opts[i].value, &st->max_bytes) < 0) {
				free(st);
				return pgkeep_fail(err, PGKEEP_EINVAL,
						   "example: option max_bytes: '%s' is not a count of bytes",
						   opts[i].value);
			}
		} else {
			free(st);
			return pgkeep_fail(err, PGKEEP_EINVAL, "example: unknown option '%s'",
					   opts[i].key);
		}
	}
	pthread_mutex_init(&st->mu, NULL);
	say(PGKEEP_LOG_DEBUG, "example: objects are kept in memory until the repository is closed");
	*handle = st;
	return PGKEEP_OK;
}

static void example_close(void *handle)
{
	struct store *st = handle;

	while (st->objects) {
		struct object *o = st->objects;

		st->objects = o->next;
		object_free(o);
	}
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ------------------------------------------------------------ put */

static void put_free(struct put *p)
{
	free(p->key);
	free(p->data);
	free(p);
}

static int example_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
			     void **put, char *err)
{
	struct put *p;
	int ret = check_key(key, err);

	(void)size_hint;	/* a store that preallocates would use it */
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->key = strdup(key))) {
		free(p);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory");
	}
	p->st = handle;
	p->flags = flags;
	*put = p;
	return PGKEEP_OK;
}

static int example_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct put *p = put;

	if (len > p->cap - p->len) {
		size_t cap = p->cap ? p->cap : 4096;
		unsigned char *d;

		while (cap - p->len < len)
			cap *= 2;
		d = realloc(p->data, cap);
		if (!d)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory for %s",
					   p->key);
		p->data = d;
		p->cap = cap;
	}
	memcpy(p->data + p->len, buf, len);
	p->len += len;
	return PGKEEP_OK;
}

/* Call with st->mu held: make p's bytes the object `key`, taking them over. */
static int publish(struct store *st, struct put *p, char *err)
{
	struct object *o = find(st, p->key);
	uint64_t freed = o ? o->len : 0;

	/* Checked under the same lock as the insert, so if-absent is atomic. */
	if (o && (p->flags & PGKEEP_PUT_IF_ABSENT))
		return pgkeep_fail(err, PGKEEP_EEXISTS, "example: %s exists", p->key);
	if (st->max_bytes && st->used - freed + p->len > st->max_bytes)
		return pgkeep_fail(err, PGKEEP_ENOSPC, "example: no space left for %s (%zu bytes)",
				   p->key, p->len);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory");
		o->key = p->key;
		p->key = NULL;
		o->next = st->objects;
		st->objects = o;
	}
	free(o->data);
	o->data = p->data;
	o->len = p->len;
	o->mtime = (int64_t)time(NULL);
	p->data = NULL;
	st->used = st->used - freed + o->len;
	return PGKEEP_OK;
}

static int example_put_commit(void *put, char *err)
{
	struct put *p = put;
	int ret;

	pthread_mutex_lock(&p->st->mu);
	ret = publish(p->st, p, err);
	pthread_mutex_unlock(&p->st->mu);
	put_free(p);		/* whatever the outcome */
	return ret;
}

static void example_put_abort(void *put)
{
	put_free(put);
}

/* ------------------------------------------------------------ read */

static int example_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		       pgkeep_sink_fn sink, void *payload, char *err)
{
	struct store *st = handle;
	struct object *o;
	unsigned char *copy = NULL;
	size_t n = 0;
	int ret = check_key(key, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->mu);
	o = find(st, key);
	if (o && offset < o->len) {
		n = length < o->len - offset ? (size_t)length : o->len - (size_t)offset;
		copy = malloc(n);
		if (copy)
			memcpy(copy, o->data + offset, n);
	}
	pthread_mutex_unlock(&st->mu);
	if (!o)
		return pgkeep_fail(err, PGKEEP_ENOTFOUND, "example: %s not found", key);
	if (n && !copy)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory reading %s", key);
	/* The sink runs outside the lock: it may take its time.  Its non-zero
	 * return goes back to the caller unchanged. */
	ret = n ? sink(payload, copy, n) : 0;
	free(copy);
	return ret;
}

static int example_stat(void *handle, const char *key, struct pgkeep_stat *sb, char *err)
{
	struct store *st = handle;
	struct object *o;
	int ret = check_key(key, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->mu);
	o = find(st, key);
	if (o) {
		sb->size = o->len;
		sb->mtime = o->mtime;
	}
	pthread_mutex_unlock(&st->mu);
	if (!o)
		return pgkeep_fail(err, PGKEEP_ENOTFOUND, "example: %s not found", key);
	return PGKEEP_OK;
}

/* One listed object, copied so the callback runs without the lock. */
struct entry {
	char *key;
	struct pgkeep_stat sb;
};

/* Call with st->mu held. */
static int snapshot(struct store *st, const char *prefix, struct entry **out, size_t *count)
{
	size_t plen = strlen(prefix), n = 0;
	struct entry *e;
	struct object *o;

	for (o = st->objects; o; o = o->next)
		n++;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -1;
	n = 0;
	for (o = st->objects; o; o = o->next) {
		if (strncmp(o->key, prefix, plen) != 0)
			continue;
		e[n].key = strdup(o->key);
		if (!e[n].key)
			break;
		e[n].sb.size = o->len;
		e[n].sb.mtime = o->mtime;
		n++;
	}
	*out = e;
	*count = n;
	return o ? -1 : 0;	/* stopped early: out of memory */
}

static int example_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
			char *err)
{
	struct store *st = handle;
	struct entry *e = NULL;
	size_t n = 0, i;
	int ret;

	if (!pgkeep_prefix_valid(prefix))
		return pgkeep_fail(err, PGKEEP_EINVAL, "example: invalid prefix '%s'", prefix);
	pthread_mutex_lock(&st->mu);
	ret = snapshot(st, prefix, &e, &n);
	pthread_mutex_unlock(&st->mu);
	if (ret < 0)
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "example: out of memory listing %s", prefix);
	for (i = 0; ret == 0 && i < n; i++)
		ret = cb(payload, e[i].key, &e[i].sb);	/* non-zero stops, returned as is */
	for (i = 0; i < n; i++)
		free(e[i].key);
	free(e);
	return ret;
}

static int example_remove(void *handle, const char *key, char *err)
{
	struct store *st = handle;
	struct object **pp, *o = NULL;
	int ret = check_key(key, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->mu);
	for (pp = &st->objects; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, key) == 0) {
			o = *pp;
			*pp = o->next;
			st->used -= o->len;
			break;
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (o)
		object_free(o);
	return PGKEEP_OK;	/* deleting a missing key succeeds */
}

/* ------------------------------------------------------------ the table */

/*
 * No PGKEEP_FEAT_LOCK (memory cannot keep anything from deletion) and no
 * PGKEEP_FEAT_CREATE_ROOT (there is no root to create), so lock_until and
 * locked_until stay NULL and pgkeep never passes lock_days or create.
 */
static const struct pgkeep_storage_ops ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "example",
	.features = PGKEEP_FEAT_IF_ABSENT_ATOMIC | PGKEEP_FEAT_RANGE_GET,
	.open = example_open,
	.close = example_close,
	.put_begin = example_put_begin,
	.put_write = example_put_write,
	.put_commit = example_put_commit,
	.put_abort = example_put_abort,
	.get = example_get,
	.stat = example_stat,
	.list = example_list,
	.remove = example_remove,
};

/* The one exported symbol. */
const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *h)
{
	host = h;
	return &ops;
}

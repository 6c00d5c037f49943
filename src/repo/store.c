/*
 * The storage plugin loader and the agent's wrappers around its calls.
 * Loading follows nbdkit: check the ABI version, copy at most our own table
 * size into a zeroed table, refuse a plugin that lacks a mandatory call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "repo/store.h"

#ifndef PGKEEP_PKGLIBDIR
#define PGKEEP_PKGLIBDIR "/usr/local/lib/pgkeep"
#endif

static const struct pgkeep_host host_table = {
	.abi_version = PGKEEP_STORAGE_ABI_VERSION,
	.struct_size = sizeof(struct pgkeep_host),
	.log = pgk_vlog,
};

/* A plugin's table must at least reach the last mandatory call. */
#define OPS_MIN_SIZE (offsetof(struct pgkeep_storage_ops, remove) + sizeof(void *))

static const struct {
	size_t offset;
	const char *name;
} mandatory[] = {
#define M(f) { offsetof(struct pgkeep_storage_ops, f), #f }
	M(open), M(close), M(put_begin), M(put_write), M(put_commit),
	M(put_abort), M(get), M(stat), M(list), M(remove),
#undef M
};

static void store_free(struct pgk_store *st)
{
	if (st->dl)
		dlclose(st->dl);
	free(st->path);
	free(st->repo_name);
	free(st);
}

static int check_table(struct pgk_store *st, const struct pgkeep_storage_ops *ops)
{
	size_t i, n;

	if (!ops)
		return pgk_error(PGKEEP_EINVAL, "plugin %s returned no operations table", st->path);
	if (ops->abi_version > PGKEEP_STORAGE_ABI_VERSION)
		return pgk_error(PGKEEP_EINVAL,
				 "plugin %s was built for storage ABI %u, this pgkeep serves up to %d",
				 st->path, ops->abi_version, PGKEEP_STORAGE_ABI_VERSION);
	if (ops->abi_version == 0)
		return pgk_error(PGKEEP_EINVAL, "plugin %s reports storage ABI 0", st->path);
	if (ops->struct_size < OPS_MIN_SIZE)
		return pgk_error(PGKEEP_EINVAL,
				 "plugin %s reports an operations table of %u bytes, too small for ABI %u",
				 st->path, ops->struct_size, ops->abi_version);

	/* Slots the plugin was built without stay NULL. */
	n = ops->struct_size < sizeof(st->ops) ? ops->struct_size : sizeof(st->ops);
	memset(&st->ops, 0, sizeof(st->ops));
	memcpy(&st->ops, ops, n);

	for (i = 0; i < sizeof(mandatory) / sizeof(mandatory[0]); i++) {
		void *fn;

		memcpy(&fn, (const char *)&st->ops + mandatory[i].offset, sizeof(fn));
		if (!fn)
			return pgk_error(PGKEEP_EINVAL, "plugin %s lacks the mandatory call '%s'",
					 st->path, mandatory[i].name);
	}
	if (!st->ops.name)
		st->ops.name = "unnamed";
	return 0;
}

/*
 * dlopen runs the plugin's code in this process: the file and the directory
 * it really lives in must be as trusted as the config that named them.
 */
static int check_plugin_file(const char *path)
{
	char real[PATH_MAX], dir[PATH_MAX];
	struct stat sb;
	int ret;

	if (!realpath(path, real))
		return pgk_error(PGKEEP_EINVAL, "cannot load storage plugin %s: %s", path,
				 strerror(errno));
	if (stat(real, &sb) < 0)
		return pgk_error(PGKEEP_EINVAL, "cannot load storage plugin %s: %s", real,
				 strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return pgk_error(PGKEEP_EINVAL, "storage plugin %s is not a regular file", real);
	ret = config_check_trusted("storage plugin", real, &sb, false);
	if (ret < 0)
		return ret;
	snprintf(dir, sizeof(dir), "%s", real);
	snprintf(real, sizeof(real), "%s", dirname(dir));
	if (stat(real, &sb) < 0)
		return pgk_error(PGKEEP_EINVAL, "cannot load storage plugin from %s: %s", real,
				 strerror(errno));
	return config_check_trusted("plugin directory", real, &sb, false);
}

int store_load(struct pgk_store **out, const char *path)
{
	struct pgk_store *st;
	pgkeep_storage_init_fn init;
	int ret;

	ret = check_plugin_file(path);
	if (ret < 0)
		return ret;
	st = xzalloc(sizeof(*st));
	st->path = xstrdup(path);
	st->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!st->dl) {
		ret = pgk_error(PGKEEP_EINVAL, "cannot load storage plugin: %s", dlerror());
		goto out_free;
	}
	/* ISO C has no cast from void * to a function pointer; POSIX allows the copy. */
	{
		void *sym = dlsym(st->dl, PGKEEP_STORAGE_INIT_SYMBOL);

		if (!sym) {
			ret = pgk_error(PGKEEP_EINVAL,
					"%s is not a pgkeep storage plugin: no symbol %s",
					path, PGKEEP_STORAGE_INIT_SYMBOL);
			goto out_free;
		}
		memcpy(&init, &sym, sizeof(init));
	}
	ret = check_table(st, init(&host_table));
	if (ret < 0)
		goto out_free;
	*out = st;
	return 0;

out_free:
	store_free(st);
	return ret;
}

static bool valid_plugin_name(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') ||
		      *name == '_'))
			return false;
	return true;
}

/* The first directory holding NAME.so, in search order; NULL when none. */
static char *find_plugin(const char *plugin, const char *plugin_dir, struct pgk_buf *looked)
{
	/* Root takes code only from places named in its config or built in. */
	const char *env = geteuid() == 0 ? NULL : getenv("PGKEEP_PLUGIN_DIR");
	const char *dirs[3] = { plugin_dir, env, PGKEEP_PKGLIBDIR };
	size_t i;

	for (i = 0; i < 3; i++) {
		char *path;

		if (!dirs[i] || !*dirs[i])
			continue;
		path = xasprintf("%s/%s.so", dirs[i], plugin);
		if (access(path, F_OK) == 0)
			return path;
		buf_printf(looked, "%s%s", looked->len ? ", " : "", dirs[i]);
		free(path);
	}
	return NULL;
}

static const char *ctx_name(const struct pgk_store *st)
{
	return st->repo_name ? st->repo_name : st->ops.name;
}

/*
 * A plugin call failed: make sure a message exists and the code is one we
 * know, then add which repository and what we were doing.
 *
 * Every plugin call writes its message into a buffer of its own (`err`, on
 * the wrapper's stack), never into the thread's error: a call made while
 * cleaning up after an error, successful or not, leaves that error alone.
 * The thread's message is set here, once, when a wrapper returns a failure.
 */
static int wrap_failure(const struct pgk_store *st, int ret, const char *what, const char *key,
			const char *err)
{
	char none[PGKEEP_ERRLEN];

	if (ret > 0 || ret < PGKEEP_ENOSPC)
		ret = PGKEEP_EIO;
	if (!err[0]) {
		snprintf(none, sizeof(none), "plugin %s failed (%s) without a message",
			 st->ops.name, pgk_strstatus(ret));
		err = none;
	}
	if (key)
		return pgk_error(ret, "repository %s: %s %s: %s", ctx_name(st), what, key, err);
	return pgk_error(ret, "repository %s: %s: %s", ctx_name(st), what, err);
}

/* Call the plugin's open, adding create=yes when init asks and it can. */
static int open_handle(struct pgk_store *st, const struct pgkeep_option *opts, size_t nopts,
		       unsigned flags, char *err)
{
	struct pgkeep_option *all;
	int ret;

	if (!(flags & STORE_OPEN_CREATE) || !store_has_feature(st, PGKEEP_FEAT_CREATE_ROOT))
		return st->ops.open(&st->handle, opts, nopts, err);
	all = xmalloc((nopts + 1) * sizeof(*all));
	if (nopts)
		memcpy(all, opts, nopts * sizeof(*all));
	all[nopts].key = "create";
	all[nopts].value = "yes";
	ret = st->ops.open(&st->handle, all, nopts + 1, err);
	free(all);
	return ret;
}

int store_open(struct pgk_store **out, const char *repo_name, const char *plugin,
	       const char *plugin_dir, const struct pgkeep_option *opts, size_t nopts)
{
	return store_open_flags(out, repo_name, plugin, plugin_dir, opts, nopts, 0);
}

int store_open_flags(struct pgk_store **out, const char *repo_name, const char *plugin,
		     const char *plugin_dir, const struct pgkeep_option *opts, size_t nopts,
		     unsigned flags)
{
	struct pgk_buf looked = PGK_BUF_INIT;
	char err[PGKEEP_ERRLEN] = "";
	struct pgk_store *st;
	char *path;
	size_t i;
	int ret;

	/* Only init makes a repository's root: a config cannot ask every command to. */
	for (i = 0; i < nopts; i++)
		if (strcmp(opts[i].key, "create") == 0)
			return pgk_error(PGKEEP_EINVAL,
					 "repository %s: option 'create' is not a setting (pgkeep init creates the repository)",
					 repo_name);

	if (strchr(plugin, '/')) {
		path = xstrdup(plugin);
	} else if (!valid_plugin_name(plugin)) {
		return pgk_error(PGKEEP_EINVAL,
				 "repository %s: invalid storage plugin name '%s' (expected [a-z0-9_]+)",
				 repo_name, plugin);
	} else {
		path = find_plugin(plugin, plugin_dir, &looked);
		if (!path) {
			ret = pgk_error(PGKEEP_EINVAL,
					"repository %s: storage plugin '%s' not found (looked for %s.so in %s)",
					repo_name, plugin, plugin, looked.data ? (char *)looked.data : "");
			buf_free(&looked);
			return ret;
		}
		buf_free(&looked);
	}

	ret = store_load(&st, path);
	free(path);
	if (ret < 0)
		return pgk_error_wrap(ret, "repository %s", repo_name);
	st->repo_name = xstrdup(repo_name);

	ret = open_handle(st, opts, nopts, flags, err);
	if (ret < 0) {
		st->handle = NULL;
		ret = wrap_failure(st, ret, "open", NULL, err);
		store_free(st);
		return ret;
	}
	*out = st;
	return 0;
}

void store_close(struct pgk_store *st)
{
	if (!st)
		return;
	if (st->handle)
		st->ops.close(st->handle);
	store_free(st);
}

bool store_has_feature(const struct pgk_store *st, uint64_t feat)
{
	return (st->ops.features & feat) == feat;
}

/*
 * No call is retried here: the plugin has already retried what retrying can
 * fix (include/pgkeep/storage.h), and another loop on top would multiply its
 * attempts.  PGKEEP_ERETRY comes back to the command as it is.
 */

/* ------------------------------------------------------------- operations */

static int put_once(struct pgk_store *st, const char *key, const void *buf, size_t len,
		    unsigned flags, char *err)
{
	void *put;
	int ret;

	ret = st->ops.put_begin(st->handle, key, len, flags, &put, err);
	if (ret < 0)
		return ret;
	if (len) {
		ret = st->ops.put_write(put, buf, len, err);
		if (ret < 0) {
			st->ops.put_abort(put);
			return ret;
		}
	}
	return st->ops.put_commit(put, err);
}

int store_put(struct pgk_store *st, const char *key, const void *buf, size_t len,
	      unsigned flags)
{
	char err[PGKEEP_ERRLEN] = "";
	int ret = put_once(st, key, buf, len, flags, err);

	return ret < 0 ? wrap_failure(st, ret, "put", key, err) : 0;
}

/* One get's sink: the bytes so far, within the caller's cap. */
struct get_sink {
	struct pgk_buf *out;
	const struct store_cap *cap;
	const char *key;
	uint64_t max;
	bool checked;
	int rc;		/* what the sink stopped the transfer with */
};

static int sink_stop(struct get_sink *g, int rc)
{
	g->rc = rc;
	return rc;
}

static int sink_check(struct get_sink *g)
{
	int rc;

	g->checked = true;
	rc = g->cap->check(g->cap->arg, g->out->data, g->out->len, &g->max);
	if (rc == 0 && g->out->len > g->max)
		rc = pgk_error(PGKEEP_ECORRUPT, "object %s is larger than %llu bytes", g->key,
			       (unsigned long long)g->max);
	return rc;
}

static int collect(void *payload, const void *buf, size_t len)
{
	struct get_sink *g = payload;

	if (len > g->max - g->out->len)
		return sink_stop(g, pgk_error(PGKEEP_ECORRUPT, "object %s is larger than %llu bytes",
					      g->key, (unsigned long long)g->max));
	if (!buf_try_reserve(g->out, len))
		return sink_stop(g, pgk_error(PGKEEP_ENOMEM,
					      "out of memory reading object %s (%zu bytes)", g->key,
					      g->out->len + len));
	memcpy(g->out->data + g->out->len, buf, len);
	g->out->len += len;
	if (g->cap && g->cap->check && !g->checked && g->out->len >= g->cap->head_len) {
		int rc = sink_check(g);

		if (rc)
			return sink_stop(g, rc);
	}
	return 0;
}

static int get_once(struct pgk_store *st, const char *key, struct get_sink *g, char *err)
{
	buf_reset(g->out);
	g->max = g->cap ? g->cap->max : UINT64_MAX;
	g->checked = false;
	g->rc = 0;
	return st->ops.get(st->handle, key, 0, UINT64_MAX, collect, g, err);
}

int store_get_capped(struct pgk_store *st, const char *key, const struct store_cap *cap,
		     struct pgk_buf *out)
{
	struct get_sink g = { out, cap, key, 0, false, 0 };
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	ret = get_once(st, key, &g, err);
	/* A short object is checked whole, once it has all come. */
	if (ret == 0 && cap && cap->check && !g.checked)
		ret = g.rc = sink_check(&g);
	if (ret < 0) {
		buf_reset(out);
		/* What the sink refused names the object already. */
		return ret == g.rc ? ret : wrap_failure(st, ret, "get", key, err);
	}
	return 0;
}

int store_get(struct pgk_store *st, const char *key, struct pgk_buf *out)
{
	return store_get_capped(st, key, NULL, out);
}

int store_stat(struct pgk_store *st, const char *key, struct pgkeep_stat *out)
{
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	memset(out, 0, sizeof(*out));
	ret = st->ops.stat(st->handle, key, out, err);
	return ret < 0 ? wrap_failure(st, ret, "stat", key, err) : 0;
}

struct list_ctx {
	pgkeep_list_fn cb;
	void *payload;
	int cb_ret;
};

static int list_relay(void *payload, const char *key, const struct pgkeep_stat *stp)
{
	struct list_ctx *c = payload;

	c->cb_ret = c->cb(c->payload, key, stp);
	return c->cb_ret;
}

int store_list(struct pgk_store *st, const char *prefix, pgkeep_list_fn cb, void *payload)
{
	struct list_ctx c = { cb, payload, 0 };
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	ret = st->ops.list(st->handle, prefix, list_relay, &c, err);
	if (ret == 0)
		return 0;
	if (c.cb_ret && ret == c.cb_ret)
		return ret;	/* the caller stopped it; its message stands */
	return wrap_failure(st, ret, "list", *prefix ? prefix : "(all)", err);
}

int store_remove(struct pgk_store *st, const char *key)
{
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	ret = st->ops.remove(st->handle, key, err);
	return ret < 0 ? wrap_failure(st, ret, "delete", key, err) : 0;
}

int store_lock_until(struct pgk_store *st, const char *key, int64_t until)
{
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	if (!st->ops.lock_until || !store_has_feature(st, PGKEEP_FEAT_LOCK))
		return pgk_error(PGKEEP_EUNSUPPORTED,
				 "repository %s: lock %s: plugin %s cannot lock objects",
				 ctx_name(st), key, st->ops.name);
	ret = st->ops.lock_until(st->handle, key, until, err);
	return ret < 0 ? wrap_failure(st, ret, "lock", key, err) : 0;
}

int store_locked_until(struct pgk_store *st, const char *key, int64_t *until)
{
	char err[PGKEEP_ERRLEN] = "";
	int ret;

	*until = 0;
	if (!st->ops.locked_until)
		return pgk_error(PGKEEP_EUNSUPPORTED,
				 "repository %s: lock of %s: plugin %s cannot tell", ctx_name(st),
				 key, st->ops.name);
	ret = st->ops.locked_until(st->handle, key, until, err);
	return ret < 0 ? wrap_failure(st, ret, "lock state of", key, err) : 0;
}

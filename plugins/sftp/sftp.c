/*
 * The sftp storage plugin: a pgkeep repository in a directory on any SSH
 * server, through libssh2.  Objects become visible only complete: written to
 * KEY.tmp.<random>, flushed with fsync@openssh.com, then renamed into place.
 *
 * Concurrency: a libssh2 session must not be used by two threads at once, so
 * the handle keeps a pool of sessions (at most max_connections, opened on
 * demand, guarded by one mutex); every call borrows one session for its
 * duration, and a put keeps one from its first streamed byte to commit.
 *
 * This file holds open, close, get, stat, remove and the table; put.c and
 * list.c the other calls, settings.c the options, conn.c the sessions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftp.h"

/* ---- get, stat, remove ----------------------------------------------------- */

struct get_req {
	const char *path;
	uint64_t offset, length;	/* length UINT64_MAX: to the end */
	uint64_t done;			/* bytes already handed to the sink */
	pgkeep_sink_fn sink;
	void *payload;
	bool sink_stopped;
};

static int get_once(struct sftp_store *st, struct sftp_conn *c, struct get_req *g, char *err)
{
	LIBSSH2_SFTP_HANDLE *fh;
	int rc = PGKEEP_OK;

	fh = libssh2_sftp_open_ex(c->sftp, g->path, (unsigned)strlen(g->path), LIBSSH2_FXF_READ, 0,
				  LIBSSH2_SFTP_OPENFILE);
	if (!fh)
		return sftp_fail(st, c, err, "open", g->path);
	if (g->offset + g->done)
		libssh2_sftp_seek64(fh, g->offset + g->done);
	while (g->length == UINT64_MAX || g->done < g->length) {
		size_t want = SFTP_IOBUF_SIZE;
		ssize_t n;

		if (g->length != UINT64_MAX && g->length - g->done < want)
			want = (size_t)(g->length - g->done);
		n = libssh2_sftp_read(fh, (char *)c->iobuf, want);
		if (n < 0) {
			rc = sftp_fail(st, c, err, "read", g->path);
			break;
		}
		if (n == 0)
			break;
		g->done += (uint64_t)n;
		rc = g->sink(g->payload, c->iobuf, (size_t)n);
		if (rc) {
			g->sink_stopped = true;
			break;
		}
	}
	if (!c->broken)
		libssh2_sftp_close_handle(fh);
	return rc;
}

static int sftp_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		    pgkeep_sink_fn sink, void *payload, char *err)
{
	struct sftp_store *st = handle;
	struct get_req g = { .offset = offset, .length = length, .sink = sink, .payload = payload };
	struct sftp_conn *c;
	char *path;
	int rc;

	rc = sftp_key_check(key, false, err);
	if (rc)
		return rc;
	path = sftp_remote_join(st, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	g.path = path;
	/* a retry resumes after the bytes already delivered */
	WITH_RETRY(st, c, err, rc, get_once(st, c, &g, err));
	free(path);
	return rc;
}

static int stat_once(struct sftp_store *st, struct sftp_conn *c, const char *path,
		     struct pgkeep_stat *out, char *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	if (libssh2_sftp_stat_ex(c->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_STAT, &a))
		return sftp_fail(st, c, err, "stat", path);
	if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISREG(a.permissions))
		return pgkeep_fail(err, PGKEEP_ENOTFOUND, "sftp: %s:%s is not a regular file",
				   st->where, path);
	out->size = (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0;
	out->mtime = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0;
	return PGKEEP_OK;
}

static int sftp_stat(void *handle, const char *key, struct pgkeep_stat *out, char *err)
{
	struct sftp_store *st = handle;
	struct sftp_conn *c;
	char *path;
	int rc;

	rc = sftp_key_check(key, false, err);
	if (rc)
		return rc;
	path = sftp_remote_join(st, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	WITH_RETRY(st, c, err, rc, stat_once(st, c, path, out, err));
	free(path);
	return rc;
}

static int remove_once(struct sftp_store *st, struct sftp_conn *c, const char *path, char *err)
{
	int rc;

	if (!libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path)))
		return PGKEEP_OK;
	rc = sftp_fail(st, c, err, "remove", path);
	/* already gone, perhaps by our own unlink whose answer was lost */
	return rc == PGKEEP_ENOTFOUND ? PGKEEP_OK : rc;
}

static int sftp_remove(void *handle, const char *key, char *err)
{
	struct sftp_store *st = handle;
	struct sftp_conn *c;
	char *path;
	int rc;

	rc = sftp_key_check(key, false, err);
	if (rc)
		return rc;
	path = sftp_remote_join(st, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	WITH_RETRY(st, c, err, rc, remove_once(st, c, path, err));
	free(path);
	return rc;
}

/* ---- open, close, the table ------------------------------------------------ */

static void store_free(struct sftp_store *st)
{
	sftp_pool_drain(st);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	sftp_settings_free(&st->set);
	free(st->where);
	free(st);
}

static int lib_rc = -1;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	lib_rc = libssh2_init(0);
}

static int sftp_open(void **handle, const struct pgkeep_option *opts, size_t nopts, char *err)
{
	struct sftp_store *st;
	struct sftp_conn *c;
	int rc;

	pthread_once(&lib_once, lib_init);
	if (lib_rc)
		return pgkeep_fail(err, PGKEEP_EIO, "sftp: libssh2 failed to initialise");
	st = calloc(1, sizeof(*st));
	if (!st)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	rc = sftp_settings_parse(&st->set, opts, nopts, err);
	if (!rc)
		rc = sftp_check_identity(&st->set, err);
	if (rc)
		goto out_free;
	if (asprintf(&st->where, "%s@%s:%d", st->set.user, st->set.host, st->set.port) < 0) {
		st->where = NULL;
		rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
		goto out_free;
	}
	/* connect now: a wrong host key or key file should fail at open */
	rc = sftp_conn_acquire(st, &c, err);
	if (rc)
		goto out_free;
	if (st->set.create)
		rc = sftp_mkdir_p(st, c, st->set.path, strlen(st->set.path), err);
	if (!rc)
		rc = sftp_root_check(st, c, err);
	sftp_conn_release(st, c);
	if (rc)
		goto out_free;
	*handle = st;
	return PGKEEP_OK;
out_free:
	store_free(st);
	return rc;
}

static void sftp_close(void *handle)
{
	if (handle)
		store_free(handle);
}

static const struct pgkeep_storage_ops sftp_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "sftp",
	.features = PGKEEP_FEAT_IF_ABSENT_ATOMIC | PGKEEP_FEAT_RANGE_GET | PGKEEP_FEAT_CREATE_ROOT,
	.open = sftp_open,
	.close = sftp_close,
	.put_begin = sftp_put_begin,
	.put_write = sftp_put_write,
	.put_commit = sftp_put_commit,
	.put_abort = sftp_put_abort,
	.get = sftp_get,
	.stat = sftp_stat,
	.list = sftp_list,
	.remove = sftp_remove,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	if (host && host->struct_size >= sizeof(struct pgkeep_host))
		sftp_host = host;
	return &sftp_ops;
}

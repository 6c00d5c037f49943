/*
 * put for the sftp plugin: objects become visible only complete, written to
 * KEY.tmp.<random>, flushed with fsync@openssh.com, then renamed into place.
 * Small puts are buffered so a dropped connection can be survived by
 * uploading again; larger ones stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sftp.h"

/*
 * A put up to this size is kept in memory until commit, so that a dropped
 * connection can be survived by uploading it again; it holds a 16 MiB WAL
 * segment with room for the object header.  Larger puts stream, and a
 * dropped connection fails them with PGKEEP_ERETRY.
 */
#define PUT_BUFFER_MAX ((size_t)17 << 20)
#define PUT_STAGE_SIZE ((size_t)4 << 20)	/* streaming: bytes per write */

/* ---- put ------------------------------------------------------------------ */

struct sftp_put {
	struct sftp_store *st;
	char *key;
	char *path;			/* final remote name */
	char *tmp;			/* current temp name, or NULL */
	unsigned flags;
	bool big;			/* size_hint says: stream from the start */
	unsigned char *buf;		/* whole object, or staging when streaming */
	size_t len, cap;
	bool streaming;
	struct sftp_conn *conn;		/* held while streaming */
	LIBSSH2_SFTP_HANDLE *fh;
	bool rename_unsure;		/* a rename went out and its answer was lost */
	int failed;			/* sticky error of a streaming put */
};

static int tmp_name(struct sftp_put *p, char *err)
{
	unsigned char r[SFTP_TEMP_RAND_HEX / 2];
	size_t n = strlen(p->path) + strlen(SFTP_TEMP_INFIX) + SFTP_TEMP_RAND_HEX + 1;
	char *t;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return pgkeep_fail(err, PGKEEP_EIO, "sftp: no random bytes for a temp name");
	t = malloc(n);
	if (!t)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	snprintf(t, n, "%s%s", p->path, SFTP_TEMP_INFIX);
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(t + strlen(t), "%02x", r[i]);
	free(p->tmp);
	p->tmp = t;
	return PGKEEP_OK;
}

/* Create a fresh temp file next to the target, making directories on demand. */
static int tmp_open(struct sftp_put *p, struct sftp_conn *c, char *err)
{
	const unsigned long fl = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL;
	long s;
	int rc;

	rc = tmp_name(p, err);
	if (rc)
		return rc;
	p->fh = libssh2_sftp_open_ex(c->sftp, p->tmp, (unsigned)strlen(p->tmp), fl, 0600,
				     LIBSSH2_SFTP_OPENFILE);
	if (p->fh)
		return PGKEEP_OK;
	s = sftp_status(c);
	if (s != (long)LIBSSH2_FX_NO_SUCH_FILE && s != (long)LIBSSH2_FX_NO_SUCH_PATH)
		goto out_fail;
	rc = sftp_mkdir_p(p->st, c, p->path, sftp_parent_len(p->path), err);
	if (rc)
		return rc;
	p->fh = libssh2_sftp_open_ex(c->sftp, p->tmp, (unsigned)strlen(p->tmp), fl, 0600,
				     LIBSSH2_SFTP_OPENFILE);
	if (p->fh)
		return PGKEEP_OK;
out_fail:
	rc = sftp_fail(p->st, c, err, "create", p->tmp);
	return rc == PGKEEP_ENOTFOUND ? PGKEEP_EIO : rc;
}

/* Flush to the server's disk, when it can, and close the temp file. */
static int tmp_finish(struct sftp_put *p, struct sftp_conn *c, char *err)
{
	struct sftp_store *st = p->st;
	LIBSSH2_SFTP_HANDLE *fh = p->fh;
	bool warn = false;

	if (!st->no_fsync && libssh2_sftp_fsync(fh)) {
		if (sftp_status(c) != (long)LIBSSH2_FX_OP_UNSUPPORTED)
			return sftp_fail(st, c, err, "fsync", p->tmp);
		pthread_mutex_lock(&st->lock);
		warn = !st->no_fsync;
		st->no_fsync = true;
		pthread_mutex_unlock(&st->lock);
	}
	if (warn)
		sftp_log(PGKEEP_LOG_WARNING, "sftp: %s does not offer fsync@openssh.com: objects are "
			 "renamed into place without being flushed to its disk", st->where);
	p->fh = NULL;
	if (libssh2_sftp_close_handle(fh))
		return sftp_fail(st, c, err, "close", p->tmp);
	return PGKEEP_OK;
}

static void tmp_discard(struct sftp_put *p, struct sftp_conn *c)
{
	if (!c || c->broken)
		return;		/* list removes it once it is an hour old */
	if (p->fh) {
		libssh2_sftp_close_handle(p->fh);
		p->fh = NULL;
	}
	if (p->tmp && !c->broken)
		libssh2_sftp_unlink_ex(c->sftp, p->tmp, (unsigned)strlen(p->tmp));
}

/* Compare the object at the target with the buffered bytes: 1 same, 0 not. */
static int target_same(struct sftp_put *p, struct sftp_conn *c, char *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *fh;
	size_t off = 0;
	int same = 1;

	if (p->streaming)
		return 0;
	if (libssh2_sftp_stat_ex(c->sftp, p->path, (unsigned)strlen(p->path), LIBSSH2_SFTP_STAT, &a))
		return sftp_fail(p->st, c, err, "stat", p->path);
	if (!(a.flags & LIBSSH2_SFTP_ATTR_SIZE) || a.filesize != p->len)
		return 0;
	fh = libssh2_sftp_open_ex(c->sftp, p->path, (unsigned)strlen(p->path), LIBSSH2_FXF_READ, 0,
				  LIBSSH2_SFTP_OPENFILE);
	if (!fh)
		return sftp_fail(p->st, c, err, "open", p->path);
	while (same) {
		ssize_t n = libssh2_sftp_read(fh, (char *)c->iobuf, SFTP_IOBUF_SIZE);

		if (n < 0) {
			same = sftp_fail(p->st, c, err, "read", p->path);
			break;
		}
		if (n == 0)
			break;
		if (off + (size_t)n > p->len || memcmp(c->iobuf, p->buf + off, (size_t)n))
			same = 0;
		off += (size_t)n;
	}
	if (!c->broken)
		libssh2_sftp_close_handle(fh);
	return same == 1 && off == p->len ? 1 : same < 0 ? same : 0;
}

/*
 * SFTP v3 has no overwriting rename and OpenSSH's server implements rename
 * as link()+unlink(), so it fails when the target exists: that is the
 * if-absent check.  A plain put then removes the target and renames again,
 * which leaves a short window in which the key is missing.
 */
static int rename_into_place(struct sftp_put *p, struct sftp_conn *c, char *err)
{
	struct sftp_store *st = p->st;
	const long flags = LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
			   LIBSSH2_SFTP_RENAME_NATIVE;
	unsigned tl = (unsigned)strlen(p->tmp), pl = (unsigned)strlen(p->path);
	LIBSSH2_SFTP_ATTRIBUTES a;
	long s;
	int same;

	if (!libssh2_sftp_rename_ex(c->sftp, p->tmp, tl, p->path, pl, flags))
		return PGKEEP_OK;
	s = sftp_status(c);
	if (s < 0) {
		p->rename_unsure = true;
		return sftp_fail(st, c, err, "rename", p->tmp);
	}
	if (s != (long)LIBSSH2_FX_FAILURE && s != (long)LIBSSH2_FX_FILE_ALREADY_EXISTS &&
	    s != (long)LIBSSH2_FX_OP_UNSUPPORTED)
		goto out_status;
	if (libssh2_sftp_stat_ex(c->sftp, p->path, pl, LIBSSH2_SFTP_STAT, &a)) {
		if (sftp_status(c) != (long)LIBSSH2_FX_NO_SUCH_FILE)
			return sftp_fail(st, c, err, "stat", p->path);
		goto out_status;	/* the target is not what stopped us */
	}
	if (p->flags & PGKEEP_PUT_IF_ABSENT) {
		/* our own earlier rename may have landed before the link dropped */
		same = p->rename_unsure ? target_same(p, c, err) : 0;
		if (same < 0)
			return same;
		libssh2_sftp_unlink_ex(c->sftp, p->tmp, tl);
		if (same)
			return PGKEEP_OK;
		return pgkeep_fail(err, PGKEEP_EEXISTS, "sftp: %s:%s exists already", st->where, p->path);
	}
	if (libssh2_sftp_unlink_ex(c->sftp, p->path, pl) &&
	    sftp_status(c) != (long)LIBSSH2_FX_NO_SUCH_FILE)
		return sftp_fail(st, c, err, "remove", p->path);
	if (!libssh2_sftp_rename_ex(c->sftp, p->tmp, tl, p->path, pl, flags))
		return PGKEEP_OK;
	s = sftp_status(c);
	if (s < 0) {
		p->rename_unsure = true;
		return sftp_fail(st, c, err, "rename", p->tmp);
	}
out_status:
	return pgkeep_fail(err, PGKEEP_EIO, "sftp: rename %s:%s to %s: %s", st->where, p->tmp,
			   p->path, sftp_status_name((unsigned long)s));
}

/* One whole upload of a buffered put on connection c. */
static int commit_buffered_once(struct sftp_put *p, struct sftp_conn *c, char *err)
{
	int rc;

	if (p->tmp)	/* left by an attempt whose connection dropped */
		libssh2_sftp_unlink_ex(c->sftp, p->tmp, (unsigned)strlen(p->tmp));
	rc = tmp_open(p, c, err);
	if (rc)
		return rc;
	rc = sftp_write_all(p->st, c, p->fh, p->tmp, p->buf, p->len, err);
	if (!rc)
		rc = tmp_finish(p, c, err);
	if (!rc)
		rc = rename_into_place(p, c, err);
	if (rc && rc != PGKEEP_EEXISTS && !p->rename_unsure)
		tmp_discard(p, c);
	return rc;
}

/* Everything is in memory: a dropped connection costs one more upload. */
static int commit_buffered(struct sftp_put *p, char *err)
{
	struct sftp_conn *c;
	bool broken;
	int rc = PGKEEP_ERETRY;

	for (int i = 0; i < SFTP_ATTEMPTS; i++) {
		rc = sftp_conn_acquire(p->st, &c, err);
		if (rc && sftp_connect_again(rc, i, err))
			continue;
		if (rc)
			return rc;
		rc = commit_buffered_once(p, c, err);
		broken = c->broken;
		sftp_conn_release(p->st, c);
		if (!broken)
			return rc;
		p->fh = NULL;	/* went with the session */
		sftp_log(PGKEEP_LOG_INFO, "%s; reconnecting", err);
	}
	return rc;
}

static void put_free(struct sftp_put *p)
{
	free(p->key);
	free(p->path);
	free(p->tmp);
	free(p->buf);
	free(p);
}

int sftp_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
		   void **out, char *err)
{
	struct sftp_store *st = handle;
	struct sftp_put *p;
	int rc;

	rc = sftp_key_check(key, false, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	p->st = st;
	p->flags = flags;
	p->big = size_hint != UINT64_MAX && size_hint > PUT_BUFFER_MAX;
	p->key = strdup(key);
	p->path = sftp_remote_join(st, key);
	if (!p->key || !p->path) {
		put_free(p);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	}
	*out = p;
	return PGKEEP_OK;
}

static int buf_reserve(struct sftp_put *p, size_t need, char *err)
{
	size_t cap = p->cap ? p->cap : 65536;
	unsigned char *nb;

	if (need <= p->cap)
		return PGKEEP_OK;
	while (cap < need)
		cap *= 2;
	nb = realloc(p->buf, cap);
	if (!nb)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	p->buf = nb;
	p->cap = cap;
	return PGKEEP_OK;
}

/* Streaming failed: keep the code, drop the session if it is dead. */
static int stream_fail(struct sftp_put *p, int rc)
{
	if (p->conn && p->conn->broken) {
		p->fh = NULL;
		sftp_conn_release(p->st, p->conn);
		p->conn = NULL;
	}
	p->failed = rc;
	return rc;
}

/* The object outgrew memory: open the temp file and send what we have. */
static int stream_start(struct sftp_put *p, char *err)
{
	int rc;

	rc = sftp_conn_acquire(p->st, &p->conn, err);
	if (rc)
		return stream_fail(p, rc);
	p->streaming = true;
	rc = tmp_open(p, p->conn, err);
	if (!rc && p->len)
		rc = sftp_write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
	if (rc)
		return stream_fail(p, rc);
	p->len = 0;
	return buf_reserve(p, PUT_STAGE_SIZE, err);
}

static int stream_write(struct sftp_put *p, const unsigned char *b, size_t len, char *err)
{
	int rc;

	while (len) {
		size_t n;

		if (p->len == 0 && len >= PUT_STAGE_SIZE) {	/* no copy needed */
			n = len - len % PUT_STAGE_SIZE;
			rc = sftp_write_all(p->st, p->conn, p->fh, p->tmp, b, n, err);
			if (rc)
				return stream_fail(p, rc);
			b += n;
			len -= n;
			continue;
		}
		n = PUT_STAGE_SIZE - p->len < len ? PUT_STAGE_SIZE - p->len : len;
		memcpy(p->buf + p->len, b, n);
		p->len += n;
		b += n;
		len -= n;
		if (p->len == PUT_STAGE_SIZE) {
			rc = sftp_write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
			if (rc)
				return stream_fail(p, rc);
			p->len = 0;
		}
	}
	return PGKEEP_OK;
}

int sftp_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct sftp_put *p = put;
	int rc;

	if (p->failed)
		return pgkeep_fail(err, p->failed, "sftp: upload of %s:%s failed already",
				   p->st->where, p->path);
	if (!p->streaming && !p->big && p->len + len <= PUT_BUFFER_MAX) {
		rc = buf_reserve(p, p->len + len, err);
		if (rc)
			return rc;
		memcpy(p->buf + p->len, buf, len);
		p->len += len;
		return PGKEEP_OK;
	}
	if (!p->streaming) {
		rc = stream_start(p, err);
		if (rc)
			return rc;
	}
	return stream_write(p, buf, len, err);
}

static int commit_streaming(struct sftp_put *p, char *err)
{
	int rc = PGKEEP_OK;

	if (p->len)
		rc = sftp_write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
	if (!rc)
		rc = tmp_finish(p, p->conn, err);
	if (!rc)
		rc = rename_into_place(p, p->conn, err);
	if (rc && p->conn->broken) {
		char why[PGKEEP_ERRLEN];

		snprintf(why, sizeof(why), "%s", err);
		return pgkeep_fail(err, PGKEEP_ERETRY, "%s; the upload of %s must be restarted",
				   why, p->key);
	}
	if (rc && rc != PGKEEP_EEXISTS)
		tmp_discard(p, p->conn);
	return rc;
}

int sftp_put_commit(void *put, char *err)
{
	struct sftp_put *p = put;
	int rc;

	if (p->failed)
		rc = pgkeep_fail(err, p->failed, "sftp: upload of %s:%s failed already",
				 p->st->where, p->path);
	else if (p->streaming)
		rc = commit_streaming(p, err);
	else
		rc = commit_buffered(p, err);
	if (p->conn)
		sftp_conn_release(p->st, p->conn);
	put_free(p);
	return rc;
}

void sftp_put_abort(void *put)
{
	struct sftp_put *p = put;

	if (p->conn) {
		tmp_discard(p, p->conn);
		sftp_conn_release(p->st, p->conn);
	}
	put_free(p);
}

/*
 * Small steps the sftp plugin's calls share: keys to remote paths, the
 * repository's root and its directories, whole writes, and the wait before
 * connecting again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sftp.h"

#define WRITE_SLICE ((size_t)8 << 20)		/* libssh2 copies what it is given */
#define CONNECT_WAIT_MS 250			/* first wait after a failed connect */

/* ---- keys and paths ------------------------------------------------------ */

int sftp_key_check(const char *key, bool prefix, char *err)
{
	if (!(prefix ? pgkeep_prefix_valid(key) : pgkeep_key_valid(key)))
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: invalid key '%s'", key);
	return PGKEEP_OK;
}

/* PATH/REL, where REL may be empty (the repository directory itself). */
char *sftp_remote_join(const struct sftp_store *st, const char *rel)
{
	size_t n = strlen(st->set.path) + strlen(rel) + 2;
	char *out = malloc(n);

	if (!out)
		return NULL;
	if (!*rel)
		snprintf(out, n, "%s", *st->set.path ? st->set.path : "/");
	else
		snprintf(out, n, "%s/%s", st->set.path, rel);
	n = strlen(out);
	if (n > 1 && out[n - 1] == '/')
		out[n - 1] = '\0';
	return out;
}

/* NAME.tmp.<16 hex digits>: what a put writes before its rename. */
bool sftp_is_temp_name(const char *name)
{
	size_t n = strlen(name), il = strlen(SFTP_TEMP_INFIX);

	if (n <= il + SFTP_TEMP_RAND_HEX)
		return false;
	if (memcmp(name + n - SFTP_TEMP_RAND_HEX - il, SFTP_TEMP_INFIX, il))
		return false;
	for (size_t i = n - SFTP_TEMP_RAND_HEX; i < n; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	return true;
}

/* ---- small SFTP steps ---------------------------------------------------- */

size_t sftp_parent_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

static bool stat_is_dir(struct sftp_conn *c, const char *path, size_t len)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	if (libssh2_sftp_stat_ex(c->sftp, path, (unsigned)len, LIBSSH2_SFTP_STAT, &a))
		return false;
	return (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions);
}

/* A missing repository directory is the repository missing, not an object. */
int sftp_root_check(struct sftp_store *st, struct sftp_conn *c, char *err)
{
	const char *root = *st->set.path ? st->set.path : "/";

	if (stat_is_dir(c, root, strlen(root)))
		return PGKEEP_OK;
	return pgkeep_fail(err, PGKEEP_EIO, "sftp: repository directory %s:%s does not exist "
			   "or is not a directory", st->where, root);
}

/* mkdir -p for the first len bytes of path, mode 0700. */
int sftp_mkdir_p(struct sftp_store *st, struct sftp_conn *c, const char *path, size_t len,
		 char *err)
{
	char *dir;
	long s;
	int rc;

	if (len == 0)
		return PGKEEP_OK;
	/* The repository's directory and above: only init makes them. */
	if (len <= strlen(st->set.path) && !st->set.create)
		return sftp_root_check(st, c, err);
	if (!libssh2_sftp_mkdir_ex(c->sftp, path, (unsigned)len, 0700))
		return PGKEEP_OK;
	s = sftp_status(c);
	if (s == (long)LIBSSH2_FX_NO_SUCH_FILE || s == (long)LIBSSH2_FX_NO_SUCH_PATH) {
		rc = sftp_mkdir_p(st, c, path, sftp_parent_len(strndupa(path, len)), err);
		if (rc)
			return rc;
		if (!libssh2_sftp_mkdir_ex(c->sftp, path, (unsigned)len, 0700))
			return PGKEEP_OK;
		s = sftp_status(c);
	}
	if (s < 0 || s == (long)LIBSSH2_FX_PERMISSION_DENIED) {
		dir = strndupa(path, len);
		return sftp_fail(st, c, err, "mkdir", dir);
	}
	/* OpenSSH answers SSH_FX_FAILURE for "exists": fine if it is a directory */
	if (stat_is_dir(c, path, len))
		return PGKEEP_OK;
	if (sftp_status(c) < 0)
		return sftp_fail(st, c, err, "mkdir", strndupa(path, len));
	return pgkeep_fail(err, PGKEEP_EIO, "sftp: mkdir %s:%.*s: %s", st->where, (int)len, path,
			   sftp_status_name((unsigned long)s));
}

/* Write all of buf, giving libssh2 big slices so it can pipeline them. */
int sftp_write_all(struct sftp_store *st, struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *fh,
		   const char *path, const unsigned char *buf, size_t len, char *err)
{
	size_t off = 0;

	while (off < len) {
		size_t n = len - off < WRITE_SLICE ? len - off : WRITE_SLICE;
		ssize_t w = libssh2_sftp_write(fh, (const char *)buf + off, n);

		if (w < 0)
			return sftp_fail(st, c, err, "write", path);
		off += (size_t)w;
	}
	return PGKEEP_OK;
}

/*
 * A session could not be had (server restarting, network down): whether to
 * try again, after a wait of CONNECT_WAIT_MS doubled per attempt, jittered.
 * The plugin owns retrying; nobody above it tries again.
 */
bool sftp_connect_again(int rc, int attempt, const char *err)
{
	static __thread unsigned seed;
	long ms = CONNECT_WAIT_MS << attempt;
	struct timespec ts;

	if (rc != PGKEEP_ERETRY || attempt + 1 >= SFTP_ATTEMPTS)
		return false;
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	ms = ms / 2 + (long)(rand_r(&seed) % (unsigned)(ms / 2 + 1));
	sftp_log(PGKEEP_LOG_INFO, "%s; trying again in %ld ms", err, ms);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return true;
}

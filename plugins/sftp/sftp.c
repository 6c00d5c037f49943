/*
 * The sftp storage plugin: a pgkeep repository in a directory on any SSH
 * server, through libssh2.  Objects become visible only complete: written to
 * KEY.tmp.<random>, flushed with fsync@openssh.com, then renamed into place.
 *
 * Concurrency: a libssh2 session must not be used by two threads at once, so
 * the handle keeps a pool of sessions (at most max_connections, opened on
 * demand, guarded by one mutex); every call borrows one session for its
 * duration, and a put keeps one from its first streamed byte to commit.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/numparse.h"
#include "sftp.h"

/*
 * A put up to this size is kept in memory until commit, so that a dropped
 * connection can be survived by uploading it again; it holds a 16 MiB WAL
 * segment with room for the object header.  Larger puts stream, and a
 * dropped connection fails them with PGKEEP_ERETRY.
 */
#define PUT_BUFFER_MAX ((size_t)17 << 20)
#define PUT_STAGE_SIZE ((size_t)4 << 20)	/* streaming: bytes per write */
#define WRITE_SLICE ((size_t)8 << 20)		/* libssh2 copies what it is given */
#define ATTEMPTS PGKEEP_RETRY_ATTEMPTS	/* first try plus reconnects */
#define CONNECT_WAIT_MS 250			/* first wait after a failed connect */
#define TEMP_MAX_AGE 3600			/* seconds before a temp is litter */
#define TEMP_INFIX PGKEEP_TEMP_INFIX
#define TEMP_RAND_HEX 16

/* ---- settings ----------------------------------------------------------- */

static int parse_int(const char *key, const char *v, long min, long max, int *out, char *err)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s must be a whole number "
				   "from %ld to %ld, not '%s'", key, min, max, v);
	*out = (int)n;
	return PGKEEP_OK;
}

/* A duration as the agent reads one (common/numparse.h): "90", "30s", "2min". */
static int parse_secs(const char *key, const char *v, int min, int max, int *out, char *err)
{
	char msg[256];
	int64_t n;

	if (numparse_duration(key, v, PARSE_BARE_SECONDS, max, &n, msg, sizeof(msg)) < 0)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s", msg);
	if (n < min)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s: at least %d s, not '%s'",
				   key, min, v);
	*out = (int)n;
	return PGKEEP_OK;
}

static int parse_bool(const char *key, const char *v, bool *out, char *err)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return PGKEEP_OK;
	}
	if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return PGKEEP_OK;
	}
	return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s must be yes or no, not '%s'", key, v);
}

static int set_str(char **dst, const char *v, char *err)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? PGKEEP_OK : pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
}

/* A leading "~/" is the home of the account running pgkeep, as in ssh. */
static int set_path(char **dst, const char *v, char *err)
{
	struct passwd *pw;

	if (strncmp(v, "~/", 2))
		return set_str(dst, v, err);
	pw = getpwuid(geteuid());
	if (!pw || !pw->pw_dir)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot expand %s: uid %u has no home "
				   "directory", v, (unsigned)geteuid());
	free(*dst);
	if (asprintf(dst, "%s/%s", pw->pw_dir, v + 2) < 0) {
		*dst = NULL;
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	}
	return PGKEEP_OK;
}

/* The first line of the passphrase file; never echoed anywhere. */
static int read_passphrase(struct sftp_settings *set, const char *value, char *err)
{
	char *file = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int rc;

	rc = set_path(&file, value, err);
	if (rc)
		return rc;
	f = fopen(file, "re");
	if (!f) {
		rc = pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot read identity_passphrase_file %s: %s",
				 file, strerror(errno));
		free(file);
		return rc;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		rc = pgkeep_fail(err, PGKEEP_EINVAL, "sftp: identity_passphrase_file %s is empty", file);
		free(file);
		return rc;
	}
	free(file);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (set->passphrase) {
		OPENSSL_cleanse(set->passphrase, strlen(set->passphrase));
		free(set->passphrase);
	}
	set->passphrase = line;
	return PGKEEP_OK;
}

static void settings_free(struct sftp_settings *set)
{
	free(set->host);
	free(set->user);
	free(set->path);
	free(set->identity_file);
	free(set->known_hosts);
	if (set->passphrase) {
		OPENSSL_cleanse(set->passphrase, strlen(set->passphrase));
		free(set->passphrase);
	}
	memset(set, 0, sizeof(*set));
}

static int settings_one(struct sftp_settings *set, const char *k, const char *v, char *err)
{
	if (!strcmp(k, "host"))
		return set_str(&set->host, v, err);
	if (!strcmp(k, "port"))
		return parse_int(k, v, 1, 65535, &set->port, err);
	if (!strcmp(k, "user"))
		return set_str(&set->user, v, err);
	if (!strcmp(k, "path"))
		return set_str(&set->path, v, err);
	if (!strcmp(k, "identity_file"))
		return set_path(&set->identity_file, v, err);
	if (!strcmp(k, "identity_passphrase_file"))
		return read_passphrase(set, v, err);
	if (!strcmp(k, "use_agent"))
		return parse_bool(k, v, &set->use_agent, err);
	if (!strcmp(k, "create"))
		return parse_bool(k, v, &set->create, err);
	if (!strcmp(k, "known_hosts"))
		return set_path(&set->known_hosts, v, err);
	if (!strcmp(k, "connect_timeout"))
		return parse_secs(k, v, 1, 3600, &set->connect_timeout, err);
	if (!strcmp(k, "timeout"))
		return parse_secs(k, v, 1, 86400, &set->timeout, err);
	if (!strcmp(k, "keepalive"))
		return parse_secs(k, v, 0, 86400, &set->keepalive, err);
	if (!strcmp(k, "max_connections"))
		return parse_int(k, v, 1, 64, &set->max_connections, err);
	return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: unknown option '%s'", k);
}

/* Fill in what the config left out from the account running pgkeep. */
static int settings_defaults(struct sftp_settings *set, char *err)
{
	struct passwd *pw = getpwuid(geteuid());
	char buf[4096];
	size_t n;

	if (!set->host)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option host is required");
	if (!set->path || !*set->path)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option path is required "
				   "(the repository's directory on the server)");
	n = strlen(set->path);
	while (n > 0 && set->path[n - 1] == '/')
		set->path[--n] = '\0';	/* "/" becomes "" and keys get "/KEY" */
	if (!set->identity_file && !set->use_agent)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: set identity_file (an ed25519 or ECDSA "
				   "key) or use_agent = yes");
	if (!set->user) {
		if (!pw)
			return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option user is required "
					   "(uid %u has no account name)", (unsigned)geteuid());
		if (set_str(&set->user, pw->pw_name, err))
			return PGKEEP_ENOMEM;
	}
	if (!set->known_hosts) {
		if (!pw || !pw->pw_dir)
			return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option known_hosts is required "
					   "(uid %u has no home directory)", (unsigned)geteuid());
		snprintf(buf, sizeof(buf), "%s/.ssh/known_hosts", pw->pw_dir);
		if (set_str(&set->known_hosts, buf, err))
			return PGKEEP_ENOMEM;
	}
	return PGKEEP_OK;
}

static int settings_parse(struct sftp_settings *set, const struct pgkeep_option *opts,
			  size_t nopts, char *err)
{
	int rc;

	memset(set, 0, sizeof(*set));
	set->port = 22;
	set->connect_timeout = 10;
	set->timeout = 60;
	set->keepalive = 15;
	set->max_connections = 8;
	for (size_t i = 0; i < nopts; i++) {
		rc = settings_one(set, opts[i].key, opts[i].value ? opts[i].value : "", err);
		if (rc)
			return rc;
	}
	return settings_defaults(set, err);
}

/* ---- keys and paths ------------------------------------------------------ */

static int key_check(const char *key, bool prefix, char *err)
{
	if (!(prefix ? pgkeep_prefix_valid(key) : pgkeep_key_valid(key)))
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: invalid key '%s'", key);
	return PGKEEP_OK;
}

/* PATH/REL, where REL may be empty (the repository directory itself). */
static char *remote_join(const struct sftp_store *st, const char *rel)
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
static bool is_temp_name(const char *name)
{
	size_t n = strlen(name), il = strlen(TEMP_INFIX);

	if (n <= il + TEMP_RAND_HEX)
		return false;
	if (memcmp(name + n - TEMP_RAND_HEX - il, TEMP_INFIX, il))
		return false;
	for (size_t i = n - TEMP_RAND_HEX; i < n; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	return true;
}

/* ---- small SFTP steps ---------------------------------------------------- */

static size_t parent_len(const char *path)
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
static int root_check(struct sftp_store *st, struct sftp_conn *c, char *err)
{
	const char *root = *st->set.path ? st->set.path : "/";

	if (stat_is_dir(c, root, strlen(root)))
		return PGKEEP_OK;
	return pgkeep_fail(err, PGKEEP_EIO, "sftp: repository directory %s:%s does not exist "
			   "or is not a directory", st->where, root);
}

/* mkdir -p for the first len bytes of path, mode 0700. */
static int mkdir_p(struct sftp_store *st, struct sftp_conn *c, const char *path, size_t len,
		   char *err)
{
	char *dir;
	long s;
	int rc;

	if (len == 0)
		return PGKEEP_OK;
	/* The repository's directory and above: only init makes them. */
	if (len <= strlen(st->set.path) && !st->set.create)
		return root_check(st, c, err);
	if (!libssh2_sftp_mkdir_ex(c->sftp, path, (unsigned)len, 0700))
		return PGKEEP_OK;
	s = sftp_status(c);
	if (s == (long)LIBSSH2_FX_NO_SUCH_FILE || s == (long)LIBSSH2_FX_NO_SUCH_PATH) {
		rc = mkdir_p(st, c, path, parent_len(strndupa(path, len)), err);
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
static int write_all(struct sftp_store *st, struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *fh,
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
	unsigned char r[TEMP_RAND_HEX / 2];
	size_t n = strlen(p->path) + strlen(TEMP_INFIX) + TEMP_RAND_HEX + 1;
	char *t;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return pgkeep_fail(err, PGKEEP_EIO, "sftp: no random bytes for a temp name");
	t = malloc(n);
	if (!t)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	snprintf(t, n, "%s%s", p->path, TEMP_INFIX);
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
	rc = mkdir_p(p->st, c, p->path, parent_len(p->path), err);
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
	rc = write_all(p->st, c, p->fh, p->tmp, p->buf, p->len, err);
	if (!rc)
		rc = tmp_finish(p, c, err);
	if (!rc)
		rc = rename_into_place(p, c, err);
	if (rc && rc != PGKEEP_EEXISTS && !p->rename_unsure)
		tmp_discard(p, c);
	return rc;
}

/*
 * A session could not be had (server restarting, network down): whether to
 * try again, after a wait of CONNECT_WAIT_MS doubled per attempt, jittered.
 * The plugin owns retrying; nobody above it tries again.
 */
static bool connect_again(int rc, int attempt, const char *err)
{
	static __thread unsigned seed;
	long ms = CONNECT_WAIT_MS << attempt;
	struct timespec ts;

	if (rc != PGKEEP_ERETRY || attempt + 1 >= ATTEMPTS)
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

/* Everything is in memory: a dropped connection costs one more upload. */
static int commit_buffered(struct sftp_put *p, char *err)
{
	struct sftp_conn *c;
	bool broken;
	int rc = PGKEEP_ERETRY;

	for (int i = 0; i < ATTEMPTS; i++) {
		rc = sftp_conn_acquire(p->st, &c, err);
		if (rc && connect_again(rc, i, err))
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

static int put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
		     void **out, char *err)
{
	struct sftp_store *st = handle;
	struct sftp_put *p;
	int rc;

	rc = key_check(key, false, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	p->st = st;
	p->flags = flags;
	p->big = size_hint != UINT64_MAX && size_hint > PUT_BUFFER_MAX;
	p->key = strdup(key);
	p->path = remote_join(st, key);
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
		rc = write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
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
			rc = write_all(p->st, p->conn, p->fh, p->tmp, b, n, err);
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
			rc = write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
			if (rc)
				return stream_fail(p, rc);
			p->len = 0;
		}
	}
	return PGKEEP_OK;
}

static int put_write(void *put, const void *buf, size_t len, char *err)
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
		rc = write_all(p->st, p->conn, p->fh, p->tmp, p->buf, p->len, err);
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

static int put_commit(void *put, char *err)
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

static void put_abort(void *put)
{
	struct sftp_put *p = put;

	if (p->conn) {
		tmp_discard(p, p->conn);
		sftp_conn_release(p->st, p->conn);
	}
	put_free(p);
}

/* ---- get, stat, remove ----------------------------------------------------- */

/* Run op on a pooled session; a session that dies is replaced and op rerun. */
#define WITH_RETRY(st, c, err, rc, op)						\
	do {									\
		for (int attempt_ = 0; attempt_ < ATTEMPTS; attempt_++) {	\
			bool broken_;						\
			rc = sftp_conn_acquire((st), &(c), (err));		\
			if (rc && connect_again(rc, attempt_, (err)))		\
				continue;					\
			if (rc)							\
				break;						\
			rc = (op);						\
			broken_ = (c)->broken;					\
			sftp_conn_release((st), (c));				\
			if (!broken_)						\
				break;						\
			sftp_log(PGKEEP_LOG_INFO, "%s; reconnecting", (err));	\
		}								\
	} while (0)

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

	rc = key_check(key, false, err);
	if (rc)
		return rc;
	path = remote_join(st, key);
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

	rc = key_check(key, false, err);
	if (rc)
		return rc;
	path = remote_join(st, key);
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

	rc = key_check(key, false, err);
	if (rc)
		return rc;
	path = remote_join(st, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	WITH_RETRY(st, c, err, rc, remove_once(st, c, path, err));
	free(path);
	return rc;
}

/* ---- list ------------------------------------------------------------------ */

struct dir_entry {
	char *name;
	bool dir;
	bool reg;
	struct pgkeep_stat st;
};

struct dir_list {
	struct dir_entry *e;
	size_t n, cap;
};

static void dir_list_clear(struct dir_list *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	memset(d, 0, sizeof(*d));
}

static int dir_list_add(struct dir_list *d, const char *name, const LIBSSH2_SFTP_ATTRIBUTES *a)
{
	struct dir_entry *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		e = realloc(d->e, cap * sizeof(*e));
		if (!e)
			return -1;
		d->e = e;
		d->cap = cap;
	}
	e = &d->e[d->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -1;
	if (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		e->dir = LIBSSH2_SFTP_S_ISDIR(a->permissions);
		e->reg = LIBSSH2_SFTP_S_ISREG(a->permissions);
	}
	e->st.size = (a->flags & LIBSSH2_SFTP_ATTR_SIZE) ? a->filesize : 0;
	e->st.mtime = (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a->mtime : 0;
	d->n++;
	return 0;
}

/* Read one whole directory, so that a retry never repeats a callback. */
static int read_dir(struct sftp_store *st, struct sftp_conn *c, const char *path,
		    struct dir_list *d, char *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *dh;
	char name[1024];
	int rc = PGKEEP_OK;

	dir_list_clear(d);
	dh = libssh2_sftp_open_ex(c->sftp, path, (unsigned)strlen(path), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!dh) {
		rc = sftp_fail(st, c, err, "opendir", path);
		/* a prefix nobody has written under yet */
		return rc == PGKEEP_ENOTFOUND ? PGKEEP_OK : rc;
	}
	for (;;) {
		int n = libssh2_sftp_readdir_ex(dh, name, sizeof(name), NULL, 0, &a);

		if (n == 0)
			break;
		if (n < 0) {
			rc = sftp_fail(st, c, err, "readdir", path);
			break;
		}
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (dir_list_add(d, name, &a)) {
			rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
			break;
		}
	}
	if (!c->broken)
		libssh2_sftp_close_handle(dh);
	return rc;
}

struct str_stack {
	char **s;
	size_t n, cap;
};

static int stack_push(struct str_stack *k, const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *s;

	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		char **ns = realloc(k->s, cap * sizeof(*ns));

		if (!ns)
			return -1;
		k->s = ns;
		k->cap = cap;
	}
	s = malloc(len);
	if (!s)
		return -1;
	snprintf(s, len, "%s%s%s", a, b, *b ? "/" : "");
	k->s[k->n++] = s;
	return 0;
}

static void stack_free(struct str_stack *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->s[i]);
	free(k->s);
}

/* Crash leftovers: temp files older than an hour go away during list. */
static void sweep_temps(struct sftp_store *st, const char *rel, struct dir_list *d, time_t now)
{
	struct sftp_conn *c = NULL;
	char err[PGKEEP_ERRLEN];

	for (size_t i = 0; i < d->n; i++) {
		struct dir_entry *e = &d->e[i];
		char *rk, *path;

		if (!e->reg || !is_temp_name(e->name) || !e->st.mtime ||
		    e->st.mtime > (int64_t)now - TEMP_MAX_AGE)
			continue;
		if (!c && sftp_conn_acquire(st, &c, err))
			return;
		if (asprintf(&rk, "%s%s", rel, e->name) < 0)
			break;
		path = remote_join(st, rk);
		free(rk);
		if (!path)
			break;
		if (libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path)))
			sftp_log(PGKEEP_LOG_DEBUG, "sftp: cannot remove stale temp %s:%s", st->where, path);
		else
			sftp_log(PGKEEP_LOG_INFO, "sftp: removed stale temp %s:%s", st->where, path);
		free(path);
		if (c->broken)
			break;
	}
	sftp_conn_release(st, c);
}

/* Emit the objects of one directory and queue its subdirectories. */
static int list_emit(const char *rel, const char *prefix, struct dir_list *d,
		     struct str_stack *todo, pgkeep_list_fn cb, void *payload, char *err)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < d->n; i++) {
		struct dir_entry *e = &d->e[i];
		char *key;
		size_t klen;
		int rc;

		if (asprintf(&key, "%s%s%s", rel, e->name, e->dir ? "/" : "") < 0)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
		klen = strlen(key);
		/* a directory is worth entering if it and the prefix agree so far */
		if (e->dir && !strncmp(key, prefix, klen < plen ? klen : plen)) {
			rc = stack_push(todo, rel, e->name) ? PGKEEP_ENOMEM : 0;
		} else if (e->reg && !is_temp_name(e->name) && !strncmp(key, prefix, plen)) {
			rc = cb(payload, key, &e->st);
		} else {
			rc = 0;
		}
		free(key);
		if (rc == PGKEEP_ENOMEM)
			return pgkeep_fail(err, rc, "sftp: out of memory");
		if (rc)
			return rc;
	}
	return PGKEEP_OK;
}

static int sftp_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
		     char *err)
{
	struct sftp_store *st = handle;
	struct str_stack todo = { 0 };
	struct dir_list d = { 0 };
	struct sftp_conn *c;
	const char *slash;
	time_t now = time(NULL);
	int rc;

	rc = key_check(prefix, true, err);
	if (rc)
		return rc;
	/* start in the deepest directory the prefix names */
	slash = strrchr(prefix, '/');
	if (stack_push(&todo, slash ? strndupa(prefix, (size_t)(slash - prefix + 1)) : "", ""))
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	while (todo.n) {
		char *rel = todo.s[--todo.n], *path = NULL;

		/* rel is "" or "a/b/"; the remote directory drops the slash */
		path = remote_join(st, rel);
		if (!path) {
			free(rel);
			rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
			break;
		}
		WITH_RETRY(st, c, err, rc, read_dir(st, c, path, &d, err));
		free(path);
		if (!rc)
			rc = list_emit(rel, prefix, &d, &todo, cb, payload, err);
		if (!rc)
			sweep_temps(st, rel, &d, now);
		free(rel);
		if (rc)
			break;
	}
	dir_list_clear(&d);
	stack_free(&todo);
	return rc;
}

/* ---- open, close, the table ------------------------------------------------ */

static void store_free(struct sftp_store *st)
{
	sftp_pool_drain(st);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	settings_free(&st->set);
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
	rc = settings_parse(&st->set, opts, nopts, err);
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
		rc = mkdir_p(st, c, st->set.path, strlen(st->set.path), err);
	if (!rc)
		rc = root_check(st, c, err);
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
	.put_begin = put_begin,
	.put_write = put_write,
	.put_commit = put_commit,
	.put_abort = put_abort,
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

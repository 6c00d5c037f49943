/*
 * The local-disk storage plugin: one file per object under `path`.  An object
 * becomes visible only complete and durable: written to KEY.tmp.<random> in
 * the same directory, fsynced, then renamed (or linked, for put-if-absent)
 * onto its name, and the directory fsynced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pgkeep/storage.h>

#include "local.h"

#define TEMP_INFIX PGKEEP_TEMP_INFIX
#define READ_BLOCK (1024 * 1024)
/* A temp file this old belongs to a writer that crashed. */
#define TEMP_MAX_AGE 3600

struct local {
	char *root;		/* never ends in '/' unless it is "/" */
};

struct local_put {
	struct local *l;
	char *final;
	char *tmp;
	int fd;
	unsigned flags;
};

static int errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return PGKEEP_ENOSPC;
	case ENOMEM:
		return PGKEEP_ENOMEM;
	default:
		return PGKEEP_EIO;
	}
}

static int fail_errno(char *err, int e, const char *what, const char *path)
{
	if (e == ENOSPC || e == EDQUOT)
		return pgkeep_fail(err, PGKEEP_ENOSPC, "no space left to %s %s: %s", what, path,
				   strerror(e));
	return pgkeep_fail(err, errno_code(e), "cannot %s %s: %s", what, path, strerror(e));
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 2);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

static bool is_temp_name(const char *name)
{
	return strstr(name, TEMP_INFIX) != NULL;
}

/* Keys name files below root and nothing else: no escape, no temp names. */
static int check_key(const char *key, char *err)
{
	if (!pgkeep_key_valid(key))
		return pgkeep_fail(err, PGKEEP_EINVAL, "invalid key '%s'", key);
	return 0;
}

static int check_prefix(const char *prefix, char *err)
{
	if (!pgkeep_prefix_valid(prefix))
		return pgkeep_fail(err, PGKEEP_EINVAL, "invalid prefix '%s'", prefix);
	return 0;
}

static int fsync_dir(const char *dir, char *err)
{
	int fd, ret = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(err, errno, "open directory", dir);
	if (fsync(fd) < 0)
		ret = fail_errno(err, errno, "fsync directory", dir);
	close(fd);
	return ret;
}

/* fsync the directory holding `path`. */
static int fsync_parent(char *path, char *err)
{
	char *slash = strrchr(path, '/');
	int ret;

	if (!slash)
		return fsync_dir(".", err);
	if (slash == path)
		return fsync_dir("/", err);
	*slash = '\0';
	ret = fsync_dir(path, err);
	*slash = '/';
	return ret;
}

/*
 * mkdir -p for the directory part of path (or all of it when `whole`),
 * below its first `keep` bytes, which must exist already: a put never
 * re-creates a repository's root that has vanished or is not mounted.
 * A directory we create is made durable by fsyncing its parent.
 */
static int make_dirs(char *path, size_t keep, bool whole, char *err)
{
	char *end = whole ? path + strlen(path) : strrchr(path, '/');
	char *p;
	int ret;

	if (!end || end == path)
		return 0;
	for (p = path + (keep ? keep + 1 : 1); p <= end; p++) {
		char saved;

		if (p != end && *p != '/')
			continue;
		saved = *p;
		*p = '\0';
		if (mkdir(path, 0700) == 0) {
			ret = fsync_parent(path, err);
			if (ret < 0) {
				*p = saved;
				return ret;
			}
		} else if (errno != EEXIST) {
			ret = fail_errno(err, errno, "create directory", path);
			*p = saved;
			return ret;
		}
		*p = saved;
	}
	return 0;
}

/* ------------------------------------------------------------ open, close */

/* A missing root is the repository missing (unmounted, moved): not an object's absence. */
static int root_check(const struct local *l, char *err)
{
	struct stat sb;

	if (stat(l->root, &sb) < 0) {
		if (errno == ENOENT)
			return pgkeep_fail(err, PGKEEP_EIO,
					   "local: repository directory %s does not exist", l->root);
		return pgkeep_fail(err, PGKEEP_EIO, "local: repository directory %s: %s", l->root,
				   strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return pgkeep_fail(err, PGKEEP_EIO, "local: repository directory %s is not a directory",
				   l->root);
	return 0;
}

static int parse_open_options(const struct pgkeep_option *opts, size_t nopts, const char **path,
			      bool *create, char *err)
{
	size_t i;

	for (i = 0; i < nopts; i++) {
		const char *v = opts[i].value ? opts[i].value : "";

		if (strcmp(opts[i].key, "path") == 0)
			*path = v;
		else if (strcmp(opts[i].key, "create") == 0 && (!strcmp(v, "yes") || !strcmp(v, "no")))
			*create = strcmp(v, "yes") == 0;
		else if (strcmp(opts[i].key, "create") == 0)
			return pgkeep_fail(err, PGKEEP_EINVAL, "local: option 'create' is yes or no");
		else
			return pgkeep_fail(err, PGKEEP_EINVAL, "local: unknown option '%s'",
					   opts[i].key);
	}
	if (!*path || !**path)
		return pgkeep_fail(err, PGKEEP_EINVAL, "local: option 'path' is required");
	return 0;
}

static int local_open(void **handle, const struct pgkeep_option *opts, size_t nopts, char *err)
{
	const char *path = NULL;
	bool create = false;
	struct local *l;
	size_t n;
	int ret;

	ret = parse_open_options(opts, nopts, &path, &create, err);
	if (ret < 0)
		return ret;

	l = calloc(1, sizeof(*l));
	if (!l || !(l->root = strdup(path))) {
		free(l);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	}
	n = strlen(l->root);
	while (n > 1 && l->root[n - 1] == '/')
		l->root[--n] = '\0';

	/* Only `pgkeep init` creates the directory; for every other command a
	 * missing one means the repository is not there. */
	if (create) {
		ret = make_dirs(l->root, 0, true, err);
		if (ret < 0)
			goto out_free;
	}
	ret = root_check(l, err);
	if (ret < 0)
		goto out_free;
	*handle = l;
	return 0;

out_free:
	free(l->root);
	free(l);
	return ret;
}

static void local_close(void *handle)
{
	struct local *l = handle;

	free(l->root);
	free(l);
}

/* -------------------------------------------------------------------- put */

static void put_free(struct local_put *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp)
		unlink(p->tmp);
	free(p->tmp);
	free(p->final);
	free(p);
}

/* With quiet_enoent, a missing directory returns 1 and no message. */
static int temp_create(struct local_put *p, char *err, bool quiet_enoent)
{
	int tries;

	for (tries = 0; tries < 10; tries++) {
		unsigned char rnd[8];
		size_t n = strlen(p->final) + sizeof(TEMP_INFIX) + 2 * sizeof(rnd);
		size_t i;
		char *t;

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return fail_errno(err, errno, "get random bytes for", p->final);
		t = malloc(n);
		if (!t)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
		i = (size_t)snprintf(t, n, "%s" TEMP_INFIX, p->final);
		for (size_t k = 0; k < sizeof(rnd); k++, i += 2)
			snprintf(t + i, n - i, "%02x", rnd[k]);
		p->fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (p->fd >= 0) {
			p->tmp = t;
			return 0;
		}
		if (errno == ENOENT && quiet_enoent) {
			free(t);
			return 1;
		}
		if (errno != EEXIST) {
			int ret = fail_errno(err, errno, "create temporary file", t);

			free(t);
			return ret;
		}
		free(t);
	}
	return pgkeep_fail(err, PGKEEP_EIO, "cannot find a free temporary name for %s", p->final);
}

static int local_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
			   void **put, char *err)
{
	struct local *l = handle;
	struct local_put *p;
	int ret;

	ret = check_key(key, err);
	if (ret < 0)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	p->fd = -1;
	p->flags = flags;
	p->l = l;
	p->final = join(l->root, key);
	if (!p->final) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
		goto out_free;
	}
	/* Early answer only; commit's link(2) is what decides a race. */
	if ((flags & PGKEEP_PUT_IF_ABSENT) && access(p->final, F_OK) == 0) {
		ret = pgkeep_fail(err, PGKEEP_EEXISTS, "%s already exists", p->final);
		goto out_free;
	}
	/* Directories are made only when missing: most puts go to existing ones. */
	ret = temp_create(p, err, true);
	if (ret == 1) {
		ret = root_check(l, err);
		if (ret == 0)
			ret = make_dirs(p->final, strlen(l->root), false, err);
		if (ret < 0)
			goto out_free;
		ret = temp_create(p, err, false);
	}
	if (ret < 0)
		goto out_free;
	*put = p;
	return 0;

out_free:
	put_free(p);
	return ret;
}

static int local_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct local_put *p = put;
	const char *b = buf;

	if (p->fd < 0)
		return pgkeep_fail(err, PGKEEP_EIO, "write to %s after a failure", p->tmp);
	while (len) {
		ssize_t n = write(p->fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail_errno(err, errno, "write", p->tmp);
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int local_put_commit(void *put, char *err)
{
	struct local_put *p = put;
	int ret, fd = p->fd;

	p->fd = -1;
	if (fd < 0) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "commit of %s after a failure", p->final);
		goto out_free;
	}
	if (fsync(fd) < 0) {
		ret = fail_errno(err, errno, "fsync", p->tmp);
		close(fd);
		goto out_free;
	}
	if (close(fd) < 0) {
		ret = fail_errno(err, errno, "close", p->tmp);
		goto out_free;
	}
	if (p->flags & PGKEEP_PUT_IF_ABSENT) {
		/* link(2) fails when the name exists, so of racing writers one wins. */
		if (link(p->tmp, p->final) < 0) {
			if (errno == EEXIST)
				ret = pgkeep_fail(err, PGKEEP_EEXISTS, "%s already exists", p->final);
			else
				ret = fail_errno(err, errno, "link into place", p->final);
			goto out_free;
		}
	} else if (rename(p->tmp, p->final) < 0) {
		ret = fail_errno(err, errno, "rename into place", p->final);
		goto out_free;
	} else {
		free(p->tmp);
		p->tmp = NULL;
	}
	ret = fsync_parent(p->final, err);

out_free:
	put_free(p);	/* unlinks the temp name whenever one is left */
	return ret;
}

static void local_put_abort(void *put)
{
	put_free(put);
}

/* -------------------------------------------------------------------- get */

/* A key that is absent is only "not found" while the repository is there:
 * an unmounted or vanished directory must not look like a missing object. */
static int not_found(struct local *l, const char *path, char *err)
{
	int ret = root_check(l, err);

	if (ret < 0)
		return ret;
	return pgkeep_fail(err, PGKEEP_ENOTFOUND, "%s does not exist", path);
}

/*
 * Open an object for reading.  Whatever else sits at its name must neither
 * block (a FIFO opened for reading waits for a writer) nor be followed: open
 * without blocking or following, refuse what is not a regular file, and only
 * then read normally.
 */
static int open_object(struct local *l, const char *path, struct stat *sb, char *err)
{
	int fd, fl, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return not_found(l, path, err);
		return fail_errno(err, errno, "open", path);
	}
	if (fstat(fd, sb) < 0) {
		ret = fail_errno(err, errno, "stat", path);
		goto out_close;
	}
	/* A directory is a key prefix, as on an object store. */
	if (S_ISDIR(sb->st_mode)) {
		ret = pgkeep_fail(err, PGKEEP_ENOTFOUND, "%s is not an object", path);
		goto out_close;
	}
	if (!S_ISREG(sb->st_mode)) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "local: %s is not a regular file", path);
		goto out_close;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		ret = fail_errno(err, errno, "read", path);
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return ret;
}

static int local_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		     pgkeep_sink_fn sink, void *payload, char *err)
{
	struct local *l = handle;
	struct stat sb;
	char *path, *block = NULL;
	int fd, ret;

	ret = check_key(key, err);
	if (ret < 0)
		return ret;
	path = join(l->root, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	fd = open_object(l, path, &sb, err);
	if (fd < 0) {
		ret = fd;
		goto out_path;
	}
	block = malloc(READ_BLOCK);
	if (!block) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
		goto out_close;
	}
	while (length) {
		size_t want = length < READ_BLOCK ? (size_t)length : READ_BLOCK;
		ssize_t n = pread(fd, block, want, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = fail_errno(err, errno, "read", path);
			goto out_close;
		}
		if (n == 0)
			break;
		ret = sink(payload, block, (size_t)n);
		if (ret)
			goto out_close;
		offset += (uint64_t)n;
		length -= (uint64_t)n;
	}
	ret = 0;

out_close:
	free(block);
	close(fd);
out_path:
	free(path);
	return ret;
}

static int local_stat(void *handle, const char *key, struct pgkeep_stat *st, char *err)
{
	struct local *l = handle;
	struct stat sb;
	char *path;
	int ret = 0;

	ret = check_key(key, err);
	if (ret < 0)
		return ret;
	path = join(l->root, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			ret = not_found(l, path, err);
		else
			ret = fail_errno(err, errno, "stat", path);
	} else if (S_ISDIR(sb.st_mode)) {
		ret = pgkeep_fail(err, PGKEEP_ENOTFOUND, "%s is not an object", path);
	} else if (!S_ISREG(sb.st_mode)) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "local: %s is not a regular file", path);
	} else {
		st->size = (uint64_t)sb.st_size;
		st->mtime = (int64_t)sb.st_mtime;
	}
	free(path);
	return ret;
}

/* ------------------------------------------------------------------- list */

struct walk {
	const char *prefix;
	size_t plen;
	pgkeep_list_fn cb;
	void *payload;
	char *err;
	char *fspath;		/* root + "/" + rel, grown as we descend */
	size_t rootlen;
	time_t now;
};

/* Could anything below directory `rel` (ending in '/') match the prefix? */
static bool dir_may_match(const struct walk *w, const char *rel, size_t rlen)
{
	size_t n = rlen < w->plen ? rlen : w->plen;

	return strncmp(rel, w->prefix, n) == 0;
}

static int walk_dir(struct walk *w, size_t rlen);

static int walk_entry(struct walk *w, size_t rlen, const char *name)
{
	const char *rel = w->fspath + w->rootlen + 1;
	size_t nlen = strlen(name), newlen = rlen + nlen;
	struct pgkeep_stat st;
	struct stat sb;
	char *grown;
	int ret;

	grown = realloc(w->fspath, w->rootlen + 1 + newlen + 2);
	if (!grown)
		return pgkeep_fail(w->err, PGKEEP_ENOMEM, "local: out of memory");
	w->fspath = grown;
	rel = w->fspath + w->rootlen + 1;
	memcpy(w->fspath + w->rootlen + 1 + rlen, name, nlen + 1);

	if (lstat(w->fspath, &sb) < 0) {
		if (errno == ENOENT)	/* removed while we walked */
			return 0;
		return fail_errno(w->err, errno, "stat", w->fspath);
	}
	if (S_ISDIR(sb.st_mode)) {
		memcpy(w->fspath + w->rootlen + 1 + newlen, "/", 2);
		if (!dir_may_match(w, rel, newlen + 1))
			return 0;
		return walk_dir(w, newlen + 1);
	}
	if (!S_ISREG(sb.st_mode))
		return 0;
	if (is_temp_name(name)) {
		/* Crash leftovers; a live writer's temp file is never this old. */
		if (w->now - sb.st_mtime > TEMP_MAX_AGE)
			unlink(w->fspath);
		return 0;
	}
	if (strncmp(rel, w->prefix, w->plen) != 0)
		return 0;
	st.size = (uint64_t)sb.st_size;
	st.mtime = (int64_t)sb.st_mtime;
	ret = w->cb(w->payload, rel, &st);
	return ret;
}

/* w->fspath holds root/rel with rel (length rlen) empty or ending in '/'. */
static int walk_dir(struct walk *w, size_t rlen)
{
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(w->fspath);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return fail_errno(w->err, errno, "open directory", w->fspath);
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				ret = fail_errno(w->err, errno, "read directory", w->fspath);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ret = walk_entry(w, rlen, de->d_name);
		if (ret)
			break;
		/* walk_entry may have moved the buffer and extended the path. */
		w->fspath[w->rootlen + 1 + rlen] = '\0';
	}
	closedir(d);
	return ret;
}

static int local_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
		      char *err)
{
	struct local *l = handle;
	struct walk w;
	const char *slash;
	size_t start;
	int ret;

	ret = check_prefix(prefix, err);
	if (ret < 0)
		return ret;
	w.prefix = prefix;
	w.plen = strlen(prefix);
	w.cb = cb;
	w.payload = payload;
	w.err = err;
	w.rootlen = strlen(l->root);
	w.now = time(NULL);
	/* Start in the deepest directory the prefix names. */
	slash = strrchr(prefix, '/');
	start = slash ? (size_t)(slash - prefix) + 1 : 0;
	w.fspath = malloc(w.rootlen + 2 + start + 1);
	if (!w.fspath)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	memcpy(w.fspath, l->root, w.rootlen);
	w.fspath[w.rootlen] = '/';
	memcpy(w.fspath + w.rootlen + 1, prefix, start);
	w.fspath[w.rootlen + 1 + start] = '\0';
	ret = walk_dir(&w, start);
	free(w.fspath);
	/* An empty listing must not stand for a repository that is not there. */
	if (ret == 0)
		ret = root_check(l, err);
	return ret;
}

static int local_remove(void *handle, const char *key, char *err)
{
	struct local *l = handle;
	char *path;
	int ret = 0;

	ret = check_key(key, err);
	if (ret < 0)
		return ret;
	path = join(l->root, key);
	if (!path)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "local: out of memory");
	if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR)
		ret = fail_errno(err, errno, "delete", path);
	free(path);
	return ret;
}

const struct pgkeep_storage_ops pgk_local_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "local",
	.features = PGKEEP_FEAT_RANGE_GET | PGKEEP_FEAT_IF_ABSENT_ATOMIC | PGKEEP_FEAT_CREATE_ROOT,
	.open = local_open,
	.close = local_close,
	.put_begin = local_put_begin,
	.put_write = local_put_write,
	.put_commit = local_put_commit,
	.put_abort = local_put_abort,
	.get = local_get,
	.stat = local_stat,
	.list = local_list,
	.remove = local_remove,
};

#ifndef PGK_LOCAL_EMBEDDED
const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	return &pgk_local_ops;
}
#endif

/*
 * Safe extraction of a base backup's tar (see untar.h).  A tar is data from
 * the cluster, and a database superuser can plant files there: nothing in it
 * may reach outside the data directory, so every member is created relative
 * to a descriptor of that directory, one component at a time, never through
 * a symbolic link, and its mode is PostgreSQL's, not the tar's.
 *
 * Modes: directories 0700 and files 0600, whatever the tar says.  PostgreSQL
 * also allows group access (0750/0640, initdb -g), but the data directory's
 * own mode is not in the tar, so honouring the members' group bits would
 * only open files inside a 0700 root; an operator who wants group access
 * back runs chmod -R g+rX on the restored directory, as after initdb.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/untar.h"

/* Large files start their writeback at once: see start_writeback. */
#define EARLY_WRITEBACK_MIN (1024 * 1024)

static int untar_fail(struct untar *u, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int untar_fail(struct untar *u, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->err, sizeof(u->err), fmt, ap);
	va_end(ap);
	return code;
}

static bool bad_component(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

const char *untar_strip(const char *name)
{
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	return name;
}

bool untar_name_safe(const char *name)
{
	size_t len, n;
	const char *p, *end;

	name = untar_strip(name);
	len = strlen(name);

	if (len > 0 && name[len - 1] == '/')
		len--;
	if (len == 0 || name[0] == '/')
		return false;
	end = name + len;
	for (p = name;; p += n + 1) {
		n = strcspn(p, "/");
		if (p + n > end)
			n = (size_t)(end - p);
		if (bad_component(p, n))
			return false;
		if (p + n >= end)
			return true;
	}
}

/* How many directories below the root a link named so sits; -1: not a link PostgreSQL makes. */
static int link_depth(const char *name)
{
	const char *oid;

	name = untar_strip(name);
	oid = name + strlen("pg_tblspc/");

	if (strcmp(name, "pg_wal") == 0)
		return 0;
	if (strncmp(name, "pg_tblspc/", strlen("pg_tblspc/")) == 0 && *oid &&
	    strspn(oid, "0123456789") == strlen(oid))
		return 1;
	return -1;
}

/*
 * Lexically inside: the leading "../" climb no higher than the root, the rest
 * only descends.  Sound because every directory on the way is a real one (we
 * made it) or a link that passed this same check.
 */
bool untar_link_allowed(const char *name, const char *target)
{
	int depth = link_depth(name);
	const char *p = target;

	if (depth < 0 || !*target || *target == '/' || untar_strip(target) != target)
		return false;
	while (strncmp(p, "../", 3) == 0) {
		if (depth-- == 0)
			return false;
		p += 3;
	}
	return untar_name_safe(p);
}

int untar_open(struct untar *u, const char *root)
{
	memset(u, 0, sizeof(*u));
	u->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (u->rootfd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open directory %s: %s", root, strerror(errno));
	u->root = xstrdup(root);
	return 0;
}

void untar_close(struct untar *u)
{
	if (u->rootfd >= 0)
		close(u->rootfd);
	u->rootfd = -1;
	free(u->root);
	u->root = NULL;
}

static const char *in_the_way(int err)
{
	return err == ELOOP || err == ENOTDIR ? "a symbolic link or a file is in the way"
					      : strerror(err);
}

/* Open the directory fd/comp, creating it when missing; -1 with errno. */
static int open_dir_at(int fd, const char *comp)
{
	bool made = mkdirat(fd, comp, UNTAR_DIR_MODE) == 0;
	int dfd;

	if (!made && errno != EEXIST)
		return -1;
	dfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* The umask must not take the owner's own bits away. */
	if (dfd >= 0 && made)
		(void)fchmod(dfd, UNTAR_DIR_MODE);
	return dfd;
}

/*
 * The directory holding path's last component, created as needed; *leaf
 * points into path.  The caller closes *out unless it is the root.
 */
static int open_parent(struct untar *u, char *path, int *out, const char **leaf)
{
	int fd = u->rootfd, next;
	char *p = path, *slash;

	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		next = open_dir_at(fd, p);
		if (next < 0) {
			int err = errno;

			untar_fail(u, PGKEEP_EIO, "cannot extract into %s: %s", path, in_the_way(err));
			*slash = '/';
			if (fd != u->rootfd)
				close(fd);
			return PGKEEP_EIO;
		}
		*slash = '/';
		if (fd != u->rootfd)
			close(fd);
		fd = next;
		p = slash + 1;
	}
	*out = fd;
	*leaf = p;
	return 0;
}

static int make_dir(struct untar *u, int pfd, const char *leaf, const char *name)
{
	int fd = open_dir_at(pfd, leaf), rc = 0;

	if (fd < 0)
		return untar_fail(u, PGKEEP_EIO, "cannot create directory %s: %s", name,
				  in_the_way(errno));
	if (fchmod(fd, UNTAR_DIR_MODE) < 0)
		rc = untar_fail(u, PGKEEP_EIO, "cannot chmod %s: %s", name, strerror(errno));
	close(fd);
	return rc;
}

/* A new file: never written through whatever had the name before. */
static int create_file(struct untar *u, int pfd, const char *leaf, const char *name, int *out)
{
	struct stat st;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		*out = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			      UNTAR_FILE_MODE);
		if (*out >= 0)
			return 0;
		if (errno != EEXIST)
			break;
		/* A member given twice: the later one wins, as with tar. */
		if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			break;
		}
		if (unlinkat(pfd, leaf, 0) < 0 && errno != ENOENT)
			break;
	}
	return untar_fail(u, PGKEEP_EIO, "cannot create %s: %s", name, strerror(errno));
}

static int pwrite_all(int fd, const char *p, size_t len, off_t off)
{
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int copy_data(struct untar *u, struct archive *in, int fd, const char *name,
		     la_int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	for (;;) {
		r = archive_read_data_block(in, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return untar_fail(u, PGKEEP_EIO, "cannot read %s from the backup: %s", name,
					  archive_error_string(in));
		if (pwrite_all(fd, buf, len, (off_t)off) < 0)
			return untar_fail(u, PGKEEP_EIO, "cannot write %s: %s", name,
					  strerror(errno));
	}
	/* A sparse member's hole at the end is length, not data. */
	if (size > 0 && ftruncate(fd, (off_t)size) < 0)
		return untar_fail(u, PGKEEP_EIO, "cannot extend %s: %s", name, strerror(errno));
	return 0;
}

/*
 * The restore ends with a syncfs that waits for every byte to reach the
 * disk.  Starting the writeback of each large file as soon as it is
 * complete lets the disk work while the next files are extracted, so that
 * wait is short.  Only a hint: the syncfs is what makes the data durable.
 */
static void start_writeback(int fd, la_int64_t size)
{
	if (size >= EARLY_WRITEBACK_MIN)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int make_file(struct untar *u, struct archive *in, struct archive_entry *e, int pfd,
		     const char *leaf, const char *name)
{
	la_int64_t size = archive_entry_size(e);
	struct timespec ts[2];
	int fd, rc;

	rc = create_file(u, pfd, leaf, name, &fd);
	if (rc < 0)
		return rc;
	/* Exactly 0600, whatever the umask. */
	if (fchmod(fd, UNTAR_FILE_MODE) < 0)
		rc = untar_fail(u, PGKEEP_EIO, "cannot chmod %s: %s", name, strerror(errno));
	if (rc == 0)
		rc = copy_data(u, in, fd, name, size);
	if (rc == 0) {
		ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
		ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
		(void)futimens(fd, ts);
		start_writeback(fd, size);
	}
	close(fd);
	return rc;
}

static int make_link(struct untar *u, struct archive_entry *e, int pfd, const char *leaf,
		     const char *name)
{
	const char *target = archive_entry_symlink(e);

	if (!target)
		target = "";
	if (link_depth(name) < 0)
		return untar_fail(u, PGKEEP_ECORRUPT,
				  "the backup holds a symbolic link %s -> %s: only pg_wal and "
				  "pg_tblspc/OID may be links", name, target);
	if (!untar_link_allowed(name, target))
		return untar_fail(u, PGKEEP_ECORRUPT,
				  "the backup's symbolic link %s -> %s leads outside the data "
				  "directory; a tablespace's link is written by restore itself, "
				  "from the backup's manifest, never taken from a tar", name, target);
	if (symlinkat(target, pfd, leaf) < 0)
		return untar_fail(u, PGKEEP_EIO, "cannot create symbolic link %s: %s", name,
				  strerror(errno));
	return 0;
}

static int make_member(struct untar *u, struct archive *in, struct archive_entry *e,
		       int pfd, const char *leaf, const char *name)
{
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return make_dir(u, pfd, leaf, name);
	case AE_IFREG:
		return make_file(u, in, e, pfd, leaf, name);
	case AE_IFLNK:
		return make_link(u, e, pfd, leaf, name);
	default:
		return untar_fail(u, PGKEEP_ECORRUPT, "the backup holds %s, which is not a file, "
				  "a directory or a symbolic link", name);
	}
}

int untar_entry(struct untar *u, struct archive *in, struct archive_entry *e, const char *as)
{
	const char *name = archive_entry_pathname(e), *leaf;
	size_t len;
	char *path;
	int pfd, rc;

	if (!name || !untar_name_safe(name) || (as && !untar_name_safe(as)))
		return untar_fail(u, PGKEEP_ECORRUPT, "the backup holds an unsafe path '%s'",
				  name ? name : "");
	if (archive_entry_hardlink(e))
		return untar_fail(u, PGKEEP_ECORRUPT, "the backup holds a hard link %s: "
				  "PostgreSQL's base backups have none", name);
	path = xstrdup(untar_strip(as ? as : name));
	len = strlen(path);
	if (path[len - 1] == '/')
		path[len - 1] = '\0';
	rc = open_parent(u, path, &pfd, &leaf);
	if (rc == 0) {
		rc = make_member(u, in, e, pfd, leaf, path);
		if (pfd != u->rootfd)
			close(pfd);
	}
	if (rc == 0)
		u->entries++;
	free(path);
	return rc;
}

int untar_check_root(struct untar *u)
{
	struct stat st, now;

	if (fstat(u->rootfd, &st) < 0)
		return pgk_error(PGKEEP_EIO, "cannot stat %s: %s", u->root, strerror(errno));
	if (stat(u->root, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino)
		return pgk_error(PGKEEP_EIO, "%s is no longer the directory restored into",
				 u->root);
	if (st.st_uid != geteuid() || (st.st_mode & 07777) != UNTAR_DIR_MODE)
		return pgk_error(PGKEEP_EIO, "data directory %s has mode %04o and owner uid %u "
				 "after extraction, not %04o and uid %u", u->root,
				 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
				 UNTAR_DIR_MODE, (unsigned)geteuid());
	return 0;
}

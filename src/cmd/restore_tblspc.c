/*
 * Tablespaces on restore (see restore_tblspc.h).  The tars are extracted by
 * pg/untar.c rooted at each target's descriptor, like the data directory;
 * the pg_tblspc links, the one place a restored cluster points outside its
 * directory, are written here from the manifest and the map, never taken
 * from a tar (untar refuses absolute links).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/restore_tblspc.h"
#include "common/error.h"
#include "common/mem.h"

#define MAP_USAGE "--tablespace-map takes OLDDIR=NEWDIR"
/* A tablespace_map longer than this is no server's. */
#define TBLSPC_MAP_MAX (1024 * 1024)

/* A path of the map without its trailing '/'s, checked. */
static int map_dir(const char *arg, const char *what, char *dir)
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	if (!*dir)
		return pgk_error(PGKEEP_EINVAL, MAP_USAGE ", not '%s': %s is empty", arg, what);
	if (!manifest_tablespace_location_ok(dir))
		return pgk_error(PGKEEP_EINVAL, MAP_USAGE ", not '%s': %s '%s' is not an absolute "
				 "path without '.' or '..' components", arg, what, dir);
	return 0;
}

/* Split at the one unescaped '=', unescaping "\=" (only that, as pg_basebackup). */
static int map_split(const char *arg, char *old_dir, char *new_dir)
{
	char *out = old_dir;
	int eq = 0;

	for (; *arg; arg++) {
		if (*arg == '\\' && arg[1] == '=') {
			*out++ = *++arg;
		} else if (*arg == '=') {
			if (eq++)
				return -1;
			*out = '\0';
			out = new_dir;
		} else {
			*out++ = *arg;
		}
	}
	*out = '\0';
	return eq == 1 ? 0 : -1;
}

int tblspc_map_parse(struct tblspc_maps *maps, const char *arg)
{
	char *old_dir = xzalloc(strlen(arg) + 1), *new_dir = xzalloc(strlen(arg) + 1);
	size_t i;
	int rc = 0;

	if (map_split(arg, old_dir, new_dir) < 0)
		rc = pgk_error(PGKEEP_EINVAL, MAP_USAGE " with one '=' (a '=' in a path written "
			       "'\\='), not '%s'", arg);
	if (rc == 0)
		rc = map_dir(arg, "OLDDIR", old_dir);
	if (rc == 0)
		rc = map_dir(arg, "NEWDIR", new_dir);
	for (i = 0; rc == 0 && i < maps->n; i++) {
		if (strcmp(maps->v[i].old_dir, old_dir) == 0)
			rc = pgk_error(PGKEEP_EINVAL, "--tablespace-map: %s is mapped twice", old_dir);
		else if (strcmp(maps->v[i].new_dir, new_dir) == 0)
			rc = pgk_error(PGKEEP_EINVAL, "--tablespace-map: two tablespaces mapped to %s",
				       new_dir);
	}
	if (rc < 0) {
		free(old_dir);
		free(new_dir);
		return rc;
	}
	maps->v = xrealloc(maps->v, (maps->n + 1) * sizeof(*maps->v));
	maps->v[maps->n].old_dir = old_dir;
	maps->v[maps->n].new_dir = new_dir;
	maps->n++;
	return 0;
}

void tblspc_maps_free(struct tblspc_maps *maps)
{
	size_t i;

	for (i = 0; i < maps->n; i++) {
		free(maps->v[i].old_dir);
		free(maps->v[i].new_dir);
	}
	free(maps->v);
	maps->v = NULL;
	maps->n = 0;
}

char *tblspc_map_escape(const char *dir)
{
	char *out = xzalloc(2 * strlen(dir) + 1), *p = out;

	for (; *dir; dir++) {
		if (*dir == '=')
			*p++ = '\\';
		*p++ = *dir;
	}
	return out;
}

/* ---------------------------------------------------------------- the plan */

/* 1: missing; 0: an empty directory; a pgk_error otherwise. */
static int target_state(const char *dir)
{
	struct dirent *d;
	struct stat st;
	bool empty = true;
	DIR *dh;

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			return 1;
		return pgk_error(PGKEEP_EIO, "cannot use tablespace directory %s: %s", dir,
				 strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return pgk_error(PGKEEP_EINVAL, "tablespace directory %s is not a directory", dir);
	dh = opendir(dir);
	if (!dh)
		return pgk_error(PGKEEP_EIO, "cannot open tablespace directory %s: %s", dir,
				 strerror(errno));
	while ((d = readdir(dh)))
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			empty = false;
	closedir(dh);
	if (!empty)
		return pgk_error(PGKEEP_EINVAL, "tablespace directory %s is not empty: restore a "
				 "tablespace into a new or empty directory (--tablespace-map "
				 "OLDDIR=NEWDIR)", dir);
	return 0;
}

static const char *mapped(const struct tblspc_maps *maps, const char *location, bool *used)
{
	size_t i;

	for (i = 0; i < maps->n; i++)
		if (strcmp(maps->v[i].old_dir, location) == 0) {
			used[i] = true;
			return maps->v[i].new_dir;
		}
	return location;
}

static int check_maps_used(const struct manifest *m, const struct tblspc_maps *maps,
			   const bool *used)
{
	struct pgk_buf have = PGK_BUF_INIT;
	size_t i, j;
	int rc;

	for (i = 0; i < maps->n && used[i]; i++)
		;
	if (i == maps->n)
		return 0;
	for (j = 0; j < m->nstreams; j++)
		if (m->streams[j].tblspc_oid)
			buf_printf(&have, "%s%s", have.len ? ", " : "", m->streams[j].tblspc_location);
	rc = pgk_error(PGKEEP_EINVAL, "--tablespace-map: backup %s has no tablespace at %s "
		       "(its tablespaces: %s)", m->id, maps->v[i].old_dir,
		       have.len ? (char *)have.data : "none");
	buf_free(&have);
	return rc;
}

int tblspc_plan(const struct manifest *m, const struct tblspc_maps *maps,
		struct tblspc_plan *p)
{
	bool *used = xzalloc((maps->n ? maps->n : 1) * sizeof(*used));
	struct tblspc_target *t;
	size_t i;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < m->nstreams; i++) {
		if (!m->streams[i].tblspc_oid)
			continue;
		p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
		t = &p->v[p->n++];
		memset(t, 0, sizeof(*t));
		t->u.rootfd = -1;
		t->s = &m->streams[i];
		t->dir = xstrdup(mapped(maps, t->s->tblspc_location, used));
	}
	rc = check_maps_used(m, maps, used);
	for (i = 0; i < p->n && rc == 0; i++) {
		rc = target_state(p->v[i].dir);
		if (rc > 0)
			rc = 0;
	}
	free(used);
	return rc;
}

/* The missing parents too, as pg_basebackup makes them. */
static int make_dirs(const char *dir)
{
	char *copy = xstrdup(dir), *p, c;
	int rc = 0;

	for (p = copy + 1;; p++) {
		if (*p && *p != '/')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			rc = pgk_error(PGKEEP_EIO, "cannot create directory %s: %s", copy,
				       strerror(errno));
		*p = c;
		if (rc < 0 || !c)
			break;
	}
	free(copy);
	return rc;
}

static int same_dir(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static bool inside(const char *dir, const char *root)
{
	size_t n = strlen(root);

	return strncmp(dir, root, n) == 0 && dir[n] == '/';
}

static int refuse_inside(const struct tblspc_target *t, const struct untar *data)
{
	return pgk_error(PGKEEP_EINVAL, "tablespace %u would be restored into %s, inside the "
			 "data directory %s", t->s->tblspc_oid, t->dir, data->root);
}

int tblspc_prepare(struct tblspc_plan *p, const struct untar *data)
{
	struct tblspc_target *t;
	char *real;
	size_t i, j;
	int rc;

	for (i = 0; i < p->n; i++) {
		t = &p->v[i];
		/* Before anything is made; again once the links are resolved. */
		if (inside(t->dir, data->root))
			return refuse_inside(t, data);
		rc = target_state(t->dir);
		if (rc > 0)
			rc = make_dirs(t->dir);
		if (rc < 0)
			return rc;
		/* The link restore writes is to where the directory really is. */
		real = realpath(t->dir, NULL);
		if (!real)
			return pgk_error(PGKEEP_EIO, "cannot resolve %s: %s", t->dir, strerror(errno));
		free(t->dir);
		t->dir = real;
		rc = untar_open(&t->u, t->dir);
		if (rc < 0)
			return rc;
		if (fchmod(t->u.rootfd, UNTAR_DIR_MODE) < 0)
			return pgk_error(PGKEEP_EIO, "cannot chmod %s: %s", t->dir, strerror(errno));
		if (inside(t->dir, data->root))
			return refuse_inside(t, data);
		if (same_dir(t->u.rootfd, data->rootfd))
			return pgk_error(PGKEEP_EINVAL, "tablespace %u would be restored into the "
					 "data directory %s itself", t->s->tblspc_oid, data->root);
		for (j = 0; j < i; j++)
			if (same_dir(t->u.rootfd, p->v[j].u.rootfd))
				return pgk_error(PGKEEP_EINVAL, "tablespaces %u and %u would both be "
						 "restored into %s", p->v[j].s->tblspc_oid,
						 t->s->tblspc_oid, t->dir);
	}
	return 0;
}

/* pg_tblspc, made when the tar had none (it always has, empty). */
static int open_tblspc_dir(const struct untar *data)
{
	int fd;

	if (mkdirat(data->rootfd, "pg_tblspc", UNTAR_DIR_MODE) < 0 && errno != EEXIST)
		return pgk_error(PGKEEP_EIO, "cannot create %s/pg_tblspc: %s", data->root,
				 strerror(errno));
	fd = openat(data->rootfd, "pg_tblspc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s/pg_tblspc: %s", data->root,
				 errno == ELOOP || errno == ENOTDIR ? "not a directory"
								    : strerror(errno));
	return fd;
}

static bool plan_has(const struct tblspc_plan *p, unsigned long oid)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->v[i].s->tblspc_oid == oid)
			return true;
	return false;
}

/*
 * Every tablespace the tar's tablespace_map names ("OID PATH" lines) must be
 * a stream of the backup: PostgreSQL would otherwise link to PATH, outside
 * the restored cluster, at startup.
 */
static int check_map_file(const struct tblspc_plan *p, const struct untar *data)
{
	char buf[TBLSPC_MAP_MAX + 1], *line, *end;
	unsigned long oid;
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	fd = openat(data->rootfd, "tablespace_map", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TBLSPC_MAP_MAX) {
		if (fd >= 0)
			close(fd);
		return pgk_error(PGKEEP_ECORRUPT, "the backup's tablespace_map is not a file of "
				 "at most %d bytes", TBLSPC_MAP_MAX);
	}
	n = pread(fd, buf, TBLSPC_MAP_MAX, 0);
	close(fd);
	if (n < 0)
		return pgk_error(PGKEEP_EIO, "cannot read %s/tablespace_map: %s", data->root,
				 strerror(errno));
	buf[n] = '\0';
	for (line = buf; rc == 0 && *line; line = end + (*end != '\0')) {
		end = line + strcspn(line, "\n");
		errno = 0;
		oid = strtoul(line, NULL, 10);
		if (line[0] < '1' || line[0] > '9' || errno || !plan_has(p, oid))
			rc = pgk_error(PGKEEP_ECORRUPT, "the backup's tablespace_map names a "
				       "tablespace the backup does not hold: '%.*s'",
				       (int)(end - line > 200 ? 200 : end - line), line);
	}
	return rc;
}

int tblspc_link(const struct tblspc_plan *p, const struct untar *data)
{
	char name[16];
	size_t i;
	int fd, rc;

	rc = check_map_file(p, data);
	/* With none, the server's tablespace_map is empty: left as it came. */
	if (rc < 0 || p->n == 0)
		return rc;
	if (unlinkat(data->rootfd, "tablespace_map", 0) < 0 && errno != ENOENT)
		return pgk_error(PGKEEP_EIO, "cannot remove %s/tablespace_map: %s", data->root,
				 strerror(errno));
	fd = open_tblspc_dir(data);
	if (fd < 0)
		return fd;
	for (i = 0; i < p->n && rc == 0; i++) {
		snprintf(name, sizeof(name), "%u", p->v[i].s->tblspc_oid);
		/* The tar's own pg_tblspc/OID, if any, is not replaced silently. */
		if (symlinkat(p->v[i].dir, fd, name) < 0)
			rc = pgk_error(errno == EEXIST ? PGKEEP_ECORRUPT : PGKEEP_EIO,
				       "cannot create %s/pg_tblspc/%s -> %s: %s", data->root, name,
				       p->v[i].dir, errno == EEXIST ? "the backup's tar already "
				       "holds that name" : strerror(errno));
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot sync %s/pg_tblspc: %s", data->root,
			       strerror(errno));
	close(fd);
	return rc;
}

int tblspc_sync(const struct tblspc_plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (syncfs(p->v[i].u.rootfd) < 0)
			return pgk_error(PGKEEP_EIO, "cannot sync %s: %s", p->v[i].dir,
					 strerror(errno));
	return 0;
}

char *tblspc_dirs_text(const struct tblspc_plan *p)
{
	struct pgk_buf b = PGK_BUF_INIT;
	size_t i;

	for (i = 0; i < p->n; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", p->v[i].dir);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

void tblspc_plan_free(struct tblspc_plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		untar_close(&p->v[i].u);
		free(p->v[i].dir);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

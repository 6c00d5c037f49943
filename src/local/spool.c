/*
 * The look-ahead spool: a private directory of small records and prefetched
 * WAL files, all named "WALNAME.SHA256".  Everything goes through a
 * directory descriptor that was checked to be ours, so a name swapped in
 * by someone else cannot redirect a write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"
#include "local/spool.h"

#define TMP_PREFIX "tmp."
/* A temporary file this old belongs to a call that was killed. */
#define TMP_STALE_SECONDS 600

void spool_hash(const void *data, size_t len, char out[SPOOL_HASH_HEX + 1])
{
	uint8_t md[32];
	unsigned int mdlen = sizeof(md);

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}

void spool_hash_hex(const uint8_t md[32], char out[SPOOL_HASH_HEX + 1])
{
	hex_encode(md, 32, out);
}

/* Ours alone: a record in a directory others can write proves nothing. */
static int check_private_dir(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return pgk_error(PGKEEP_EIO, "cannot stat spool directory %s: %s", path,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return pgk_error(PGKEEP_EINVAL, "spool %s is not a directory", path);
	if (st.st_uid != geteuid())
		return pgk_error(PGKEEP_EAUTH, "spool directory %s is owned by uid %u, not by us (%u)",
				 path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 022)
		return pgk_error(PGKEEP_EAUTH, "spool directory %s is writable by group or others",
				 path);
	return 0;
}

static int open_dir_at(int at, const char *name, const char *path)
{
	int fd, ret;

	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return pgk_error(PGKEEP_EIO, "cannot create spool directory %s: %s", path,
				 strerror(errno));
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open spool directory %s: %s", path,
				 strerror(errno));
	ret = check_private_dir(fd, path);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int open_base(const char *base, char **used)
{
	char *fallback;
	int fd;

	if (base) {
		*used = xstrdup(base);
		return open_dir_at(AT_FDCWD, base, base);
	}
	fd = open_dir_at(AT_FDCWD, SPOOL_DEFAULT_DIR, SPOOL_DEFAULT_DIR);
	if (fd >= 0) {
		*used = xstrdup(SPOOL_DEFAULT_DIR);
		return fd;
	}
	pgk_log_debug("%s; trying /var/tmp", pgk_errmsg());
	fallback = xasprintf("/var/tmp/pgkeep-%u", (unsigned)geteuid());
	fd = open_dir_at(AT_FDCWD, fallback, fallback);
	if (fd < 0) {
		free(fallback);
		return fd;
	}
	*used = fallback;
	return fd;
}

/* Empty the KIND-* directories of other scopes of entries older than max_age. */
static void sweep_siblings(int bfd, const char *kind, const char *mine, time_t max_age)
{
	size_t klen = strlen(kind);
	struct dirent *de, *fe;
	time_t now = time(NULL);
	struct stat st;
	DIR *d, *sub;
	int fd, sfd;

	fd = openat(bfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, kind, klen) != 0 || de->d_name[klen] != '-' ||
		    strcmp(de->d_name, mine) == 0)
			continue;
		sfd = openat(bfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			continue;
		if (check_private_dir(sfd, de->d_name) < 0 || !(sub = fdopendir(sfd))) {
			close(sfd);
			continue;
		}
		while ((fe = readdir(sub)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			if (fstatat(sfd, fe->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_mtime + max_age < now)
				unlinkat(sfd, fe->d_name, 0);
		}
		closedir(sub);
		/* Fails while anything younger is left, which is what we want. */
		unlinkat(bfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

int spool_open(struct spool *sp, const char *base, const char *kind, const char *scope)
{
	char hash[SPOOL_HASH_HEX + 1], *used = NULL, *sub;
	int bfd, ret;

	sp->dir = NULL;
	sp->dfd = -1;
	bfd = open_base(base, &used);
	if (bfd < 0) {
		free(used);
		return bfd;
	}
	spool_hash(scope, strlen(scope), hash);
	sub = xasprintf("%s-%.16s", kind, hash);
	sp->dir = xasprintf("%s/%s", used, sub);
	ret = open_dir_at(bfd, sub, sp->dir);
	if (ret >= 0 && strcmp(kind, "fetch") == 0)
		sweep_siblings(bfd, kind, sub, SPOOL_FETCH_MAX_AGE);
	close(bfd);
	free(sub);
	free(used);
	if (ret < 0) {
		free(sp->dir);
		sp->dir = NULL;
		return ret;
	}
	sp->dfd = ret;
	return 0;
}

void spool_close(struct spool *sp)
{
	if (sp->dfd >= 0)
		close(sp->dfd);
	free(sp->dir);
	sp->dir = NULL;
	sp->dfd = -1;
}

static char *entry_name(const char *name, const char *hash)
{
	return xasprintf("%s.%s", name, hash);
}

bool spool_has_record(const struct spool *sp, const char *name, const char *hash)
{
	char *e = entry_name(name, hash);
	struct stat st;
	bool found;

	found = fstatat(sp->dfd, e, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
	free(e);
	return found;
}

int spool_add_record(const struct spool *sp, const char *name, const char *hash,
		     const char *stamp)
{
	char *e = entry_name(name, hash);
	size_t len = stamp ? strlen(stamp) : 0;
	int fd, ret = 0;

	/* No fsync: a record torn by a crash holds a stamp that matches nothing. */
	fd = openat(sp->dfd, e, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = pgk_error(PGKEEP_EIO, "cannot write spool record %s/%s: %s", sp->dir, e,
				strerror(errno));
	} else {
		if (len && write(fd, stamp, len) != (ssize_t)len)
			pgk_log_debug("spool record %s/%s written without its stamp", sp->dir, e);
		close(fd);
	}
	free(e);
	return ret;
}

void spool_record_stamp(const struct spool *sp, const char *name, const char *hash,
			char *out, size_t len)
{
	char *e = entry_name(name, hash);
	ssize_t n = -1;
	int fd;

	fd = openat(sp->dfd, e, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, out, len - 1);
		close(fd);
	}
	out[n > 0 ? n : 0] = '\0';
	free(e);
}

void spool_stamp(const struct stat *st, char out[SPOOL_STAMP_MAX])
{
	snprintf(out, SPOOL_STAMP_MAX, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld",
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		 (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

void spool_remove(const struct spool *sp, const char *name, const char *hash)
{
	char *e = entry_name(name, hash);

	unlinkat(sp->dfd, e, 0);
	free(e);
}

/* The WAL name of entry e ("NAME.HASH"), or 0 when e is not one. */
static size_t entry_walname_len(const char *e)
{
	size_t len = strlen(e);

	if (len <= SPOOL_HASH_HEX + 1 || e[len - SPOOL_HASH_HEX - 1] != '.')
		return 0;
	if (strspn(e + len - SPOOL_HASH_HEX, "0123456789abcdef") != SPOOL_HASH_HEX)
		return 0;
	return len - SPOOL_HASH_HEX - 1;
}

/* Call fn for every entry; the listing is read before fn runs. */
static void each_entry(const struct spool *sp, void (*fn)(const struct spool *, const char *, void *),
		       void *payload)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	DIR *d;
	int fd;

	fd = openat(sp->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	for (i = 0; i < n; i++) {
		fn(sp, names[i], payload);
		free(names[i]);
	}
	free(names);
}

struct find {
	const char *name;
	char *hash;
	bool found;
};

static void find_one(const struct spool *sp, const char *e, void *payload)
{
	struct find *f = payload;
	size_t len = entry_walname_len(e);

	if (f->found || !len || len != strlen(f->name) || strncmp(e, f->name, len) != 0)
		return;
	f->found = true;
	if (f->hash)
		snprintf(f->hash, SPOOL_HASH_HEX + 1, "%s", e + len + 1);
}

bool spool_has_name(const struct spool *sp, const char *name)
{
	struct find f = { name, NULL, false };

	each_entry(sp, find_one, &f);
	return f.found;
}

bool spool_find_file(const struct spool *sp, const char *name, char hash[SPOOL_HASH_HEX + 1])
{
	struct find f = { name, hash, false };

	each_entry(sp, find_one, &f);
	return f.found;
}

static void count_one(const struct spool *sp, const char *e, void *payload)
{
	(void)sp;
	if (entry_walname_len(e))
		(*(size_t *)payload)++;
}

size_t spool_count_records(const struct spool *sp)
{
	size_t n = 0;

	each_entry(sp, count_one, &n);
	return n;
}

struct prune {
	const char *current;
	char **keep;
	size_t nkeep;
	time_t now;
};

static void prune_one(const struct spool *sp, const char *e, void *payload)
{
	struct prune *p = payload;
	size_t len = entry_walname_len(e);
	struct stat st;
	char *walname;
	bool older;

	if (strncmp(e, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
		if (fstatat(sp->dfd, e, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime + TMP_STALE_SECONDS < p->now)
			unlinkat(sp->dfd, e, 0);
		return;
	}
	/* Not ours to judge: leave it (and it counts for nothing). */
	if (!len)
		return;
	walname = xstrndup(e, len);
	older = strcmp(walname, p->current) < 0;
	free(walname);
	if (older) {
		unlinkat(sp->dfd, e, 0);
		return;
	}
	p->keep = xrealloc(p->keep, (p->nkeep + 1) * sizeof(*p->keep));
	p->keep[p->nkeep++] = xstrdup(e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void spool_prune(const struct spool *sp, const char *current, size_t max)
{
	struct prune p = { current, NULL, 0, time(NULL) };
	size_t i;

	each_entry(sp, prune_one, &p);
	if (p.nkeep)	/* an empty spool has no array, and qsort wants one */
		qsort(p.keep, p.nkeep, sizeof(*p.keep), cmp_str);
	/* Over the bound: drop what lies furthest ahead, needed last. */
	for (i = 0; i < p.nkeep; i++) {
		if (p.nkeep - i > max) {
			unlinkat(sp->dfd, p.keep[p.nkeep - 1 - i], 0);
			pgk_log_debug("spool %s over %zu entries: dropped %s", sp->dir, max,
				      p.keep[p.nkeep - 1 - i]);
		}
	}
	for (i = 0; i < p.nkeep; i++)
		free(p.keep[i]);
	free(p.keep);
}

int spool_put_file(const struct spool *sp, const char *name, const void *data, size_t len)
{
	char hash[SPOOL_HASH_HEX + 1], *tmp, *e;
	int fd, ret;

	tmp = xasprintf("%s/" TMP_PREFIX "XXXXXX", sp->dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = pgk_error(PGKEEP_EIO, "cannot create a file in spool %s: %s", sp->dir,
				strerror(errno));
		free(tmp);
		return ret;
	}
	/* No fsync: the hash in the name catches a file torn by a crash. */
	ret = write_full(fd, data, len, tmp);
	if (close(fd) < 0 && ret == 0)
		ret = pgk_error(PGKEEP_EIO, "cannot close %s: %s", tmp, strerror(errno));
	spool_hash(data, len, hash);
	e = entry_name(name, hash);
	if (ret == 0 && renameat(sp->dfd, strrchr(tmp, '/') + 1, sp->dfd, e) < 0)
		ret = pgk_error(PGKEEP_EIO, "cannot rename %s in spool %s: %s", tmp, sp->dir,
				strerror(errno));
	if (ret < 0)
		unlink(tmp);
	free(e);
	free(tmp);
	return ret;
}

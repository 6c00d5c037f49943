/*
 * What wal-push asks of a file before it stores it: a regular file, no
 * larger than any WAL file, that is what its name says; and the stamps and
 * hashes by which a spool record vouches for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/wal_push.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/walmeta.h"
#include "pg/walname.h"

/* The largest segment PostgreSQL makes; history and .backup files are tiny. */
#define WAL_FILE_MAX WAL_SEG_SIZE_MAX

/*
 * The stamp a spool record may carry for what was read: only when stat
 * says the same before and after the read, and the file's last change is
 * older than the read by more than the clock's granularity, so that any
 * later change shows as a different stamp.
 */
#define STAMP_MARGIN_NS 50000000LL

bool push_stamp_eligible(const struct stat *st, const struct timespec *t0)
{
	long long age = ((long long)t0->tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
			(t0->tv_nsec - st->st_ctim.tv_nsec);

	return age > STAMP_MARGIN_NS;
}

void push_stamp_after_read(int fd, const struct stat *before, const struct timespec *t0,
			   char *stamp)
{
	struct stat st;

	stamp[0] = '\0';
	if (fstat(fd, &st) < 0 || st.st_ino != before->st_ino || st.st_size != before->st_size ||
	    st.st_mtim.tv_sec != before->st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != before->st_mtim.tv_nsec ||
	    st.st_ctim.tv_sec != before->st_ctim.tv_sec ||
	    st.st_ctim.tv_nsec != before->st_ctim.tv_nsec)
		return;
	if (push_stamp_eligible(&st, t0))
		spool_stamp(&st, stamp);
}

/*
 * Open a regular file for reading.  A FIFO opened for reading would wait
 * for a writer forever, and a symlink could point anywhere: open without
 * blocking or following, check, then read normally.
 */
static int open_regular(const char *path, struct stat *st)
{
	int fd, fl, rc;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return pgk_error(PGKEEP_EINVAL, "%s is a symbolic link, not a WAL file", path);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, st) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot stat %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = pgk_error(PGKEEP_EINVAL, "%s is not a regular file", path);
		goto out_close;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot read %s: %s", path, strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return rc;
}

/* Open a file to archive: a regular file no larger than any WAL file. */
int push_open_wal_file(const char *path, struct stat *st)
{
	int fd, rc;

	fd = open_regular(path, st);
	if (fd < 0)
		return fd;
	if ((uint64_t)st->st_size > WAL_FILE_MAX) {
		rc = pgk_error(PGKEEP_EINVAL, "%s is %lld bytes, larger than any WAL file", path,
			       (long long)st->st_size);
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return rc;
}

/*
 * A segment must say, in its first page, that it is what its name says: the
 * size PostgreSQL was built for and the address of that very segment.  The
 * system identifier is returned for the repository's check.
 */
int push_check_segment(const struct wal_name *wn, const void *head, size_t file_size,
		       const char *path, uint64_t *sysid)
{
	struct wal_page_info pi;
	uint64_t segno;
	int rc;

	rc = wal_read_first_page(head, file_size, path, &pi);
	if (rc < 0)
		return rc;
	rc = wal_name_to_segno(wn, pi.seg_size, &segno);
	if (rc < 0)
		return pgk_error_wrap(rc, "%s", path);
	if (pi.pageaddr != segno * pi.seg_size)
		return pgk_error(PGKEEP_EINVAL,
				 "%s: first page is for %X/%08X, not the segment its name says",
				 path, (unsigned)(pi.pageaddr >> 32), (unsigned)pi.pageaddr);
	*sysid = pi.sysid;
	return 0;
}

/* Map the file and check it is the segment its name says; NULL if not. */
static void *map_wal_file(const char *path, const char *name, size_t *len)
{
	struct wal_name wn;
	struct stat st;
	uint64_t sysid;
	void *map = NULL;
	int fd;

	if (walname_parse(name, &wn) < 0)
		return NULL;
	fd = open_regular(path, &st);
	if (fd < 0)
		return NULL;
	if (st.st_size <= 0 || (uint64_t)st.st_size > WAL_FILE_MAX)
		goto out_close;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		goto out_close;
	}
	if (wn.type == WAL_SEGMENT &&
	    push_check_segment(&wn, map, (size_t)st.st_size, path, &sysid) < 0) {
		munmap(map, (size_t)st.st_size);
		map = NULL;
		goto out_close;
	}
	*len = (size_t)st.st_size;
out_close:
	close(fd);
	return map;
}

/* The directory part of path, "" when there is none. */
char *push_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

uint64_t push_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void push_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The hash of the file at path, if it is what its name says. */
static bool file_hash(const char *path, const char *name, char hash[SPOOL_HASH_HEX + 1])
{
	size_t len;
	void *map = map_wal_file(path, name, &len);

	if (!map)
		return false;
	spool_hash(map, len, hash);
	munmap(map, len);
	return true;
}

/*
 * Does the spool record exactly this file?  Most misses are told by the
 * name alone; a record whose stamp matches what stat says of the file now
 * answers at once, any other costs the hash of the file.  Any doubt (a file
 * that is not what its name says) answers "no" and the full path decides.
 */
bool push_spool_records(const struct spool *sp, const char *path, const char *name)
{
	char hash[SPOOL_HASH_HEX + 1], rhash[SPOOL_HASH_HEX + 1];
	char stamp[SPOOL_STAMP_MAX], now[SPOOL_STAMP_MAX];
	struct stat st;

	if (!spool_find_file(sp, name, rhash))
		return false;
	spool_record_stamp(sp, name, rhash, stamp, sizeof(stamp));
	if (stamp[0] && stat(path, &st) == 0) {
		spool_stamp(&st, now);
		if (strcmp(stamp, now) == 0)
			return true;
	}
	return file_hash(path, name, hash) && spool_has_record(sp, name, hash);
}

/*
 * wal-push: PostgreSQL's archive_command.  One WAL file becomes one object
 * under wal/; exit 0 means the store has committed it durably, and a file
 * already stored is accepted only when it is byte-for-byte the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/repo.h"

/* The largest segment PostgreSQL makes; history and .backup files are tiny. */
#define WAL_FILE_MAX WAL_SEG_SIZE_MAX

static int read_all(int fd, uint8_t *buf, size_t len, const char *path)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot read %s: %s", path, strerror(errno));
		if (n == 0)
			return pgk_error(PGKEEP_EIO, "%s shrank while being read", path);
		done += (size_t)n;
	}
	return 0;
}

/* Read the whole file; PostgreSQL does not change a file it asks us to archive. */
static int read_wal_file(const char *path, struct pgk_buf *out)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot stat %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = pgk_error(PGKEEP_EINVAL, "%s is not a regular file", path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > WAL_FILE_MAX) {
		rc = pgk_error(PGKEEP_EINVAL, "%s is %lld bytes, larger than any WAL file", path,
			       (long long)st.st_size);
		goto out_close;
	}
	buf_reset(out);
	buf_reserve(out, (size_t)st.st_size);
	rc = read_all(fd, out->data, (size_t)st.st_size, path);
	if (rc == 0)
		out->len = (size_t)st.st_size;
out_close:
	close(fd);
	return rc;
}

/*
 * A segment must say, in its first page, that it is what its name says: the
 * size PostgreSQL was built for and the address of that very segment.  The
 * system identifier is returned for the repository's check.
 */
static int check_segment(const struct wal_name *wn, const struct pgk_buf *data,
			 const char *path, uint64_t *sysid)
{
	struct wal_page_info pi;
	uint64_t segno;
	int rc;

	rc = wal_read_first_page(data->data, data->len, path, &pi);
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

/* The object exists: the push succeeds only if it holds exactly these bytes. */
static int compare_stored(struct repo *r, const char *key, const struct pgk_buf *data)
{
	struct pgk_buf stored = PGK_BUF_INIT;
	int rc;

	rc = repo_get(r, key, OBJ_WAL, &stored);
	if (rc < 0) {
		pgk_error_wrap(rc, "object %s exists but cannot be read back to compare", key);
		goto out_free;
	}
	if (stored.len != data->len || memcmp(stored.data, data->data, data->len) != 0) {
		rc = pgk_error(PGKEEP_EEXISTS, "object %s exists with different content", key);
		goto out_free;
	}
	pgk_log_info("%s already archived with identical content", key);
out_free:
	buf_free(&stored);
	return rc;
}

static int push(const struct pgk_globals *g, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct pgk_config cfg;
	struct pgk_buf data = PGK_BUF_INIT;
	struct wal_name wn;
	struct repo *r = NULL;
	char key[WAL_KEY_MAX];
	uint64_t sysid = 0;
	int rc;

	rc = walname_key(base, key, sizeof(key));
	if (rc < 0)
		return rc;
	walname_parse(base, &wn);
	/* Check the file before the (slow) key unwrapping: bad input fails fast. */
	rc = read_wal_file(path, &data);
	if (rc < 0)
		goto out_free;
	if (wn.type == WAL_SEGMENT || wn.type == WAL_PARTIAL) {
		rc = check_segment(&wn, &data, path, &sysid);
		if (rc < 0)
			goto out_free;
	}
	rc = ctx_load_config(g, &cfg);
	if (rc < 0)
		goto out_free;
	rc = ctx_open_repo(g, &cfg, &r);
	if (rc < 0)
		goto out_config;
	if (sysid) {
		rc = repo_check_sysid(r, sysid);
		if (rc < 0) {
			pgk_error_wrap(rc, "%s", path);
			goto out_repo;
		}
	}
	rc = repo_put(r, key, OBJ_WAL, data.data, data.len, PGKEEP_PUT_IF_ABSENT);
	if (rc == PGKEEP_EEXISTS)
		rc = compare_stored(r, key, &data);
	else if (rc == 0)
		pgk_log_debug("archived %s as %s (%zu bytes)", path, key, data.len);
out_repo:
	repo_close(r);
out_config:
	config_free(&cfg);
out_free:
	buf_free(&data);
	return rc;
}

int cmd_wal_push(const struct pgk_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (opt == 'h') {
			printf("usage: pgkeep wal-push PATH\n");
			return PGK_EXIT_OK;
		}
		goto usage;
	}
	if (argc - optind != 1)
		goto usage;
	if (push(g, argv[optind]) < 0) {
		pgk_log_error("%s", pgk_errmsg());
		return PGK_EXIT_ERROR;
	}
	return PGK_EXIT_OK;
usage:
	fprintf(stderr, "usage: pgkeep wal-push PATH\n");
	return PGK_EXIT_USAGE;
}

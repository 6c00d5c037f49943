/*
 * wal-fetch: PostgreSQL's restore_command.  Exit 1 tells PostgreSQL the
 * archive has no such file, which ends recovery; so it is returned only when
 * the store confirms the object is absent.  Every other failure exits above
 * 125, which makes PostgreSQL stop instead of finishing recovery early.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/repo.h"

static int write_all(int fd, const uint8_t *buf, size_t len, const char *path)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot write %s: %s", path, strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open directory %s: %s", dir, strerror(errno));
	if (fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot fsync directory %s: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/*
 * Recovery must never read a half-written file: write a private temp file
 * next to the target, make it durable, then rename it into place.
 */
static int write_file_atomic(const char *path, const struct pgk_buf *data)
{
	const char *slash = strrchr(path, '/');
	char *tmp, *dir;
	int fd, rc;

	tmp = xasprintf("%s.pgkeep-XXXXXX", path);
	if (!slash)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	/* mkostemp: O_EXCL and mode 0600. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create a temporary file next to %s: %s", path,
			       strerror(errno));
		goto out_free;
	}
	rc = write_all(fd, data->data, data->len, tmp);
	if (rc == 0 && fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot fsync %s: %s", tmp, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = pgk_error(PGKEEP_EIO, "cannot close %s: %s", tmp, strerror(errno));
	if (rc < 0)
		goto out_unlink;
	if (rename(tmp, path) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot rename %s to %s: %s", tmp, path,
			       strerror(errno));
		goto out_unlink;
	}
	rc = fsync_dir(dir);
	goto out_free;
out_unlink:
	unlink(tmp);
out_free:
	free(dir);
	free(tmp);
	return rc;
}

/* A stored segment must still be the segment its name says (defence in depth:
 * the AEAD tag already vouches for the bytes, this for the name). */
static int check_fetched_segment(const struct wal_name *wn, const struct pgk_buf *data,
				 const char *key)
{
	struct wal_page_info pi;
	uint64_t segno;
	int rc;

	rc = wal_read_first_page(data->data, data->len, key, &pi);
	if (rc < 0)
		return pgk_error_wrap(PGKEEP_ECORRUPT, "object %s is not a usable segment", key);
	rc = wal_name_to_segno(wn, pi.seg_size, &segno);
	if (rc < 0 || pi.pageaddr != segno * pi.seg_size)
		return pgk_error(PGKEEP_ECORRUPT, "object %s holds a different segment", key);
	return 0;
}

/* %r names a segment; with no restart point PostgreSQL passes timeline 0. */
static bool restart_name_ok(const char *s)
{
	return strlen(s) == WAL_SEG_NAME_LEN &&
	       strspn(s, "0123456789ABCDEF") == WAL_SEG_NAME_LEN;
}

/* Returns the exit status; the message for a failure is already in place. */
static int fetch(const struct pgk_globals *g, const char *name, const char *path)
{
	struct pgk_config cfg;
	struct pgk_buf data = PGK_BUF_INIT;
	struct wal_name wn;
	struct repo *r = NULL;
	char key[WAL_KEY_MAX];
	int rc, status = PGK_EXIT_FATAL;

	if (walname_key(name, key, sizeof(key)) < 0)
		return PGK_EXIT_FATAL;
	walname_parse(name, &wn);
	if (ctx_load_config(g, &cfg) < 0)
		goto out_name;
	if (ctx_open_repo(g, &cfg, &r) < 0)
		goto out_config;
	rc = repo_get(r, key, OBJ_WAL, &data);
	if (rc == PGKEEP_ENOTFOUND) {
		pgk_log_debug("%s is not in the archive", key);
		status = PGK_EXIT_NOTFOUND;
		goto out_repo;
	}
	if (rc < 0)
		goto out_repo;
	if (wn.type == WAL_SEGMENT || wn.type == WAL_PARTIAL) {
		if (check_fetched_segment(&wn, &data, key) < 0)
			goto out_repo;
	}
	if (write_file_atomic(path, &data) < 0) {
		pgk_error_wrap(PGKEEP_EIO, "%s", key);
		goto out_repo;
	}
	pgk_log_debug("restored %s to %s (%zu bytes)", key, path, data.len);
	status = PGK_EXIT_OK;
out_repo:
	repo_close(r);
out_config:
	config_free(&cfg);
out_name:
	buf_free(&data);
	/* The operator reads one line in PostgreSQL's log: name the object. */
	if (status == PGK_EXIT_FATAL && !strstr(pgk_errmsg(), key))
		pgk_error_wrap(PGKEEP_EIO, "cannot fetch %s", key);
	return status;
}

int cmd_wal_fetch(const struct pgk_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, nargs, status;

	/* Under restore_command even a bad command line must not read as "not
	 * found": it would end recovery at the wrong point. */
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (opt == 'h') {
			printf("usage: pgkeep wal-fetch NAME PATH [RESTARTNAME]\n");
			return PGK_EXIT_OK;
		}
		goto usage;
	}
	nargs = argc - optind;
	if (nargs != 2 && nargs != 3)
		goto usage;
	if (nargs == 3 && !restart_name_ok(argv[optind + 2])) {
		pgk_log_error("'%.80s' is not a WAL segment name (%%r)", argv[optind + 2]);
		return PGK_EXIT_FATAL;
	}
	status = fetch(g, argv[optind], argv[optind + 1]);
	if (status == PGK_EXIT_FATAL)
		pgk_log_error("%s", pgk_errmsg());
	return status;
usage:
	fprintf(stderr, "usage: pgkeep wal-fetch NAME PATH [RESTARTNAME]\n");
	return PGK_EXIT_FATAL;
}

/*
 * wal-fetch: PostgreSQL's restore_command.  Exit 1 tells PostgreSQL the
 * archive has no such file, which ends recovery; so it is returned only when
 * every archive repository confirms the object is absent.  Every other
 * failure exits above 125, which makes PostgreSQL stop instead of finishing
 * recovery early.  After a segment, the next few are fetched ahead into the
 * spool, verified, and later calls are served from there without a key.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/wal_repos.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/repo.h"
#include "local/spool.h"

/* Prefetched files kept at most, beyond the look-ahead itself. */
#define SPOOL_SLACK 2
/* Segments downloaded at once; each holds a sealed and an opened copy. */
#define FETCH_WORKERS_MAX 4

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
	rc = write_full(fd, data->data, data->len, tmp);
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

/*
 * A stored segment must still be the segment its name says: its address,
 * and a timeline no later than the name's (the tag binds a format 2 object
 * to its name; this also covers format 1 objects and the spool).  The first
 * segment of a timeline may begin with pages of the timeline it branched
 * from, copied up to the switch point, so an earlier one is no proof of
 * damage.
 */
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
	if (pi.tli > wn->tli)
		return pgk_error(PGKEEP_ECORRUPT,
				 "object %s holds a segment of timeline %u, not of timeline %u", key,
				 pi.tli, wn->tli);
	return 0;
}

/* %r names a segment; with no restart point PostgreSQL passes timeline 0. */
static bool restart_name_ok(const char *s)
{
	return strlen(s) == WAL_SEG_NAME_LEN &&
	       strspn(s, "0123456789ABCDEF") == WAL_SEG_NAME_LEN;
}

/* ---- the spool ---- */

static void read_file_at(int dfd, const char *name, struct pgk_buf *out, int *rc)
{
	struct stat st;
	ssize_t n;
	int fd;

	*rc = PGKEEP_EIO;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > WAL_SEG_SIZE_MAX)
		goto out_close;
	buf_reset(out);
	buf_reserve(out, (size_t)st.st_size);
	while (out->len < (size_t)st.st_size) {
		n = read(fd, out->data + out->len, (size_t)st.st_size - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out_close;
		out->len += (size_t)n;
	}
	/* What recovery reads must be on disk before the rename says it is there. */
	if (fsync(fd) == 0)
		*rc = 0;
out_close:
	close(fd);
}

/*
 * Serve name from the spool: the bytes must still hash to what the fetch
 * recorded and be the segment the name says (so the timeline too).
 * PGKEEP_ENOTFOUND when there is nothing usable; a bad entry is dropped.
 */
static int serve_spooled(const struct spool *sp, const char *name, const char *path,
			 const struct wal_name *wn)
{
	char hash[SPOOL_HASH_HEX + 1], got[SPOOL_HASH_HEX + 1], *entry;
	struct pgk_buf data = PGK_BUF_INIT;
	int rc;

	if (!spool_find_file(sp, name, hash))
		return PGKEEP_ENOTFOUND;
	entry = xasprintf("%s.%s", name, hash);
	read_file_at(sp->dfd, entry, &data, &rc);
	if (rc == 0) {
		spool_hash(data.data, data.len, got);
		if (strcmp(got, hash) != 0 || check_fetched_segment(wn, &data, name) < 0)
			rc = PGKEEP_ECORRUPT;
	}
	if (rc < 0) {
		pgk_log_warning("prefetched %s in %s is damaged; fetching it again", name, sp->dir);
		unlinkat(sp->dfd, entry, 0);
		rc = PGKEEP_ENOTFOUND;
		goto out_free;
	}
	/* A rename where the spool shares pg_wal's file system, else a copy. */
	if (renameat(sp->dfd, entry, AT_FDCWD, path) == 0) {
		char *dir = strrchr(path, '/') ? xstrndup(path, (size_t)(strrchr(path, '/') - path))
					       : xstrdup(".");

		rc = fsync_dir(*dir ? dir : "/");
		free(dir);
	} else {
		rc = write_file_atomic(path, &data);
		unlinkat(sp->dfd, entry, 0);
	}
out_free:
	free(entry);
	buf_free(&data);
	return rc;
}

static void open_spool(const struct pgk_config *cfg, const struct wal_repos *wr,
		       struct spool *sp)
{
	struct pgk_buf scope = PGK_BUF_INIT;
	char cwd[4096];

	sp->dir = NULL;
	sp->dfd = -1;
	if (cfg->wal_fetch_ahead <= 0)
		return;
	/* One spool per recovering cluster: restore_command runs in its PGDATA. */
	if (!getcwd(cwd, sizeof(cwd)))
		return;
	wal_repos_scope(wr, &scope);
	buf_printf(&scope, "cwd %s\n", cwd);
	buf_append(&scope, "", 1);
	if (spool_open(sp, cfg->spool_dir, "fetch", (const char *)scope.data) < 0) {
		if (cfg->spool_dir)
			pgk_log_warning("%s; fetching without prefetch", pgk_errmsg());
		else
			pgk_log_debug("%s; fetching without prefetch", pgk_errmsg());
	}
	buf_free(&scope);
}

/* ---- the repositories ---- */

/*
 * Try repository i for key: 0 with data, PGKEEP_ENOTFOUND when it confirms
 * the absence, else an error whose message names the repository.
 */
static int fetch_from(struct wal_repos *wr, size_t i, const char *key,
		      const struct wal_name *wn, struct pgk_buf *data)
{
	char *msg;
	int rc;

	/* Only a repository that opened can confirm an absence: one that did
	 * not (unmounted, vanished, no key slot) must stop recovery. */
	rc = wal_repos_open(wr, i);
	if (rc < 0)
		return pgk_error(rc == PGKEEP_ENOTFOUND ? PGKEEP_EIO : rc, "%s", wr->msg[i]);
	buf_reset(data);
	rc = repo_get(wr->r[i], key, OBJ_WAL, data);
	if (rc == 0 && (wn->type == WAL_SEGMENT || wn->type == WAL_PARTIAL))
		rc = check_fetched_segment(wn, data, key);
	if (rc < 0 && rc != PGKEEP_ENOTFOUND) {
		msg = wal_repos_message(wr, i, pgk_errmsg());
		rc = pgk_error(rc, "%s", msg);
		free(msg);
	}
	return rc;
}

struct prefetch {
	struct wal_repos *wr;
	const struct spool *sp;
	char (*names)[WAL_SEG_NAME_LEN + 1];
	size_t n;
	size_t next;
	size_t done;
	pthread_mutex_t mu;
};

/* Only the repositories already open: prefetch never costs another key. */
static void prefetch_one(struct prefetch *pf, const char *name)
{
	struct pgk_buf data = PGK_BUF_INIT;
	char key[LAYOUT_WAL_KEY_MAX];
	struct wal_name wn;
	size_t i;
	int rc = PGKEEP_ENOTFOUND;

	layout_wal_key(name, key, sizeof(key));
	walname_parse(name, &wn);
	for (i = 0; i < pf->wr->n && rc < 0; i++) {
		if (!pf->wr->r[i])
			continue;
		rc = fetch_from(pf->wr, i, key, &wn, &data);
		if (rc < 0 && rc != PGKEEP_ENOTFOUND)
			pgk_log_debug("prefetch of %s: %s", name, pgk_errmsg());
	}
	if (rc == 0 && spool_put_file(pf->sp, name, data.data, data.len) == 0) {
		pthread_mutex_lock(&pf->mu);
		pf->done++;
		pthread_mutex_unlock(&pf->mu);
	}
	buf_free(&data);
}

static void *prefetch_worker(void *p)
{
	struct prefetch *pf = p;
	size_t k;

	for (;;) {
		pthread_mutex_lock(&pf->mu);
		k = pf->next++;
		pthread_mutex_unlock(&pf->mu);
		if (k >= pf->n)
			return NULL;
		prefetch_one(pf, pf->names[k]);
	}
}

/* Fetch the segments after name into the spool, in parallel. */
static void prefetch(struct wal_repos *wr, const struct spool *sp, const char *name,
		     const struct pgk_buf *data, int ahead)
{
	struct prefetch pf = { wr, sp, NULL, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER };
	char cur[WAL_SEG_NAME_LEN + 1];
	struct wal_page_info pi;
	pthread_t tids[FETCH_WORKERS_MAX];
	bool started[FETCH_WORKERS_MAX] = { false };
	size_t nw, i;
	int k;

	if (wal_read_first_page(data->data, data->len, name, &pi) < 0)
		return;
	pf.names = xzalloc((size_t)ahead * sizeof(*pf.names));
	snprintf(cur, sizeof(cur), "%s", name);
	for (k = 0; k < ahead; k++) {
		if (wal_next_segment(cur, pi.seg_size, cur) < 0)
			break;
		if (spool_find_file(sp, cur, NULL))
			continue;
		memcpy(pf.names[pf.n++], cur, sizeof(cur));
	}
	nw = pf.n < FETCH_WORKERS_MAX ? pf.n : FETCH_WORKERS_MAX;
	for (i = 1; i < nw; i++)
		started[i] = pthread_create(&tids[i], NULL, prefetch_worker, &pf) == 0;
	if (nw)
		prefetch_worker(&pf);
	for (i = 1; i < nw; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	if (pf.n)
		pgk_log_debug("prefetched %zu of the %zu segment(s) after %s", pf.done, pf.n, name);
	free(pf.names);
}

/* Returns the exit status; the message for a failure is already in place. */
static int fetch(const struct pgk_globals *g, const char *name, const char *path)
{
	struct pgk_config cfg;
	struct pgk_buf data = PGK_BUF_INIT;
	struct wal_repos wr;
	struct wal_name wn;
	struct spool sp = { NULL, -1 };
	char key[LAYOUT_WAL_KEY_MAX], first_err[PGKEEP_ERRLEN] = "";
	int rc, status = PGK_EXIT_FATAL;
	size_t i;

	if (layout_wal_key(name, key, sizeof(key)) < 0)
		return PGK_EXIT_FATAL;
	walname_parse(name, &wn);
	if (ctx_load_config(g, &cfg) < 0)
		goto out_name;
	if (wal_repos_init(&wr, g, &cfg) < 0)
		goto out_config;
	if (wn.type == WAL_SEGMENT)
		open_spool(&cfg, &wr, &sp);
	if (sp.dir) {
		rc = serve_spooled(&sp, name, path, &wn);
		if (rc == 0) {
			pgk_log_debug("restored %s from the prefetch spool", key);
			status = PGK_EXIT_OK;
			spool_prune(&sp, name, (size_t)cfg.wal_fetch_ahead + SPOOL_SLACK);
			goto out_repos;
		}
		if (rc != PGKEEP_ENOTFOUND)
			goto out_repos;
	}

	/* The first repository that has it wins; any failure forbids "absent". */
	rc = PGKEEP_ENOTFOUND;
	for (i = 0; i < wr.n; i++) {
		rc = fetch_from(&wr, i, key, &wn, &data);
		if (rc == 0)
			break;
		if (rc != PGKEEP_ENOTFOUND) {
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "%s", pgk_errmsg());
			if (wr.n > 1)
				pgk_log_warning("%s", pgk_errmsg());
		}
	}
	if (rc < 0) {
		if (first_err[0]) {
			pgk_error(PGKEEP_EIO, "%s", first_err);
		} else {
			pgk_log_info("%s is not in the archive", key);
			status = PGK_EXIT_NOTFOUND;
			if (sp.dir)
				spool_prune(&sp, name, (size_t)cfg.wal_fetch_ahead + SPOOL_SLACK);
		}
		goto out_repos;
	}
	if (i > 0)
		pgk_log_info("%s came from repository %s", key, wr.names[i]);
	if (write_file_atomic(path, &data) < 0) {
		pgk_error_wrap(PGKEEP_EIO, "%s", key);
		goto out_repos;
	}
	pgk_log_debug("restored %s to %s (%zu bytes)", key, path, data.len);
	status = PGK_EXIT_OK;
	if (sp.dir) {
		prefetch(&wr, &sp, name, &data, cfg.wal_fetch_ahead);
		spool_prune(&sp, name, (size_t)cfg.wal_fetch_ahead + SPOOL_SLACK);
	}
out_repos:
	spool_close(&sp);
	wal_repos_free(&wr);
out_config:
	config_free(&cfg);
out_name:
	buf_free(&data);
	/* The operator reads one line in PostgreSQL's log: name the object. */
	if (status == PGK_EXIT_FATAL && !strstr(pgk_errmsg(), key))
		pgk_error_wrap(PGKEEP_EIO, "cannot fetch %s", key);
	return status;
}

static const struct opt_arg wal_fetch_args[] = {
	{ "NAME PATH", "the file wanted (%f) and where to write it (%p)" },
	{ "RESTARTNAME", "the oldest file still needed (%r), optional" },
	{ NULL, NULL },
};

/* Under restore_command even a bad command line must not read as "not
 * found": it would end recovery at the wrong point. */
const struct opt_spec wal_fetch_cli = {
	.command = "wal-fetch",
	.summary = "restore a WAL file (restore_command = 'pgkeep wal-fetch %f %p')",
	.synopsis = "NAME PATH [RESTARTNAME]",
	.args = wal_fetch_args,
	.min_args = 2,
	.max_args = 3,
	.args_error = "expected NAME PATH [RESTARTNAME] (restore_command = 'pgkeep wal-fetch %f %p')",
	.usage_exit = PGK_EXIT_FATAL,
};

int cmd_wal_fetch(const struct pgk_globals *g, int argc, char **argv)
{
	struct opt_args pos;
	int status;

	if (opt_parse(&wal_fetch_cli, argc, argv, NULL, &pos) < 0)
		return opt_fail(&wal_fetch_cli);
	if (pos.argc == 3 && !restart_name_ok(pos.argv[2])) {
		pgk_log_error("'%.80s' is not a WAL segment name (%%r)", pos.argv[2]);
		return PGK_EXIT_FATAL;
	}
	status = fetch(g, pos.argv[0], pos.argv[1]);
	if (status == PGK_EXIT_FATAL)
		pgk_log_error("%s", pgk_errmsg());
	return status;
}

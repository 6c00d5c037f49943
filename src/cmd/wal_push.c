/*
 * wal-push: PostgreSQL's archive_command.  One WAL file becomes one object
 * under wal/ in every archive repository; exit 0 means each store has
 * committed it durably, and a file already stored is accepted only when it
 * is byte-for-byte the same.  Besides the file asked for, the segments
 * PostgreSQL has already marked ready are pushed alongside it, and each one
 * stored everywhere is recorded in the spool, so that the call for it later
 * returns after hashing the file, with no plugin and no key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/wal_repos.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/repo.h"
#include "repo/spool.h"

/* The largest segment PostgreSQL makes; history and .backup files are tiny. */
#define WAL_FILE_MAX WAL_SEG_SIZE_MAX
/* Records kept at most: the look-ahead of two calls, and some slack. */
#define SPOOL_MAX(ahead) (2 * (size_t)(ahead) + 16)
/* Files read and sealed at once; each holds a segment and its sealed copies. */
#define PUSH_WORKERS_MAX 4

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
	pgk_log_info("%s already archived with identical content in repository %s", key, r->name);
out_free:
	buf_free(&stored);
	return rc;
}

/* One file to push: the one asked for (jobs[0]) or a ready one after it. */
struct push_job {
	char *name;
	char *path;
	char key[WAL_KEY_MAX];
	struct wal_name wn;
	struct pgk_buf data;
	char hash[SPOOL_HASH_HEX + 1];
	int *rc;		/* per repository */
	char **msg;		/* per repository, on failure */
};

struct push_run {
	struct wal_repos *wr;
	uint64_t sysid;		/* the cluster every segment must belong to */
	struct push_job *jobs;
	size_t njobs;
	size_t next;		/* next job to take, under mu */
	pthread_mutex_t mu;
};

static void job_free(struct push_job *j, size_t nrepos)
{
	size_t i;

	for (i = 0; i < nrepos; i++)
		free(j->msg[i]);
	free(j->msg);
	free(j->rc);
	buf_free(&j->data);
	free(j->name);
	free(j->path);
}

static void job_init(struct push_job *j, const char *name, const char *path, size_t nrepos)
{
	memset(j, 0, sizeof(*j));
	j->name = xstrdup(name);
	j->path = xstrdup(path);
	walname_key(name, j->key, sizeof(j->key));
	walname_parse(name, &j->wn);
	j->rc = xzalloc(nrepos * sizeof(*j->rc));
	j->msg = xzalloc(nrepos * sizeof(*j->msg));
}

/* Read and check the file; sysid 0 when it carries none (history, .backup). */
static int job_load(struct push_job *j, uint64_t *sysid)
{
	int rc;

	*sysid = 0;
	rc = read_wal_file(j->path, &j->data);
	if (rc == 0 && (j->wn.type == WAL_SEGMENT || j->wn.type == WAL_PARTIAL))
		rc = check_segment(&j->wn, &j->data, j->path, sysid);
	return rc;
}

/* Store j in repository r: if absent, else only if identical. */
static int push_to(struct repo *r, const struct push_job *j)
{
	int rc;

	rc = repo_put(r, j->key, OBJ_WAL, j->data.data, j->data.len, PGKEEP_PUT_IF_ABSENT);
	if (rc == PGKEEP_EEXISTS)
		rc = compare_stored(r, j->key, &j->data);
	else if (rc == 0)
		pgk_log_debug("archived %s as %s in repository %s (%zu bytes)", j->path, j->key,
			      r->name, j->data.len);
	return rc;
}

struct repo_push {
	struct push_run *run;
	struct push_job *job;
	size_t i;
	pthread_t tid;
	bool started;
};

static void push_repo(struct push_run *run, struct push_job *j, size_t i)
{
	struct wal_repos *wr = run->wr;

	if (!wr->r[i]) {
		j->rc[i] = wr->err[i] ? wr->err[i] : PGKEEP_EIO;
		j->msg[i] = xstrdup(wr->msg[i] ? wr->msg[i] : "not opened");
		return;
	}
	j->rc[i] = push_to(wr->r[i], j);
	if (j->rc[i] < 0)
		j->msg[i] = wal_repos_message(wr, i, pgk_errmsg());
}

static void *push_repo_thread(void *p)
{
	struct repo_push *a = p;

	push_repo(a->run, a->job, a->i);
	return NULL;
}

/* The repositories are independent: a slow one must not hold up the others. */
static void push_everywhere(struct push_run *run, struct push_job *j)
{
	size_t n = run->wr->n, i;
	struct repo_push *a = xzalloc(n * sizeof(*a));

	for (i = 1; i < n; i++) {
		a[i] = (struct repo_push){ run, j, i, 0, false };
		a[i].started = pthread_create(&a[i].tid, NULL, push_repo_thread, &a[i]) == 0;
	}
	push_repo(run, j, 0);
	for (i = 1; i < n; i++) {
		if (a[i].started)
			pthread_join(a[i].tid, NULL);
		else
			push_repo(run, j, i);
	}
	free(a);
}

static void run_job(struct push_run *run, struct push_job *j)
{
	uint64_t sysid;
	size_t i;
	int rc = 0;

	if (!j->data.data) {
		rc = job_load(j, &sysid);
		/* Only the cluster that was checked against every repository. */
		if (rc == 0 && sysid && sysid != run->sysid)
			rc = pgk_error(PGKEEP_EINVAL, "%s belongs to another cluster", j->path);
		/* The hash of what is pushed is what the spool record vouches for. */
		if (rc == 0)
			spool_hash(j->data.data, j->data.len, j->hash);
	}
	if (rc < 0) {
		for (i = 0; i < run->wr->n; i++) {
			j->rc[i] = rc;
			j->msg[i] = xstrdup(pgk_errmsg());
		}
		return;
	}
	push_everywhere(run, j);
	/* Look-ahead files are read again by their own call: free them now. */
	if (j != &run->jobs[0])
		buf_free(&j->data);
}

static void *worker(void *p)
{
	struct push_run *run = p;
	size_t k;

	for (;;) {
		pthread_mutex_lock(&run->mu);
		k = run->next++;
		pthread_mutex_unlock(&run->mu);
		if (k >= run->njobs)
			return NULL;
		run_job(run, &run->jobs[k]);
	}
}

static bool job_ok(const struct push_job *j, size_t nrepos)
{
	size_t i;

	for (i = 0; i < nrepos; i++)
		if (j->rc[i] < 0)
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The ready files after `base` in PostgreSQL's archive_status, in name
 * order, at most max, leaving out what the spool already records.  Only
 * segments and history files: the rest are rare and small.
 */
static size_t ready_after(const char *path, const char *base, int max,
			  const struct spool *sp, char ***out)
{
	const char *slash = strrchr(path, '/');
	char *dir, **names = NULL;
	struct wal_name wn;
	struct dirent *de;
	size_t n = 0, len;
	DIR *d;

	*out = NULL;
	if (max <= 0)
		return 0;
	dir = slash ? xasprintf("%.*s/archive_status", (int)(slash - path), path)
		    : xstrdup("archive_status");
	d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 7 || strcmp(de->d_name + len - 6, ".ready") != 0)
			continue;
		de->d_name[len - 6] = '\0';
		if (strcmp(de->d_name, base) <= 0 || walname_parse(de->d_name, &wn) < 0 ||
		    (wn.type != WAL_SEGMENT && wn.type != WAL_HISTORY))
			continue;
		if (sp && spool_has_name(sp, de->d_name))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)	/* nothing ready: no array, and qsort wants one */
		qsort(names, n, sizeof(*names), cmp_str);
	while (n > (size_t)max)
		free(names[--n]);
	*out = names;
	return n;
}

static size_t worker_count(const struct pgk_config *cfg, size_t njobs)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t w = cfg->jobs > 0 ? (size_t)cfg->jobs : (size_t)(cores > 2 ? cores : 2);

	if (w > PUSH_WORKERS_MAX)
		w = PUSH_WORKERS_MAX;
	return w < njobs ? w : njobs;
}

static void run_jobs(struct push_run *run, const struct pgk_config *cfg)
{
	size_t nw = worker_count(cfg, run->njobs), i;
	pthread_t *tids = xzalloc(nw * sizeof(*tids));
	bool *started = xzalloc(nw * sizeof(*started));

	pthread_mutex_init(&run->mu, NULL);
	for (i = 1; i < nw; i++)
		started[i] = pthread_create(&tids[i], NULL, worker, run) == 0;
	worker(run);
	for (i = 1; i < nw; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&run->mu);
	free(tids);
	free(started);
}

/* Every failing repository gets its own line; the first is the error. */
static int report(const struct push_run *run)
{
	const struct push_job *j = &run->jobs[0];
	size_t i;
	int rc = 0;

	for (i = 0; i < run->wr->n; i++) {
		if (j->rc[i] >= 0)
			continue;
		if (rc == 0) {
			rc = pgk_error(j->rc[i], "%s", j->msg[i]);
			continue;
		}
		pgk_log_error("%s", j->msg[i]);
	}
	return rc;
}

static void record_ahead(const struct push_run *run, const struct spool *sp)
{
	size_t k;

	for (k = 1; k < run->njobs; k++) {
		const struct push_job *j = &run->jobs[k];

		if (!job_ok(j, run->wr->n)) {
			pgk_log_debug("look-ahead push of %s did not reach every repository: %s",
				      j->name, j->msg[0] ? j->msg[0] : j->msg[run->wr->n - 1]);
			continue;
		}
		if (sp->dir && spool_add_record(sp, j->name, j->hash) == 0)
			pgk_log_debug("pushed %s ahead; recorded in the spool", j->name);
	}
}

/*
 * The fast path: does the spool record exactly this file?  Mapped rather
 * than read, so that the check costs the hash and little else; any doubt
 * (a file that is not a segment, a short map) answers "no" and the full
 * path decides.
 */
static bool spool_records(const struct spool *sp, const char *path, const char *name,
			  char hash[SPOOL_HASH_HEX + 1])
{
	struct wal_name wn;
	struct pgk_buf view;
	struct stat st;
	uint64_t sysid;
	bool hit = false;
	void *map;
	int fd;

	/* Most misses are told by the name alone, without hashing. */
	if (walname_parse(name, &wn) < 0 || !spool_has_name(sp, name))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > WAL_FILE_MAX)
		goto out_close;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		goto out_close;
	view.data = map;
	view.len = view.cap = (size_t)st.st_size;
	if (wn.type != WAL_SEGMENT || check_segment(&wn, &view, path, &sysid) == 0) {
		spool_hash(map, (size_t)st.st_size, hash);
		hit = spool_has_record(sp, name, hash);
	}
	munmap(map, (size_t)st.st_size);
out_close:
	close(fd);
	return hit;
}

static void open_spool(const struct pgk_config *cfg, const struct wal_repos *wr,
		       struct spool *sp)
{
	struct pgk_buf scope = PGK_BUF_INIT;

	sp->dir = NULL;
	sp->dfd = -1;
	if (cfg->wal_push_ahead <= 0)
		return;
	wal_repos_scope(wr, &scope);
	buf_append(&scope, "", 1);
	if (spool_open(sp, cfg->spool_dir, "push", (const char *)scope.data) < 0) {
		/* A spool the user asked for must not fail silently. */
		if (cfg->spool_dir)
			pgk_log_warning("%s; pushing without a spool", pgk_errmsg());
		else
			pgk_log_debug("%s; pushing without a spool", pgk_errmsg());
	}
	buf_free(&scope);
}

static int push(const struct pgk_globals *g, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct push_run run = { 0 };
	struct wal_repos wr;
	struct pgk_config cfg;
	struct spool sp;
	char key[WAL_KEY_MAX], hash[SPOOL_HASH_HEX + 1], **ahead = NULL;
	size_t nahead, k;
	int rc;

	rc = walname_key(base, key, sizeof(key));
	if (rc < 0)
		return rc;
	rc = ctx_load_config(g, &cfg);
	if (rc < 0)
		return rc;
	rc = wal_repos_init(&wr, g, &cfg);
	if (rc < 0)
		goto out_config;
	open_spool(&cfg, &wr, &sp);

	if (sp.dir && spool_records(&sp, path, base, hash)) {
		/* Pushed ahead by an earlier call, these very bytes, everywhere. */
		pgk_log_debug("%s already archived (spool record)", base);
		spool_remove(&sp, base, hash);
		spool_prune(&sp, base, SPOOL_MAX(cfg.wal_push_ahead));
		goto out_spool;
	}

	/* Check the file before the (slow) key unwrapping: bad input fails fast. */
	run.jobs = xzalloc(sizeof(*run.jobs));
	run.njobs = 1;
	run.wr = &wr;
	job_init(&run.jobs[0], base, path, wr.n);
	rc = job_load(&run.jobs[0], &run.sysid);
	if (rc < 0)
		goto out_jobs;

	/* Without a cluster to check them against, push nothing ahead. */
	nahead = run.sysid ? ready_after(path, base, cfg.wal_push_ahead, sp.dir ? &sp : NULL,
					 &ahead) : 0;
	run.jobs = xrealloc(run.jobs, (nahead + 1) * sizeof(*run.jobs));
	for (k = 0; k < nahead; k++) {
		char *p = strrchr(path, '/') ? xasprintf("%.*s/%s", (int)(base - path - 1), path,
							  ahead[k])
					     : xstrdup(ahead[k]);

		job_init(&run.jobs[k + 1], ahead[k], p, wr.n);
		free(p);
		free(ahead[k]);
	}
	free(ahead);
	run.njobs = nahead + 1;

	wal_repos_open_all(&wr, run.sysid);
	run_jobs(&run, &cfg);
	rc = report(&run);
	if (sp.dir) {
		record_ahead(&run, &sp);
		spool_prune(&sp, base, SPOOL_MAX(cfg.wal_push_ahead));
	}
	if (rc == 0 && nahead)
		pgk_log_debug("%s archived, with %zu ready file(s) after it", base, nahead);
out_jobs:
	for (k = 0; k < run.njobs; k++)
		job_free(&run.jobs[k], wr.n);
	free(run.jobs);
out_spool:
	spool_close(&sp);
	wal_repos_free(&wr);
out_config:
	config_free(&cfg);
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

/*
 * A run of wal-push jobs on a few worker threads: each job checks its file
 * and stores it in every archive repository at once; sealing is bounded by
 * the cores and by the bytes held, and a background run keeps taking the
 * ready files PostgreSQL has marked while the spool has room.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/wal_push.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walmeta.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/put.h"

/* Files sealed at once, at most (one per core). */
#define PUSH_CPU_MAX 4

/* Sealed objects held at once, being sealed or stored (see cpu_acquire). */
#define PUSH_SEALED_BUDGET ((uint64_t)40 << 20)

static void job_free(struct push_job *j, size_t nrepos)
{
	size_t i;

	if (!j)
		return;
	for (i = 0; i < nrepos; i++)
		free(j->msg[i]);
	free(j->msg);
	free(j->rc);
	if (j->fd >= 0)
		close(j->fd);
	free(j->name);
	free(j->path);
	free(j);
}

struct push_job *push_job_new(const char *name, const char *path, size_t nrepos)
{
	struct push_job *j = xzalloc(sizeof(*j));

	j->name = xstrdup(name);
	j->path = xstrdup(path);
	j->fd = -1;
	layout_wal_key(name, j->key, sizeof(j->key));
	walname_parse(name, &j->wn);
	j->rc = xzalloc(nrepos * sizeof(*j->rc));
	j->msg = xzalloc(nrepos * sizeof(*j->msg));
	return j;
}

/*
 * A history or backup history file is stored once and never replaced: an
 * empty or garbled one would block the right one forever, so it must be
 * what PostgreSQL writes before it is stored.
 */
static int check_meta(const struct push_job *j)
{
	struct pgk_buf text = PGK_BUF_INIT;
	int rc;

	if (j->size > WAL_META_MAX)
		return pgk_error(PGKEEP_EINVAL, "%s is %llu bytes, larger than any %s file", j->path,
				 (unsigned long long)j->size,
				 j->wn.type == WAL_HISTORY ? "history" : "backup history");
	buf_reserve(&text, (size_t)j->size + 1);
	rc = pread_full(j->fd, text.data, (size_t)j->size, 0, j->path);
	if (rc == 0 && j->wn.type == WAL_HISTORY)
		rc = walmeta_check_history(text.data, (size_t)j->size, &j->wn, j->path);
	else if (rc == 0)
		rc = walmeta_check_backup(text.data, (size_t)j->size, &j->wn, j->path);
	buf_free(&text);
	return rc;
}

/*
 * Open and check the file (a segment's first page says what it is); it
 * stays open for the push.  sysid 0 when it carries none (history, .backup).
 */
int push_job_check(struct push_job *j, uint64_t *sysid)
{
	uint8_t head[WAL_LONG_HEADER_LEN];
	struct stat st;
	ssize_t n;
	int rc = 0;

	*sysid = 0;
	if (j->fd < 0) {
		j->fd = push_open_wal_file(j->path, &st);
		if (j->fd < 0)
			return j->fd;
		j->size = (uint64_t)st.st_size;
	}
	if (j->wn.type == WAL_SEGMENT || j->wn.type == WAL_PARTIAL) {
		n = pread(j->fd, head, sizeof(head), 0);
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot read %s: %s", j->path, strerror(errno));
		rc = push_check_segment(&j->wn, head, (size_t)n < sizeof(head) ? (size_t)n : j->size,
					j->path, sysid);
	} else {
		rc = check_meta(j);
	}
	if (rc == 0)
		j->checked = true;
	return rc;
}

void push_run_add(struct push_run *run, struct push_job *j)
{
	run->jobs = xrealloc(run->jobs, (run->njobs + 1) * sizeof(*run->jobs));
	run->jobs[run->njobs++] = j;
}

static char *wal_path(const struct push_run *run, const char *name)
{
	return *run->wal_dir ? xasprintf("%s/%s", run->wal_dir, name) : xstrdup(name);
}

/*
 * Sealing is CPU work: at most `cpu` at once, one per job (core).  Storing
 * waits on the store (an fsync, a network round trip), so more jobs than
 * that are under way, each holding only its sealed object; the sealed bytes
 * held at once stay within a budget, counted at the worst case while
 * sealing and at the real size after.
 */
static void cpu_acquire(void *p, uint64_t want)
{
	struct push_run *run = p;

	pthread_mutex_lock(&run->mu);
	while (run->cpu_busy >= run->cpu ||
	       (run->held && run->held + want > PUSH_SEALED_BUDGET))
		pthread_cond_wait(&run->cv, &run->mu);
	run->cpu_busy++;
	run->held += want;
	pthread_mutex_unlock(&run->mu);
}

static void cpu_release(void *p, uint64_t want, uint64_t keep)
{
	struct push_run *run = p;

	pthread_mutex_lock(&run->mu);
	run->cpu_busy--;
	run->held -= want - keep;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

static void held_release(void *p, uint64_t keep)
{
	struct push_run *run = p;

	pthread_mutex_lock(&run->mu);
	run->held -= keep;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

/* Store j in repository r: if absent, else only if identical. */
static int push_to(struct push_run *run, struct repo *r, struct push_job *j, size_t i)
{
	const struct repo_put_hooks hooks = { cpu_acquire, cpu_release, held_release, run };
	uint8_t md[32];
	int rc;

	rc = repo_put_fd(r, OBJ_WAL, j->key, j->fd, j->size, j->path, j->by_stamp ? NULL : md,
			 &hooks);
	/* The hash of what is pushed is what a spool record vouches for. */
	if (rc == 0 && i == 0 && !j->by_stamp)
		spool_hash_hex(md, j->hash);
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
	j->rc[i] = push_to(run, wr->r[i], j, i);
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

static bool job_ok(const struct push_job *j, size_t nrepos)
{
	size_t i;

	for (i = 0; i < nrepos; i++)
		if (j->rc[i] < 0)
			return false;
	return true;
}

static void run_job(struct push_run *run, struct push_job *j)
{
	struct timespec t0;
	struct stat before;
	uint64_t sysid;
	size_t i;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &t0);
	if (!j->checked) {
		rc = push_job_check(j, &sysid);
		/* Only the cluster that was checked against every repository. */
		if (rc == 0 && sysid && sysid != run->sysid)
			rc = pgk_error(PGKEEP_EINVAL, "%s belongs to another cluster", j->path);
	}
	if (rc == 0 && fstat(j->fd, &before) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot stat %s: %s", j->path, strerror(errno));
	if (rc < 0) {
		for (i = 0; i < run->wr->n; i++) {
			j->rc[i] = rc;
			j->msg[i] = xstrdup(pgk_errmsg());
		}
		return;
	}
	/*
	 * A file whose last change is old enough gets a record that vouches by
	 * its stamp, named by the stamp's hash rather than the content's: a later
	 * call finds the same stamp, or pushes the file again.
	 */
	j->by_stamp = push_stamp_eligible(&before, &t0);
	push_everywhere(run, j);
	push_stamp_after_read(j->fd, &before, &t0, j->stamp);
	if (j->by_stamp) {
		if (j->stamp[0])
			spool_hash(j->stamp, strlen(j->stamp), j->hash);
		else
			j->hash[0] = '\0';	/* changed while read: no record */
	}
	close(j->fd);
	j->fd = -1;
}

static void job_done(struct push_run *run, struct push_job *j)
{
	bool ok = job_ok(j, run->wr->n);

	if (ok && run->sp && (run->refill || !j->asked) && j->hash[0] &&
	    spool_add_record(run->sp, j->name, j->hash, j->stamp) == 0)
		pgk_log_debug("pushed %s%s; recorded in the spool", j->name,
			      j->asked ? "" : " ahead");
	if (!ok && !j->asked)
		pgk_log_debug("look-ahead push of %s did not reach every repository: %s", j->name,
			      j->msg[0] ? j->msg[0] : j->msg[run->wr->n - 1]);
	if (j->asked && run->notify_fd >= 0)
		pusher_notify(run, j);
	pthread_mutex_lock(&run->mu);
	run->done++;
	if (ok)
		run->pushed++;
	else
		run->failed++;
	/* After a failure the call for that file pushes it, and says why. */
	if (!ok)
		run->stop = true;
	pthread_mutex_unlock(&run->mu);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The ready files after `after` in PostgreSQL's archive_status under
 * wal_dir, in name order, at most max, leaving out what the spool already
 * records.  Only segments and history files: the rest are rare and small.
 */
static size_t ready_after(const char *wal_dir, const char *after, int max,
			  const struct spool *sp, char ***out)
{
	char *dir, **names = NULL;
	struct wal_name wn;
	struct dirent *de;
	size_t n = 0, kept = 0, len, i;
	DIR *d;

	*out = NULL;
	if (max <= 0)
		return 0;
	dir = *wal_dir ? xasprintf("%s/archive_status", wal_dir) : xstrdup("archive_status");
	d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 7 || strcmp(de->d_name + len - 6, ".ready") != 0)
			continue;
		de->d_name[len - 6] = '\0';
		if (strcmp(de->d_name, after) <= 0 || walname_parse(de->d_name, &wn) < 0 ||
		    (wn.type != WAL_SEGMENT && wn.type != WAL_HISTORY))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)	/* nothing ready: no array, and qsort wants one */
		qsort(names, n, sizeof(*names), cmp_str);
	/* The first max the spool does not record yet, in order. */
	for (i = 0; i < n; i++) {
		if (kept < (size_t)max && !(sp && spool_has_name(sp, names[i])))
			names[kept++] = names[i];
		else
			free(names[i]);
	}
	*out = names;
	return kept;
}

/*
 * More ready files for a background pusher, under run->mu.  The records it
 * leaves (and the pushes still under way) stay within twice the look-ahead,
 * so that the spool stays small and a pusher never runs far ahead of
 * PostgreSQL.  Returns how many jobs were added.
 */
static size_t refill(struct push_run *run)
{
	int ahead = run->cfg->wal_push_ahead;
	long room = 2L * ahead - (long)spool_count_records(run->sp) -
		    (long)(run->njobs - run->done);
	char **names;
	size_t n, k;

	if (room <= 0)
		return 0;
	if (run->done == run->njobs) {	/* all finished: start the list again */
		for (k = 0; k < run->njobs; k++)
			job_free(run->jobs[k], run->wr->n);
		free(run->jobs);
		run->jobs = NULL;
		run->njobs = run->next = run->done = 0;
	}
	n = ready_after(run->wal_dir, run->last_queued, room < ahead ? (int)room : ahead, run->sp,
			&names);
	for (k = 0; k < n; k++) {
		char *p = wal_path(run, names[k]);

		push_run_add(run, push_job_new(names[k], p, run->wr->n));
		free(p);
		free(run->last_queued);
		run->last_queued = names[k];
	}
	free(names);
	return n;
}

/* The next job for a worker, or NULL when the run is over. */
static struct push_job *take(struct push_run *run)
{
	struct push_job *j = NULL;
	uint64_t now;
	bool over = false;

	for (;;) {
		pthread_mutex_lock(&run->mu);
		if (run->next >= run->njobs && run->refill && !run->stop)
			refill(run);
		if (run->next < run->njobs) {
			j = run->jobs[run->next++];
			run->idle_since_ms = 0;
		} else if (!run->refill || run->stop) {
			over = true;
		} else if (run->done == run->njobs) {
			/* Nothing queued, nothing under way: linger a little. */
			now = push_now_ms();
			if (!run->idle_since_ms)
				run->idle_since_ms = now;
			over = now - run->idle_since_ms >= PUSHER_LINGER_MS;
		}
		pthread_mutex_unlock(&run->mu);
		if (j || over)
			return j;
		push_sleep_ms(PUSHER_POLL_MS);
	}
}

static void *worker(void *p)
{
	struct push_run *run = p;
	struct push_job *j;

	while ((j = take(run)) != NULL) {
		run_job(run, j);
		job_done(run, j);
	}
	return NULL;
}

static unsigned cpu_count(const struct pgk_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned c = cfg->jobs > 0 ? (unsigned)cfg->jobs : (unsigned)(cores > 2 ? cores : 2);

	return c > PUSH_CPU_MAX ? PUSH_CPU_MAX : c;
}

void push_run_jobs(struct push_run *run)
{
	size_t nw, i;
	pthread_t *tids;
	bool *started;

	/* Twice as many jobs as sealing slots: half of them wait on the store. */
	run->cpu = cpu_count(run->cfg);
	nw = 2 * (size_t)run->cpu;

	if (!run->refill && nw > run->njobs)
		nw = run->njobs;
	tids = xzalloc(nw * sizeof(*tids));
	started = xzalloc(nw * sizeof(*started));
	pthread_mutex_init(&run->mu, NULL);
	pthread_cond_init(&run->cv, NULL);
	for (i = 1; i < nw; i++)
		started[i] = pthread_create(&tids[i], NULL, worker, run) == 0;
	worker(run);
	for (i = 1; i < nw; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	pthread_cond_destroy(&run->cv);
	pthread_mutex_destroy(&run->mu);
	free(tids);
	free(started);
}

void push_run_free(struct push_run *run)
{
	size_t k;

	for (k = 0; k < run->njobs; k++)
		job_free(run->jobs[k], run->wr->n);
	free(run->jobs);
	free(run->last_queued);
	free(run->wal_dir);
}

/* Every failing repository gets its own line; the first is the error. */
static int report(const struct push_job *j, size_t nrepos)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < nrepos; i++) {
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

/*
 * The push in this process: the asked file and the ready ones after it, on
 * a few threads; for files a background pusher does not take (history,
 * .backup, .partial), for calls without a spool, and as the fallback.
 */
int push_here(struct wal_repos *wr, const struct pgk_config *cfg, const struct spool *sp,
	      const char *path, const char *base)
{
	struct push_run run = { 0 };
	struct push_job *j;
	char **ahead = NULL;
	size_t nahead, k;
	int rc;

	run.wr = wr;
	run.cfg = cfg;
	run.sp = sp->dir ? sp : NULL;
	run.notify_fd = -1;
	run.wal_dir = push_dir_of(path);
	j = push_job_new(base, path, wr->n);
	j->asked = true;
	push_run_add(&run, j);
	/* Check the file before the (slow) key unwrapping: bad input fails fast. */
	rc = push_job_check(j, &run.sysid);
	if (rc < 0)
		goto out_free;
	/* Without a cluster to check them against, push nothing ahead. */
	nahead = run.sysid && run.sp ? ready_after(run.wal_dir, base, cfg->wal_push_ahead, run.sp,
						   &ahead) : 0;
	for (k = 0; k < nahead; k++) {
		char *p = wal_path(&run, ahead[k]);

		push_run_add(&run, push_job_new(ahead[k], p, wr->n));
		free(p);
		free(ahead[k]);
	}
	free(ahead);
	wal_repos_open_all(wr, run.sysid);
	push_run_jobs(&run);
	rc = report(j, wr->n);
	if (rc == 0 && nahead)
		pgk_log_debug("%s archived, with %zu ready file(s) after it", base, nahead);
out_free:
	push_run_free(&run);
	return rc;
}

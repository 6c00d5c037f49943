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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/wal_repos.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walmeta.h"
#include "pg/walname.h"
#include "repo/object.h"
#include "repo/repo.h"
#include "repo/store.h"
#include "repo/spool.h"

/* The largest segment PostgreSQL makes; history and .backup files are tiny. */
#define WAL_FILE_MAX WAL_SEG_SIZE_MAX
/* Records kept at most: the look-ahead of two calls, and some slack. */
#define SPOOL_MAX(ahead) (2 * (size_t)(ahead) + 16)
/* Files sealed at once, at most (one per core). */
#define PUSH_CPU_MAX 4
/* Sealed objects held at once, being sealed or stored (see cpu_acquire). */
#define PUSH_SEALED_BUDGET ((uint64_t)40 << 20)

/*
 * The stamp a spool record may carry for what was read: only when stat
 * says the same before and after the read, and the file's last change is
 * older than the read by more than the clock's granularity, so that any
 * later change shows as a different stamp.
 */
#define STAMP_MARGIN_NS 50000000LL

static bool stamp_eligible(const struct stat *st, const struct timespec *t0)
{
	long long age = ((long long)t0->tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
			(t0->tv_nsec - st->st_ctim.tv_nsec);

	return age > STAMP_MARGIN_NS;
}

static void stamp_after_read(int fd, const struct stat *before, const struct timespec *t0,
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
	if (stamp_eligible(&st, t0))
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
static int open_wal_file(const char *path, struct stat *st)
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

/* Read the whole file, for a comparison with what a store already holds. */
static int read_wal_file(const char *path, struct pgk_buf *out)
{
	struct stat st;
	int fd, rc;

	fd = open_wal_file(path, &st);
	if (fd < 0)
		return fd;
	buf_reset(out);
	buf_reserve(out, (size_t)st.st_size);
	rc = pread_full(fd, out->data, (size_t)st.st_size, 0, path);
	if (rc == 0)
		out->len = (size_t)st.st_size;
	close(fd);
	return rc;
}

/*
 * A segment must say, in its first page, that it is what its name says: the
 * size PostgreSQL was built for and the address of that very segment.  The
 * system identifier is returned for the repository's check.
 */
static int check_segment(const struct wal_name *wn, const void *head, size_t file_size,
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

/* The object exists: the push succeeds only if it holds exactly the file's bytes. */
static int compare_stored(struct repo *r, const char *key, const char *path)
{
	struct pgk_buf stored = PGK_BUF_INIT, data = PGK_BUF_INIT;
	int rc;

	rc = read_wal_file(path, &data);
	if (rc < 0)
		goto out_free;
	rc = repo_get(r, key, OBJ_WAL, &stored);
	if (rc < 0) {
		pgk_error_wrap(rc, "object %s exists but cannot be read back to compare", key);
		goto out_free;
	}
	if (stored.len != data.len || memcmp(stored.data, data.data, data.len) != 0) {
		rc = pgk_error(PGKEEP_EEXISTS, "object %s exists with different content", key);
		goto out_free;
	}
	pgk_log_info("%s already archived with identical content in repository %s", key, r->name);
out_free:
	buf_free(&stored);
	buf_free(&data);
	return rc;
}

/* One file to push: the one asked for, or a ready one after it. */
struct push_job {
	char *name;
	char *path;
	char key[WAL_KEY_MAX];
	struct wal_name wn;
	bool checked;		/* job_check passed */
	bool by_stamp;		/* the record will vouch by stamp: no SHA-256 needed */
	int fd;			/* open while the job runs */
	uint64_t size;
	char hash[SPOOL_HASH_HEX + 1];
	char stamp[SPOOL_STAMP_MAX];	/* of the file read, or "" */
	bool asked;		/* the file this call was made for */
	int *rc;		/* per repository */
	char **msg;		/* per repository, on failure */
};

/*
 * A run of pushes on a few worker threads.  In the foreground the jobs are
 * fixed when the run starts; in a background pusher the workers take more
 * ready files from PostgreSQL's archive_status as they go, while the spool
 * has room for their records.
 */
struct push_run {
	struct wal_repos *wr;
	const struct pgk_config *cfg;
	const struct spool *sp;	/* where look-ahead pushes are recorded; NULL: nowhere */
	uint64_t sysid;		/* the cluster every segment must belong to */
	char *wal_dir;		/* where the ready files are ("" for the current directory) */
	bool refill;		/* background: keep taking ready files */
	int notify_fd;		/* background: where the asked file's result goes, then -1 */
	struct push_job **jobs;
	size_t njobs;
	size_t next;		/* next job to take */
	size_t done;		/* jobs finished */
	char *last_queued;	/* refill takes names after this one */
	bool stop;		/* a push failed: take no more */
	uint64_t idle_since_ms;	/* when the workers last had nothing to do, 0 if busy */
	size_t pushed, failed;
	unsigned cpu, cpu_busy;	/* sealing slots, and how many are taken */
	uint64_t held;		/* sealed bytes held (see cpu_acquire) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* A background pusher stays this long for more ready files before it exits. */
#define PUSHER_LINGER_MS 1500
/* ... and looks for them this often. */
#define PUSHER_POLL_MS 20
/* A call waits at most this long for a pusher before it pushes its file itself. */
#define WAIT_MAX_MS 120000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

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

static struct push_job *job_new(const char *name, const char *path, size_t nrepos)
{
	struct push_job *j = xzalloc(sizeof(*j));

	j->name = xstrdup(name);
	j->path = xstrdup(path);
	j->fd = -1;
	walname_key(name, j->key, sizeof(j->key));
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
static int job_check(struct push_job *j, uint64_t *sysid)
{
	uint8_t head[WAL_LONG_HEADER_LEN];
	struct stat st;
	ssize_t n;
	int rc = 0;

	*sysid = 0;
	if (j->fd < 0) {
		j->fd = open_wal_file(j->path, &st);
		if (j->fd < 0)
			return j->fd;
		j->size = (uint64_t)st.st_size;
	}
	if (j->wn.type == WAL_SEGMENT || j->wn.type == WAL_PARTIAL) {
		n = pread(j->fd, head, sizeof(head), 0);
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot read %s: %s", j->path, strerror(errno));
		rc = check_segment(&j->wn, head, (size_t)n < sizeof(head) ? (size_t)n : j->size,
				   j->path, sysid);
	} else {
		rc = check_meta(j);
	}
	if (rc == 0)
		j->checked = true;
	return rc;
}

static void run_add(struct push_run *run, struct push_job *j)
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
static void cpu_acquire(struct push_run *run, uint64_t want)
{
	pthread_mutex_lock(&run->mu);
	while (run->cpu_busy >= run->cpu ||
	       (run->held && run->held + want > PUSH_SEALED_BUDGET))
		pthread_cond_wait(&run->cv, &run->mu);
	run->cpu_busy++;
	run->held += want;
	pthread_mutex_unlock(&run->mu);
}

static void cpu_release(struct push_run *run, uint64_t want, uint64_t keep)
{
	pthread_mutex_lock(&run->mu);
	run->cpu_busy--;
	run->held -= want - keep;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

static void held_release(struct push_run *run, uint64_t keep)
{
	pthread_mutex_lock(&run->mu);
	run->held -= keep;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

/* Store j in repository r: if absent, else only if identical. */
static int push_to(struct push_run *run, struct repo *r, struct push_job *j, size_t i)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	uint64_t want = j->size + OBJ_OVERHEAD + (j->size >> 7) + 65536;
	uint8_t md[32];
	int rc;

	cpu_acquire(run, want);
	rc = obj_seal_fd(&r->keys, OBJ_WAL, j->key, r->compress_level, j->fd, j->size, j->path, &obj,
			 j->by_stamp ? NULL : md);
	cpu_release(run, want, obj.len);
	/* The hash of what is pushed is what a spool record vouches for. */
	if (rc == 0 && i == 0 && !j->by_stamp)
		spool_hash_hex(md, j->hash);
	if (rc == 0)
		rc = store_put(r->store, j->key, obj.data, obj.len, PGKEEP_PUT_IF_ABSENT);
	held_release(run, obj.len);
	buf_free(&obj);
	if (rc == PGKEEP_EEXISTS)
		rc = compare_stored(r, j->key, j->path);
	else if (rc == 0)
		pgk_log_debug("archived %s as %s in repository %s (%llu bytes)", j->path, j->key,
			      r->name, (unsigned long long)j->size);
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
		rc = job_check(j, &sysid);
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
	j->by_stamp = stamp_eligible(&before, &t0);
	push_everywhere(run, j);
	stamp_after_read(j->fd, &before, &t0, j->stamp);
	if (j->by_stamp) {
		if (j->stamp[0])
			spool_hash(j->stamp, strlen(j->stamp), j->hash);
		else
			j->hash[0] = '\0';	/* changed while read: no record */
	}
	close(j->fd);
	j->fd = -1;
}

/*
 * The result of the asked file, for the call waiting on the other end of
 * the pipe: the first failing repository's code, then one message per line.
 */
static void notify(struct push_run *run, const struct push_job *j)
{
	struct pgk_buf out = PGK_BUF_INIT;
	char head[32];
	size_t i, off = 0;
	ssize_t n;
	int rc = 0, fd;

	for (i = 0; i < run->wr->n; i++) {
		if (j->rc[i] >= 0)
			continue;
		if (rc == 0)
			rc = j->rc[i];
		buf_append(&out, j->msg[i], strlen(j->msg[i]));
		buf_append(&out, "\n", 1);
	}
	snprintf(head, sizeof(head), "%d\n", rc);
	n = write(run->notify_fd, head, strlen(head));
	while (n >= 0 && off < out.len) {
		n = write(run->notify_fd, out.data + off, out.len - off);
		if (n > 0)
			off += (size_t)n;
	}
	buf_free(&out);
	close(run->notify_fd);
	run->notify_fd = -1;
	/* The call has returned: nobody reads what this process would print. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
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
		notify(run, j);
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

		run_add(run, job_new(names[k], p, run->wr->n));
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
			now = now_ms();
			if (!run->idle_since_ms)
				run->idle_since_ms = now;
			over = now - run->idle_since_ms >= PUSHER_LINGER_MS;
		}
		pthread_mutex_unlock(&run->mu);
		if (j || over)
			return j;
		sleep_ms(PUSHER_POLL_MS);
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

static void run_jobs(struct push_run *run)
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

static void run_free(struct push_run *run)
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
	if (wn.type == WAL_SEGMENT && check_segment(&wn, map, (size_t)st.st_size, path, &sysid) < 0) {
		munmap(map, (size_t)st.st_size);
		map = NULL;
		goto out_close;
	}
	*len = (size_t)st.st_size;
out_close:
	close(fd);
	return map;
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
static bool spool_records(const struct spool *sp, const char *path, const char *name)
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

/* The directory part of path, "" when there is none. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

/*
 * The push in this process: the asked file and the ready ones after it, on
 * a few threads; for files a background pusher does not take (history,
 * .backup, .partial), for calls without a spool, and as the fallback.
 */
static int push_here(struct wal_repos *wr, const struct pgk_config *cfg, const struct spool *sp,
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
	run.wal_dir = dir_of(path);
	j = job_new(base, path, wr->n);
	j->asked = true;
	run_add(&run, j);
	/* Check the file before the (slow) key unwrapping: bad input fails fast. */
	rc = job_check(j, &run.sysid);
	if (rc < 0)
		goto out_free;
	/* Without a cluster to check them against, push nothing ahead. */
	nahead = run.sysid && run.sp ? ready_after(run.wal_dir, base, cfg->wal_push_ahead, run.sp,
						   &ahead) : 0;
	for (k = 0; k < nahead; k++) {
		char *p = wal_path(&run, ahead[k]);

		run_add(&run, job_new(ahead[k], p, wr->n));
		free(p);
		free(ahead[k]);
	}
	free(ahead);
	wal_repos_open_all(wr, run.sysid);
	run_jobs(&run);
	rc = report(j, wr->n);
	if (rc == 0 && nahead)
		pgk_log_debug("%s archived, with %zu ready file(s) after it", base, nahead);
out_free:
	run_free(&run);
	return rc;
}

/* What a background pusher did, for operators and the benchmark. */
static void write_stats(const struct spool *sp, const struct push_run *run, uint64_t t0)
{
	struct rusage ru;
	FILE *f;
	int fd;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	fd = openat(sp->dfd, "tmp.pusher-stats", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "pid %ld\npushed %zu\nfailed %zu\nmax_rss_kib %ld\ncpu_ms %ld\nwall_ms %llu\n",
		(long)getpid(), run->pushed, run->failed, ru.ru_maxrss,
		(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
			(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000,
		(unsigned long long)(now_ms() - t0));
	if (fclose(f) == 0)
		renameat(sp->dfd, "tmp.pusher-stats", sp->dfd, "pusher.stats");
}

/*
 * The background pusher (a child of the call that started it, in a session
 * of its own): pushes the asked file first and tells the call, then goes on
 * with the ready files after it while PostgreSQL's archiver calls for them,
 * each call returning as soon as the spool records its file.
 */
static void pusher_main(struct push_run *run, const struct spool *sp)
{
	uint64_t t0 = now_ms();

	/* The call may be gone (killed): its pipe then fails, quietly. */
	signal(SIGPIPE, SIG_IGN);
	setsid();
	wal_repos_open_all(run->wr, run->sysid);
	run_jobs(run);
	if (run->notify_fd >= 0)	/* never taken: cannot happen, but say so */
		close(run->notify_fd);
	write_stats(sp, run, t0);
}

/* The call's side: wait for the asked file's result from the pusher. */
static int await_result(int fd, const char *base)
{
	struct pgk_buf in = PGK_BUF_INIT;
	char buf[4096], *line, *end;
	ssize_t n;
	int rc;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_append(&in, buf, (size_t)n);
	}
	buf_append(&in, "", 1);
	line = (char *)in.data;
	end = strchr(line, '\n');
	if (!end) {
		rc = pgk_error(PGKEEP_EIO, "the background push of %s ended without a result", base);
		goto out_free;
	}
	*end = '\0';
	rc = (int)strtol(line, NULL, 10);
	if (rc >= 0) {
		rc = 0;
		goto out_free;
	}
	/* One line per failing repository; the first is the error. */
	line = end + 1;
	end = strchr(line, '\n');
	if (end)
		*end = '\0';
	rc = pgk_error(rc, "%s", *line ? line : "the background push failed");
	while (end && *(line = end + 1)) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		pgk_log_error("%s", line);
	}
out_free:
	buf_free(&in);
	return rc;
}

/*
 * Holding the pusher lock: load the asked file (bad input fails here, in
 * the call), then hand it to a background pusher and wait for its result.
 */
static int push_background(struct wal_repos *wr, const struct pgk_config *cfg,
			   const struct spool *sp, const char *path, const char *base, int lockfd)
{
	struct push_run run = { 0 };
	struct push_job *j;
	int p[2], rc;
	pid_t pid;

	run.wr = wr;
	run.cfg = cfg;
	run.sp = sp;
	run.refill = true;
	run.wal_dir = dir_of(path);
	run.last_queued = xstrdup(base);
	j = job_new(base, path, wr->n);
	j->asked = true;
	run_add(&run, j);
	rc = job_check(j, &run.sysid);
	if (rc < 0) {
		close(lockfd);
		goto out_free;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		pgk_log_debug("cannot make a pipe (%s); pushing in this process", strerror(errno));
		goto here;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		pgk_log_debug("cannot fork (%s); pushing in this process", strerror(errno));
		close(p[0]);
		close(p[1]);
		goto here;
	}
	if (pid == 0) {
		/* The pusher keeps lockfd: the lock lasts as long as it does. */
		close(p[0]);
		run.notify_fd = p[1];
		pusher_main(&run, sp);
		_exit(0);
	}
	close(p[1]);
	close(lockfd);
	rc = await_result(p[0], base);
	close(p[0]);
	if (rc == 0)
		pgk_log_debug("%s archived by a background pusher (pid %ld)", base, (long)pid);
	goto out_free;
here:
	close(lockfd);
	run_free(&run);
	return push_here(wr, cfg, sp, path, base);
out_free:
	run_free(&run);
	return rc;
}

enum wait_result { WAIT_RECORDED, WAIT_LOCKED, WAIT_GAVE_UP };

/*
 * Another call's pusher holds the lock: wait until the spool records this
 * very file (the pusher takes every ready file in turn), or until the lock
 * is free, or, should the pusher be stuck, give up and push it here.
 */
static enum wait_result wait_for_pusher(const struct spool *sp, int lockfd, const char *path,
					const char *base)
{
	uint64_t t0 = now_ms();
	struct pollfd pfd;
	char ev[4096];
	int ifd;

	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd >= 0 && inotify_add_watch(ifd, sp->dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(ifd);
		ifd = -1;
	}
	for (;;) {
		if (spool_has_name(sp, base) && spool_records(sp, path, base))
			break;
		if (flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
			if (ifd >= 0)
				close(ifd);
			return WAIT_LOCKED;
		}
		if (now_ms() - t0 > WAIT_MAX_MS) {
			pgk_log_warning("the background pusher has not stored %s in %d s; pushing it here",
					base, WAIT_MAX_MS / 1000);
			if (ifd >= 0)
				close(ifd);
			return WAIT_GAVE_UP;
		}
		if (ifd >= 0) {
			pfd = (struct pollfd){ .fd = ifd, .events = POLLIN };
			if (poll(&pfd, 1, PUSHER_POLL_MS) > 0)
				while (read(ifd, ev, sizeof(ev)) > 0)
					;
		} else {
			sleep_ms(PUSHER_POLL_MS / 4);
		}
	}
	if (ifd >= 0)
		close(ifd);
	pgk_log_debug("%s archived by the background pusher (spool record, after %llu ms)", base,
		      (unsigned long long)(now_ms() - t0));
	return WAIT_RECORDED;
}

/* One lock per WAL directory: its ready files are pushed by one pusher at a time. */
static int open_pusher_lock(const struct spool *sp, const char *path)
{
	char *dir = dir_of(path), *real, *name, hash[SPOOL_HASH_HEX + 1];
	int fd;

	real = realpath(*dir ? dir : ".", NULL);
	spool_hash(real ? real : dir, strlen(real ? real : dir), hash);
	name = xasprintf("pusher-%.16s.lock", hash);
	fd = openat(sp->dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		pgk_log_debug("cannot open %s/%s: %s", sp->dir, name, strerror(errno));
	free(name);
	free(real);
	free(dir);
	return fd;
}

static int push(const struct pgk_globals *g, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct wal_repos wr;
	struct pgk_config cfg;
	struct wal_name wn;
	struct spool sp;
	char key[WAL_KEY_MAX];
	int rc, lockfd = -1;

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

	if (sp.dir && spool_records(&sp, path, base)) {
		/* Pushed ahead by an earlier call, these very bytes, everywhere. */
		pgk_log_debug("%s already archived (spool record)", base);
		goto out_prune;
	}
	/* Segments go through a background pusher; the rare other files do not. */
	if (!sp.dir || walname_parse(base, &wn) < 0 || wn.type != WAL_SEGMENT ||
	    (lockfd = open_pusher_lock(&sp, path)) < 0) {
		rc = push_here(&wr, &cfg, &sp, path, base);
		goto out_prune;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		switch (wait_for_pusher(&sp, lockfd, path, base)) {
		case WAIT_RECORDED:
			goto out_prune;
		case WAIT_GAVE_UP:
			rc = push_here(&wr, &cfg, &sp, path, base);
			goto out_prune;
		case WAIT_LOCKED:
			break;
		}
		/* The last pusher may have stored it just before it left. */
		if (spool_records(&sp, path, base)) {
			pgk_log_debug("%s already archived (spool record)", base);
			goto out_prune;
		}
	}
	rc = push_background(&wr, &cfg, &sp, path, base, lockfd);
	lockfd = -1;	/* closed there */
out_prune:
	if (lockfd >= 0)
		close(lockfd);
	if (sp.dir)
		spool_prune(&sp, base, SPOOL_MAX(cfg.wal_push_ahead));
	spool_close(&sp);
	wal_repos_free(&wr);
out_config:
	config_free(&cfg);
	return rc;
}

static const struct opt_arg wal_push_args[] = {
	{ "PATH", "the file to archive (%p)" },
	{ NULL, NULL },
};

const struct opt_spec wal_push_cli = {
	.command = "wal-push",
	.summary = "archive a WAL file (archive_command = 'pgkeep wal-push %p')",
	.synopsis = "PATH",
	.args = wal_push_args,
	.min_args = 1,
	.max_args = 1,
};

int cmd_wal_push(const struct pgk_globals *g, int argc, char **argv)
{
	struct opt_args pos;

	if (opt_parse(&wal_push_cli, argc, argv, NULL, &pos) < 0)
		return opt_fail(&wal_push_cli);
	if (push(g, pos.argv[0]) < 0) {
		pgk_log_error("%s", pgk_errmsg());
		return PGK_EXIT_ERROR;
	}
	return PGK_EXIT_OK;
}

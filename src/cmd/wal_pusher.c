/*
 * The background pusher: a child of the call that started it, in a session
 * of its own, that pushes the asked file, tells the call, then goes on with
 * the ready files after it; and the side of a call that waits for it,
 * through a pipe or through the spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/wal_push.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

/* A call waits at most this long for a pusher before it pushes its file itself. */
#define WAIT_MAX_MS 120000

/*
 * The result of the asked file, for the call waiting on the other end of
 * the pipe: the first failing repository's code, then one message per line.
 */
void pusher_notify(struct push_run *run, const struct push_job *j)
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
		(unsigned long long)(push_now_ms() - t0));
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
	uint64_t t0 = push_now_ms();

	/* The call may be gone (killed): its pipe then fails, quietly. */
	signal(SIGPIPE, SIG_IGN);
	setsid();
	wal_repos_open_all(run->wr, run->sysid);
	push_run_jobs(run);
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
int push_background(struct wal_repos *wr, const struct pgk_config *cfg,
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
	run.wal_dir = push_dir_of(path);
	run.last_queued = xstrdup(base);
	j = push_job_new(base, path, wr->n);
	j->asked = true;
	push_run_add(&run, j);
	rc = push_job_check(j, &run.sysid);
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
	push_run_free(&run);
	return push_here(wr, cfg, sp, path, base);
out_free:
	push_run_free(&run);
	return rc;
}

/*
 * Another call's pusher holds the lock: wait until the spool records this
 * very file (the pusher takes every ready file in turn), or until the lock
 * is free, or, should the pusher be stuck, give up and push it here.
 */
enum wait_result wait_for_pusher(const struct spool *sp, int lockfd, const char *path,
				 const char *base)
{
	uint64_t t0 = push_now_ms();
	struct pollfd pfd;
	char ev[4096];
	int ifd;

	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd >= 0 && inotify_add_watch(ifd, sp->dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(ifd);
		ifd = -1;
	}
	for (;;) {
		if (spool_has_name(sp, base) && push_spool_records(sp, path, base))
			break;
		if (flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
			if (ifd >= 0)
				close(ifd);
			return WAIT_LOCKED;
		}
		if (push_now_ms() - t0 > WAIT_MAX_MS) {
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
			push_sleep_ms(PUSHER_POLL_MS / 4);
		}
	}
	if (ifd >= 0)
		close(ifd);
	pgk_log_debug("%s archived by the background pusher (spool record, after %llu ms)", base,
		      (unsigned long long)(push_now_ms() - t0));
	return WAIT_RECORDED;
}

/* One lock per WAL directory: its ready files are pushed by one pusher at a time. */
int open_pusher_lock(const struct spool *sp, const char *path)
{
	char *dir = push_dir_of(path), *real, *name, hash[SPOOL_HASH_HEX + 1];
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

/*
 * The parts of wal-push, shared by its files: the WAL file checks
 * (wal_push_file.c), a run of pushes on worker threads (wal_push_run.c), the
 * background pusher and the calls that wait for it (wal_pusher.c), and the
 * command itself (wal_push.c).
 */
#ifndef PGK_CMD_WAL_PUSH_H
#define PGK_CMD_WAL_PUSH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd/wal_repos.h"
#include "common/config.h"
#include "local/spool.h"
#include "pg/walname.h"
#include "repo/layout.h"

/* A background pusher stays this long for more ready files before it exits. */
#define PUSHER_LINGER_MS 1500

/* ... and looks for them this often. */
#define PUSHER_POLL_MS 20

/* One file to push: the one asked for, or a ready one after it. */
struct push_job {
	char *name;
	char *path;
	char key[LAYOUT_WAL_KEY_MAX];
	struct wal_name wn;
	bool checked;		/* push_job_check passed */
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
	uint64_t held;		/* sealed bytes held (see cpu_acquire, wal_push_run.c) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* ---------------------------------------------------------- wal_push_file.c */

/*
 * Would a spool record vouch for the file by its stamp?  Only when its last
 * change (st) is older than the read that starts at t0 by more than the
 * clock's granularity.
 */
bool push_stamp_eligible(const struct stat *st, const struct timespec *t0);
/* The stamp of the file read through fd, or "" when it changed since before. */
void push_stamp_after_read(int fd, const struct stat *before, const struct timespec *t0,
			   char *stamp);
/* Open a file to archive: a regular file no larger than any WAL file. */
int push_open_wal_file(const char *path, struct stat *st);
/* A segment's first page (head) must say it is the segment wn names; *sysid from it. */
int push_check_segment(const struct wal_name *wn, const void *head, size_t file_size,
		       const char *path, uint64_t *sysid);
/* Does the spool record exactly the file at path, called name? */
bool push_spool_records(const struct spool *sp, const char *path, const char *name);
/* The directory part of path, "" when there is none. */
char *push_dir_of(const char *path);
uint64_t push_now_ms(void);
void push_sleep_ms(unsigned ms);

/* ----------------------------------------------------------- wal_push_run.c */

struct push_job *push_job_new(const char *name, const char *path, size_t nrepos);
/*
 * Open and check the file (a segment's first page says what it is); it
 * stays open for the push.  sysid 0 when it carries none (history, .backup).
 */
int push_job_check(struct push_job *j, uint64_t *sysid);
void push_run_add(struct push_run *run, struct push_job *j);
/* Run the jobs on worker threads until none is left (or, refilling, for a while). */
void push_run_jobs(struct push_run *run);
void push_run_free(struct push_run *run);
/*
 * The push in this process: the asked file and the ready ones after it, on
 * a few threads; for files a background pusher does not take (history,
 * .backup, .partial), for calls without a spool, and as the fallback.
 */
int push_here(struct wal_repos *wr, const struct pgk_config *cfg, const struct spool *sp,
	      const char *path, const char *base);

/* -------------------------------------------------------------- wal_pusher.c */

/* Send the asked file's result to the waiting call, then let go of it. */
void pusher_notify(struct push_run *run, const struct push_job *j);
/*
 * Holding the pusher lock: load the asked file (bad input fails here, in
 * the call), then hand it to a background pusher and wait for its result.
 * lockfd is closed (or passed on to the pusher).
 */
int push_background(struct wal_repos *wr, const struct pgk_config *cfg,
		    const struct spool *sp, const char *path, const char *base, int lockfd);

enum wait_result { WAIT_RECORDED, WAIT_LOCKED, WAIT_GAVE_UP };

/*
 * Another call's pusher holds the lock: wait until the spool records this
 * very file, or until the lock is free, or give up.
 */
enum wait_result wait_for_pusher(const struct spool *sp, int lockfd, const char *path,
				 const char *base);
/* The lock of path's WAL directory, or -1. */
int open_pusher_lock(const struct spool *sp, const char *path);

#endif

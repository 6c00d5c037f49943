/*
 * backup: stream the server's base backup (taken over a replication
 * connection) or pg_dump's archive through the pipeline into the repository.  A base backup is finished only once every
 * WAL segment from its start to its stop is in the repository; only then is
 * the manifest written, so a backup that exists is a backup that restores.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/basebackup.h"
#include "pg/child.h"
#include "pg/libarchive_api.h"
#include "pg/pgconn.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/lock.h"
#include "repo/manifest.h"

/* The most one read() takes: smaller reads move fewer bytes after a cut. */
#define READ_BUF (256 * 1024)
#define PIPE_SIZE (1024 * 1024)
/*
 * An empty pipe is given this long to fill before we sleep in poll(): the
 * child writes 30 KiB at a time, and waking for each write cost more CPU
 * (a context switch on each side) than the data took to read.
 */
#define PIPE_GATHER_NS (500 * 1000)
/* backup_label is the tar's first member and a few hundred bytes long. */
#define HEAD_BUF (64 * 1024)
#define DEFAULT_ARCHIVE_TIMEOUT 300
#define LOCK_WAIT 60

struct backup_opts {
	enum backup_type type;
	const char *db;
	bool all;
	const char *label;
	enum progress_mode progress;
	int jobs;			/* --jobs, 0 when not given */
	const char *test_program;	/* see base_from_program; NULL normally */
};

struct backup_run {
	struct pgk_config cfg;
	struct repo *repo;
	struct manifest m;
	struct manifest ref;		/* the previous backup, for deltas */
	bool have_ref;
	int jobs;
	struct pg_server_info info;
	struct timespec t0;
	struct progress *progress;	/* NULL: nothing shown */
};

static int archive_timeout(const struct backup_run *b);

/* SIGINT / SIGTERM: stop the child or close the replication connection
 * and leave no backup, instead of dying halfway. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int check_interrupted(void)
{
	if (!interrupted)
		return 0;
	return pgk_error(PGKEEP_EIO, "interrupted by signal %d", (int)interrupted);
}

/*
 * read(), looking for signals while the child is silent.  The pipe is
 * non-blocking: while data flows, one read() per chunk of it and no poll().
 */
static ssize_t read_child(struct pg_child *c, bool gather, void *buf, size_t len, int *rc)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	bool waited = !gather;
	ssize_t n;
	int r;

	for (;;) {
		*rc = check_interrupted();
		if (*rc < 0)
			return -1;
		n = read(c->fd, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return n;
		if (!waited) {
			waited = true;
			nanosleep(&(struct timespec){ 0, PIPE_GATHER_NS }, NULL);
			continue;
		}
		r = poll(&pfd, 1, 1000);
		if (r < 0 && errno != EINTR) {
			*rc = pgk_error(PGKEEP_EIO, "cannot poll %s: %s", c->name, strerror(errno));
			return -1;
		}
	}
}

/*
 * A pipe of a few hundred KiB instead of 64 KiB: the child and we each wake
 * up for a good part of a chunk, not for every 64 KiB.  The system may
 * refuse (pipe-max-size, per-user pipe limits); the default pipe works too,
 * but is too small to leave filling (PIPE_GATHER_NS): true when it may be.
 */
static bool widen_pipe(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
#if defined(F_SETPIPE_SZ) && defined(F_GETPIPE_SZ)
	(void)fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE);
	return fcntl(fd, F_GETPIPE_SZ) >= PIPE_SIZE / 2;
#else
	return false;
#endif
}

/* ---------------------------------------------------------------- streaming a child */

/*
 * Copy the child's stdout into a new stream of the manifest.  head, when
 * not NULL, receives the stream's first HEAD_BUF bytes.
 */
static int stream_child(struct backup_run *b, char *const argv[], char **envp,
			const char *stream_name, struct pgk_buf *head)
{
	struct manifest_stream *s = manifest_add_stream(&b->m, stream_name);
	struct stream_writer *w = NULL;
	struct pg_child c;
	bool gather;
	size_t space;
	void *buf;
	ssize_t n;
	int rc;

	rc = stream_writer_open(&w, b->repo, s,
				backup_ref_stream(b->have_ref ? &b->ref : NULL, stream_name),
				b->jobs);
	if (rc < 0)
		return rc;
	rc = child_start(&c, argv, envp, CHILD_PIPE_STDOUT);
	if (rc < 0)
		goto out_writer;
	gather = widen_pipe(c.fd);
	for (;;) {
		/* Straight into the chunk being filled: no copy of our own. */
		rc = stream_writer_buffer(w, &buf, &space);
		if (rc < 0)
			break;
		n = read_child(&c, gather, buf, space < READ_BUF ? space : READ_BUF, &rc);
		if (n < 0 && rc < 0)
			break;
		if (n < 0) {
			rc = pgk_error(PGKEEP_EIO, "cannot read from %s: %s", c.name,
				       strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (head && head->len < HEAD_BUF)
			buf_append(head, buf, (size_t)n < HEAD_BUF - head->len ?
					      (size_t)n : HEAD_BUF - head->len);
		rc = stream_writer_commit(w, (size_t)n);
		if (rc < 0)
			break;
		progress_add(b->progress, (uint64_t)n);
	}
	if (rc < 0) {
		child_abort(&c);
		goto out_writer;
	}
	/* The child's verdict first: a truncated stream is its failure, not ours. */
	rc = child_wait(&c);
	if (rc == 0)
		rc = stream_writer_finish(w);
out_writer:
	stream_writer_free(w);
	return rc;
}

/* ---------------------------------------------------------------- base backups */

/* The backup_label at the start of the base backup's tar. */
static int label_from_head(const struct pgk_buf *head, struct backup_label *bl)
{
	struct archive *a;
	struct archive_entry *e;
	char text[HEAD_BUF];
	la_ssize_t n;
	int rc;

	rc = libarchive_read_new(&a);
	if (rc < 0)
		return rc;
	rc = PGKEEP_ECORRUPT;
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, head->data, head->len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		pgk_error(rc, "the base backup does not start with a tar header: %s",
			  archive_error_string(a) ? archive_error_string(a) : "empty");
		goto out;
	}
	if (strcmp(archive_entry_pathname(e), "backup_label") != 0) {
		pgk_error(rc, "the base backup's tar starts with %s, not backup_label",
			  archive_entry_pathname(e));
		goto out;
	}
	n = archive_read_data(a, text, sizeof(text));
	if (n <= 0 || n != archive_entry_size(e)) {
		pgk_error(rc, "cannot read backup_label from the base backup's tar");
		goto out;
	}
	rc = backup_label_parse(bl, text, (size_t)n, false, "backup_label");
out:
	archive_read_free(a);
	return rc;
}

static int archive_timeout(const struct backup_run *b)
{
	return b->cfg.archive_timeout >= 0 ? b->cfg.archive_timeout : DEFAULT_ARCHIVE_TIMEOUT;
}

static int wal_missing_error(const struct backup_run *b, const char *name)
{
	return pgk_error(PGKEEP_EIO,
			 "WAL file %s needed by backup %s did not reach repository %s within "
			 "%d s: is archive_command set to pgkeep wal-push?",
			 name, b->m.id, b->repo->name, archive_timeout(b));
}

/*
 * Pauses between looks for WAL in the repository: short at first (with -X
 * none the server has usually waited for the archiver already, and
 * otherwise the archiver is a moment behind), longer while it stays away,
 * so that a slow archiver costs a remote store a handful of requests a
 * second, not dozens.
 */
#define POLL_FIRST_MS 10
#define POLL_MAX_MS 500

static int poll_pause(struct backup_run *b, const char *name, time_t deadline, int *ms)
{
	if (time(NULL) >= deadline)
		return wal_missing_error(b, name);
	if (check_interrupted() < 0)
		return PGKEEP_EIO;
	usleep((useconds_t)*ms * 1000);
	*ms = *ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : *ms * 2;
	return 0;
}

/* The backup history file, once the archiver has pushed it. */
static int wait_history(struct backup_run *b, const struct backup_label *start,
			struct backup_label *hist)
{
	char name[64], key[WAL_KEY_MAX];
	struct pgk_buf data = PGK_BUF_INIT;
	time_t deadline = time(NULL) + archive_timeout(b);
	int rc, ms = POLL_FIRST_MS;

	backup_history_name(name, sizeof(name), start->start_tli, start->start_lsn,
			    b->m.wal_seg_size);
	rc = walname_key(name, key, sizeof(key));
	if (rc < 0)
		return rc;
	pgk_log_info("waiting for %s", key);
	for (;;) {
		rc = repo_get(b->repo, key, OBJ_WAL, &data);
		if (rc != PGKEEP_ENOTFOUND)
			break;
		rc = poll_pause(b, name, deadline, &ms);
		if (rc < 0)
			return rc;
	}
	if (rc == 0)
		rc = backup_label_parse(hist, (const char *)data.data, data.len, true, key);
	buf_free(&data);
	if (rc == 0 && hist->start_lsn != start->start_lsn)
		rc = pgk_error(PGKEEP_ECORRUPT, "%s is for a backup starting at another LSN", key);
	return rc;
}

/*
 * Every segment from wal_start through wal_stop, in the repository.  The
 * newest first: wal-push stores segments ahead in parallel, but the
 * archiver hands them over in order, so once the last is there the others
 * nearly always are, and each is then looked at once.
 */
static int wait_segments(struct backup_run *b, uint64_t first, uint64_t last, uint32_t tli)
{
	char name[WAL_SEG_NAME_LEN + 1], key[WAL_KEY_MAX];
	time_t deadline = time(NULL) + archive_timeout(b);
	struct pgkeep_stat st;
	uint64_t segno, i;
	int rc, ms;

	for (i = 0; i <= last - first; i++) {
		segno = i == 0 ? last : first + i - 1;
		wal_segno_to_name(name, tli, segno, b->m.wal_seg_size);
		walname_key(name, key, sizeof(key));
		ms = POLL_FIRST_MS;
		for (;;) {
			rc = store_stat(b->repo->store, key, &st);
			if (rc != PGKEEP_ENOTFOUND)
				break;
			rc = poll_pause(b, name, deadline, &ms);
			if (rc < 0)
				return rc;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_cluster(struct backup_run *b)
{
	if (!basebackup_server_supported(b->info.version))
		return pgk_error(PGKEEP_EINVAL,
				 "PostgreSQL %d (server_version_num %d) is not supported for base "
				 "backups: pgkeep takes base backups of PostgreSQL "
				 BASEBACKUP_VERSIONS_TEXT, b->info.version / 10000, b->info.version);
	if (b->info.in_recovery)
		return pgk_error(PGKEEP_EINVAL,
				 "the server is a standby: pgkeep takes base backups of the primary "
				 "only (a standby archives no backup history file)");
	if (strcmp(b->info.archive_mode, "off") == 0)
		return pgk_error(PGKEEP_EINVAL,
				 "archive_mode is off: a base backup needs its WAL archived "
				 "(archive_mode = on, archive_command = 'pgkeep wal-push %%p')");
	if (!*b->info.archive_command && !*b->info.archive_library)
		return pgk_error(PGKEEP_EINVAL,
				 "archive_command is empty: a base backup needs its WAL archived "
				 "(archive_command = 'pgkeep wal-push %%p')");
	if (!strstr(b->info.archive_command, "pgkeep") && !*b->info.archive_library)
		pgk_log_warning("archive_command '%s' does not look like pgkeep wal-push; the "
				"backup waits for its WAL in repository %s",
				b->info.archive_command, b->repo->name);
	if (!wal_seg_size_valid(b->info.wal_seg_size))
		return pgk_error(PGKEEP_EINVAL, "the server reports a WAL segment size of %u",
				 b->info.wal_seg_size);
	return 0;
}

static int fill_wal_range(struct backup_run *b, const struct backup_label *bl,
			  const struct backup_label *hist, uint64_t *first, uint64_t *last)
{
	if (hist->stop_tli != bl->start_tli)
		return pgk_error(PGKEEP_EINVAL,
				 "backup %s started on timeline %u and stopped on %u; take it again",
				 b->m.id, bl->start_tli, hist->stop_tli);
	if (hist->stop_lsn <= bl->start_lsn)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s stops before it starts", b->m.id);
	b->m.timeline = bl->start_tli;
	b->m.start_lsn = bl->start_lsn;
	b->m.stop_lsn = hist->stop_lsn;
	*first = wal_lsn_to_segno(bl->start_lsn, b->m.wal_seg_size);
	/* The stop LSN may sit on a segment boundary: the last byte is before it. */
	*last = wal_lsn_to_segno(hist->stop_lsn - 1, b->m.wal_seg_size);
	wal_segno_to_name(b->m.wal_start, bl->start_tli, *first, b->m.wal_seg_size);
	wal_segno_to_name(b->m.wal_stop, bl->start_tli, *last, b->m.wal_seg_size);
	if (strcmp(b->m.wal_start, bl->start_wal) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "backup_label names segment %s for LSN %s",
				 bl->start_wal, b->m.wal_start);
	return 0;
}

/*
 * The stop by the server's clock, read once the server has sent the whole backup: every
 * commit before the backup's end bears an earlier timestamp of that same
 * clock, so any recovery target from this instant on is past the point
 * where the restored cluster becomes consistent.
 */
static void record_stop(struct backup_run *b, struct pgconn *pc)
{
	int64_t us = backup_now_us();

	if (pgconn_clock_us(pc, &us) < 0)
		pgk_log_warning("backup %s: cannot read the server's clock (%s): its stop time is "
				"this host's", b->m.id, pgk_errmsg());
	if (us < manifest_start_us(&b->m))
		us = manifest_start_us(&b->m);
	manifest_set_stop(&b->m, us);
}

/*
 * Some time may pass between the backup's end on the server and the end of
 * the stream here.  The history file's STOP TIME, whole seconds of
 * the same clock taken just after the end, bounds it too: every commit
 * before the end is earlier than that second's close.
 */
static void tighten_stop(struct backup_run *b, const struct backup_label *hist)
{
	int64_t bound;

	if (hist->stop_time <= 0 || hist->stop_time >= INT64_MAX / 1000000 - 1)
		return;
	bound = (hist->stop_time + 1) * 1000000;
	if (bound < b->m.stop_us && bound >= manifest_start_us(&b->m))
		manifest_set_stop(&b->m, bound);
}

/* ---------------------------------------------------------------- the server's copy stream */

/* The server's stream of one base backup: base.tar, then backup_manifest. */
struct base_sink {
	struct backup_run *b;
	const struct basebackup_tablespace *spc;	/* the server's list */
	size_t nspc;
	struct stream_writer *w;	/* the stream being written */
	struct pgk_buf *head;
	int archives;
	bool main_done;			/* base.tar began: no archive may follow */
	bool in_manifest;
	bool streaming;			/* the checkpoint is over */
};

static int sink_open(struct base_sink *k, const char *name, uint32_t oid, const char *location)
{
	struct backup_run *b = k->b;
	struct manifest_stream *s = manifest_add_stream(&b->m, name);

	if (oid)
		manifest_stream_set_tablespace(s, oid, location);
	return stream_writer_open(&k->w, b->repo, s,
				  backup_ref_stream(b->have_ref ? &b->ref : NULL, name), b->jobs);
}

/* Finished and freed before another stream is added: adding moves them. */
static int sink_close(struct base_sink *k)
{
	int rc = k->w ? stream_writer_finish(k->w) : 0;

	stream_writer_free(k->w);
	k->w = NULL;
	return rc;
}

static bool find_stream_name(const struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nstreams; i++)
		if (strcmp(m->streams[i].name, name) == 0)
			return true;
	return false;
}

/* The listed tablespace at location, whose OID names the stream. */
static const struct basebackup_tablespace *sink_tablespace(const struct base_sink *k,
							   const char *location)
{
	size_t i;

	for (i = 0; i < k->nspc; i++)
		if (k->spc[i].oid && strcmp(k->spc[i].location, location) == 0)
			return &k->spc[i];
	return NULL;
}

/*
 * One archive per tablespace, the main directory's (base.tar, no location)
 * last; each becomes a stream of its own, tblspc/OID.tar for a tablespace,
 * with the OID and the location restore puts it back at.
 */
static int sink_archive(void *payload, const char *name, const char *location)
{
	struct base_sink *k = payload;
	const struct basebackup_tablespace *t;
	char sname[64];
	int rc;

	if (k->main_done || k->in_manifest)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent archive %s after "
				 "base.tar", name);
	rc = sink_close(k);
	if (rc < 0)
		return rc;
	k->archives++;
	if (!*location) {
		if (strcmp(name, "base.tar") != 0)
			return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent an unexpected "
					 "archive %s for the data directory", name);
		k->main_done = true;
		return sink_open(k, "base.tar", 0, NULL);
	}
	t = sink_tablespace(k, location);
	if (!t)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent archive %s for '%s', "
				 "which is not in its tablespace list", name, location);
	if (!manifest_tablespace_location_ok(location))
		return pgk_error(PGKEEP_EINVAL, "tablespace %u is at '%s': restore needs an "
				 "absolute path without '.' or '..' components", t->oid, location);
	snprintf(sname, sizeof(sname), "tblspc/%u.tar", t->oid);
	if (find_stream_name(&k->b->m, sname))
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent tablespace %u twice",
				 t->oid);
	return sink_open(k, sname, t->oid, location);
}

static int sink_data(void *payload, const void *buf, size_t len)
{
	struct base_sink *k = payload;
	struct pgk_buf *head = k->head;

	if (!k->w)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent data before an archive");
	/* backup_label opens base.tar, not the tablespaces' tars before it. */
	if (k->main_done && !k->in_manifest && head->len < HEAD_BUF)
		buf_append(head, buf, len < HEAD_BUF - head->len ? len : HEAD_BUF - head->len);
	progress_add(k->b->progress, len);
	return stream_writer_write(k->w, buf, len);
}

/* The server's backup_manifest: its own stream, restored beside the data. */
static int sink_manifest(void *payload)
{
	struct base_sink *k = payload;
	int rc;

	if (k->in_manifest || !k->main_done)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent a manifest out of turn");
	k->in_manifest = true;
	rc = sink_close(k);
	return rc < 0 ? rc : sink_open(k, "backup_manifest", 0, NULL);
}

static int sink_idle(void *payload)
{
	struct base_sink *k = payload;

	if (!k->streaming)
		progress_note(k->b->progress, "waiting for the server's checkpoint");
	return check_interrupted();
}

/*
 * The base backup over a replication connection.  The start and end
 * positions the server gives are checked against backup_label and the
 * backup history file, which remain what the WAL range is read from.
 */
static int base_from_server(struct backup_run *b, const char *label, const char *appname,
			    struct pgk_buf *head, uint64_t *end_lsn)
{
	struct base_sink k = { .b = b, .head = head };
	struct basebackup_sink sink = {
		.archive = sink_archive, .data = sink_data, .manifest = sink_manifest,
		.idle = sink_idle, .idle_ms = 250, .payload = &k,
	};
	struct basebackup_opts bo = { .label = label, .fast = true, .manifest_checksums = "CRC32C" };
	const struct basebackup_tablespace *spc;
	struct basebackup *bb = NULL;
	uint64_t sysid, lsn, total = 0;
	uint32_t tli, end_tli;
	size_t nspc, i;
	int rc;

	rc = basebackup_connect(&bb, b->cfg.conninfo, appname);
	if (rc < 0)
		return rc;
	rc = basebackup_identify(bb, &sysid, &tli);
	if (rc == 0 && sysid != b->info.sysid)
		rc = pgk_error(PGKEEP_EINVAL, "the replication connection reaches system %" PRIu64
			       ", the other connection %" PRIu64, sysid, b->info.sysid);
	if (rc < 0)
		goto out;
	pgk_log_info("taking base backup %s over a replication connection (timeline %u)",
		     b->m.id, tli);
	rc = basebackup_start(bb, &bo, &sink, &lsn, &tli, &spc, &nspc);
	if (rc < 0)
		goto out;
	k.streaming = true;
	k.spc = spc;
	k.nspc = nspc;
	for (i = 0; i < nspc; i++)
		total += spc[i].size;
	progress_start(b->progress, total);
	rc = basebackup_stream(bb, &sink, end_lsn, &end_tli);
	if (rc == 0 && !k.in_manifest)
		rc = pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent no backup manifest");
	if (rc == 0)
		rc = sink_close(&k);
out:
	stream_writer_free(k.w);
	basebackup_close(bb);
	return rc;
}

/*
 * For tests only: PGKEEP_TEST_BASEBACKUP_PROGRAM names a program run with
 * pg_basebackup's arguments whose stdout (a tar with backup_label first)
 * replaces the server's stream, so that restore can be fed crafted tars.
 */
static int base_from_program(struct backup_run *b, const char *prog, const char *label,
			     const char *appname, struct pgk_buf *head)
{
	char *argv[] = { (char *)prog, "-D", "-", "-F", "t", "-X", "none", "-c", "fast", "-w",
			 "-l", (char *)label, NULL };
	char **envp = NULL;
	int rc;

	rc = pgconn_child_env(b->cfg.conninfo, NULL, appname, &envp);
	if (rc < 0)
		return rc;
	pgk_log_warning("backup %s: the archive comes from test program %s", b->m.id, prog);
	rc = stream_child(b, argv, envp, "base.tar", head);
	pgconn_env_free(envp);
	return rc;
}

static int backup_base(struct backup_run *b, struct pgconn *pc, const struct backup_opts *o)
{
	struct pgk_buf head = PGK_BUF_INIT;
	struct backup_label bl, hist;
	uint64_t first = 0, last = 0, end_lsn = 0;
	char *label, appname[MANIFEST_ID_MAX + 16];
	int rc;

	/* The tar's first header is read only once the stream is done: a
	 * libarchive that cannot be loaded must stop us before it starts. */
	rc = libarchive_load();
	if (rc == 0)
		rc = check_cluster(b);
	if (rc < 0)
		return rc;
	rc = backup_reference(b->repo, &b->m, &b->ref);
	if (rc < 0)
		return rc;
	b->have_ref = rc > 0;
	/* Named, so that the backup's walsender can be told apart on the server. */
	snprintf(appname, sizeof(appname), "pgkeep %s", b->m.id);
	b->m.wal_seg_size = b->info.wal_seg_size;
	label = xasprintf("pgkeep %s", o->label ? o->label : b->m.id);
	if (o->test_program && *o->test_program)
		rc = base_from_program(b, o->test_program, label, appname, &head);
	else
		rc = base_from_server(b, label, appname, &head, &end_lsn);
	if (rc < 0)
		goto out;
	record_stop(b, pc);
	rc = label_from_head(&head, &bl);
	if (rc < 0)
		goto out;
	rc = wait_history(b, &bl, &hist);
	if (rc == 0 && end_lsn && end_lsn != hist.stop_lsn)
		rc = pgk_error(PGKEEP_ECORRUPT, "the server ended backup %s at %" PRIX64 " but its "
			       "history file says %" PRIX64, b->m.id, end_lsn, hist.stop_lsn);
	if (rc == 0)
		tighten_stop(b, &hist);
	if (rc == 0)
		rc = fill_wal_range(b, &bl, &hist, &first, &last);
	if (rc == 0)
		rc = wait_segments(b, first, last, bl.start_tli);
out:
	buf_free(&head);
	free(label);
	return rc;
}

/* ---------------------------------------------------------------- dumps */

static int dump_one(struct backup_run *b, const char *db)
{
	char **envp = NULL, *prog, *stream;
	int rc;

	rc = pgconn_child_env(b->cfg.conninfo, db, NULL, &envp);
	if (rc < 0)
		return rc;
	prog = child_find_program("pg_dump", b->info.version / 10000);
	stream = xasprintf("%s.dump", db);
	{
		/* Custom format, uncompressed: our chunker dedups, zstd compresses. */
		char *argv[] = { prog, "-F", "c", "-Z", "0", "-w", NULL };

		pgk_log_info("running %s for database %s", prog, db);
		rc = stream_child(b, argv, envp, stream, NULL);
	}
	if (rc < 0)
		pgk_error_wrap(rc, "dump of database %s", db);
	free(stream);
	free(prog);
	pgconn_env_free(envp);
	return rc;
}

static int dump_globals(struct backup_run *b)
{
	char **envp = NULL, *prog;
	int rc;

	rc = pgconn_child_env(b->cfg.conninfo, NULL, NULL, &envp);
	if (rc < 0)
		return rc;
	prog = child_find_program("pg_dumpall", b->info.version / 10000);
	{
		char *argv[] = { prog, "--globals-only", "-w", NULL };

		rc = stream_child(b, argv, envp, "globals.sql", NULL);
	}
	free(prog);
	pgconn_env_free(envp);
	return rc;
}

static int backup_dump(struct backup_run *b, struct pgconn *pc, const struct backup_opts *o)
{
	char **dbs = NULL;
	size_t n = 0, i;
	int rc;

	b->m.format = xstrdup("custom");
	if (!o->all)
		b->m.dbname = xstrdup(b->info.dbname);
	rc = backup_reference(b->repo, &b->m, &b->ref);
	if (rc < 0)
		return rc;
	b->have_ref = rc > 0;
	if (!o->all) {
		rc = dump_one(b, b->info.dbname);
		goto out;
	}
	rc = pgconn_databases(pc, &dbs, &n);
	if (rc < 0)
		return rc;
	rc = dump_globals(b);
	for (i = 0; rc == 0 && i < n; i++)
		rc = dump_one(b, dbs[i]);
	for (i = 0; i < n; i++)
		free(dbs[i]);
	free(dbs);
out:
	if (rc == 0)
		manifest_set_stop(&b->m, backup_now_us());
	return rc;
}

/* ---------------------------------------------------------------- the command */

/* An id no manifest has yet: YYYYMMDDTHHMMSSZ-TYPE, then -2, -3 ... */
static int choose_id(struct backup_run *b, int attempt)
{
	char stamp[32], key[128];
	struct pgkeep_stat st;
	struct tm tm;
	time_t t = (time_t)b->m.start_time;
	int rc, i;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (i = attempt; i < 100; i++) {
		if (i == 0)
			snprintf(b->m.id, sizeof(b->m.id), "%s-%s", stamp, backup_type_name(b->m.type));
		else
			snprintf(b->m.id, sizeof(b->m.id), "%s-%s-%d", stamp,
				 backup_type_name(b->m.type), i + 1);
		snprintf(key, sizeof(key), "backups/%s.manifest", b->m.id);
		rc = store_stat(b->repo->store, key, &st);
		if (rc == PGKEEP_ENOTFOUND)
			return i;
		if (rc < 0)
			return rc;
	}
	return pgk_error(PGKEEP_EEXISTS, "no free backup id for %s", stamp);
}

/* Another backup may have taken the id meanwhile: move to the next one. */
static int save_manifest(struct backup_run *b, int attempt)
{
	int rc;

	for (;;) {
		rc = manifest_save(b->repo, &b->m);
		if (rc != PGKEEP_EEXISTS)
			return rc;
		attempt = choose_id(b, attempt + 1);
		if (attempt < 0)
			return attempt;
	}
}

static void print_summary(const struct backup_run *b)
{
	struct timespec t1;
	char size[32], stored[32];
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - b->t0.tv_sec) + (double)(t1.tv_nsec - b->t0.tv_nsec) / 1e9;
	human_size(manifest_size(&b->m), size, sizeof(size));
	human_size(manifest_stored(&b->m), stored, sizeof(stored));
	printf("%s\n", b->m.id);
	if (b->m.type == BACKUP_BASE)
		printf("%s backup of %s: %s, %s newly stored, %.1f s, WAL %s to %s\n",
		       backup_type_name(b->m.type), "the cluster", size, stored, secs,
		       b->m.wal_start, b->m.wal_stop);
	else
		printf("%s backup of %s: %s, %s newly stored, %.1f s\n",
		       backup_type_name(b->m.type), b->m.dbname ? b->m.dbname : "every database",
		       size, stored, secs);
	fflush(stdout);
}

/*
 * What a dump's progress line counts towards: the databases' on-disk size
 * (a dump is usually smaller, having no indexes): an estimate, 0 when it
 * cannot be had.  A base backup counts towards the server's own estimate.
 */
static uint64_t size_estimate(struct pgconn *pc, const struct backup_opts *o, const char *db)
{
	uint64_t total = 0, one;
	char **dbs = NULL;
	size_t n = 0, i;

	if (o->type == BACKUP_DUMP && !o->all)
		return pgconn_database_size(pc, db, &one) == 0 ? one : 0;
	if (pgconn_databases(pc, &dbs, &n) < 0) {
		pgk_error_clear();
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (pgconn_database_size(pc, dbs[i], &one) == 0)
			total += one;
		free(dbs[i]);
	}
	free(dbs);
	pgk_error_clear();
	return total;
}

static int run_backup(struct backup_run *b, const struct backup_opts *o)
{
	struct repo_lock *lock = NULL;
	struct pgconn *pc = NULL;
	int rc, attempt;

	rc = pgconn_open(&pc, b->cfg.conninfo, o->type == BACKUP_DUMP ? o->db : NULL);
	if (rc < 0)
		return rc;
	rc = pgconn_server_info(pc, &b->info);
	if (rc < 0)
		goto out_conn;
	rc = repo_check_sysid(b->repo, b->info.sysid);
	if (rc < 0)
		goto out_info;
	/* Shared: expire must not collect the chunks of a backup in progress. */
	rc = lock_acquire(&lock, b->repo, LOCK_SHARED, "backup", LOCK_WAIT);
	if (rc < 0)
		goto out_info;
	b->m.type = o->type;
	b->m.sysid = b->info.sysid;
	b->m.pg_version = b->info.version;
	b->m.timeline = b->info.timeline;
	manifest_set_start(&b->m, backup_now_us());
	b->m.label = o->label ? xstrdup(o->label) : NULL;
	attempt = choose_id(b, 0);
	if (attempt < 0) {
		rc = attempt;
		goto out_lock;
	}
	/* The estimate walks the server's data directories: only when shown. */
	if (b->progress && o->type == BACKUP_DUMP)
		progress_start(b->progress, size_estimate(pc, o, b->info.dbname));
	rc = o->type == BACKUP_BASE ? backup_base(b, pc, o) : backup_dump(b, pc, o);
	if (rc == 0)
		rc = save_manifest(b, attempt);
	/* Clear the line before the summary or the error takes its place. */
	progress_finish(b->progress, rc == 0);
	b->progress = NULL;
	if (rc < 0)
		pgk_error_wrap(rc, "backup %s failed", b->m.id);
	else
		print_summary(b);
out_lock:
	lock_release_keep_error(lock);
out_info:
	pg_server_info_free(&b->info);
out_conn:
	pgconn_close(pc);
	return rc;
}

static int parse_opts(int argc, char **argv, struct backup_opts *o)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "db", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "label", required_argument, NULL, 'l' },
		{ "progress", required_argument, NULL, 'P' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(o, 0, sizeof(*o));
	while ((opt = getopt_long(argc, argv, "+t:d:al:j:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (strcmp(optarg, "base") == 0)
				o->type = BACKUP_BASE;
			else if (strcmp(optarg, "dump") == 0)
				o->type = BACKUP_DUMP;
			else
				return pgk_error(PGKEEP_EINVAL, "--type must be base or dump, not '%s'",
						 optarg);
			break;
		case 'd': o->db = optarg; break;
		case 'a': o->all = true; break;
		case 'l': o->label = optarg; break;
		case 'P':
			if (progress_mode_parse(optarg, &o->progress) < 0)
				return PGKEEP_EINVAL;
			break;
		case 'j':
			if (parse_int("--jobs", optarg, 1, 64, &o->jobs) < 0)
				return PGKEEP_EINVAL;
			break;
		case 'h': return 1;
		default: return PGKEEP_EINVAL;
		}
	}
	if (optind < argc)
		return pgk_error(PGKEEP_EINVAL, "unexpected argument '%s'", argv[optind]);
	if (!o->type)
		return pgk_error(PGKEEP_EINVAL, "--type=base or --type=dump is required");
	if (o->type == BACKUP_BASE && (o->db || o->all))
		return pgk_error(PGKEEP_EINVAL, "--db and --all are for --type=dump");
	if (o->db && o->all)
		return pgk_error(PGKEEP_EINVAL, "--db and --all exclude each other");
	if (o->label && strlen(o->label) > 200)
		return pgk_error(PGKEEP_EINVAL, "--label is longer than 200 characters");
	return 0;
}

int cmd_backup(const struct pgk_globals *g, int argc, char **argv)
{
	struct backup_run b;
	struct backup_opts o;
	int rc, status;

	rc = parse_opts(argc, argv, &o);
	if (rc == 1) {
		printf("usage: pgkeep backup --type=base|dump [--db NAME | --all] [--label TEXT]\n"
		       "                     [--progress=auto|json|none]\n");
		return PGK_EXIT_OK;
	}
	if (rc < 0) {
		if (*pgk_errmsg())
			pgk_log_error("%s", pgk_errmsg());
		return PGK_EXIT_USAGE;
	}
	o.test_program = getenv("PGKEEP_TEST_BASEBACKUP_PROGRAM");
	/* A child that dies must not take us with it: we report its status. */
	signal(SIGPIPE, SIG_IGN);
	catch_signals();
	memset(&b, 0, sizeof(b));
	clock_gettime(CLOCK_MONOTONIC, &b.t0);
	if (ctx_load_config(g, &b.cfg) < 0)
		return ctx_fail();
	b.jobs = o.jobs ? o.jobs : b.cfg.jobs > 0 ? b.cfg.jobs : backup_default_jobs();
	rc = ctx_open_repo(g, &b.cfg, &b.repo);
	if (rc == 0) {
		b.progress = progress_new(o.progress, "backup");
		rc = run_backup(&b, &o);
		progress_finish(b.progress, rc == 0);	/* when it stopped early */
	}
	/* Report before cleaning up: closing the store reuses the message buffer. */
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_free(&b.m);
	manifest_free(&b.ref);
	repo_close(b.repo);
	config_free(&b.cfg);
	return status;
}

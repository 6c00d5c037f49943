/*
 * backup: stream the server's base backup (taken over a replication
 * connection) or pg_dump's archive through the pipeline into the repository.  A base backup is finished only once every
 * WAL segment from its start to its stop is in the repository; only then is
 * the manifest written, so a backup that exists is a backup that restores.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_id.h"
#include "cmd/backup.h"
#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/basebackup.h"
#include "pg/child.h"
#include "pg/clients.h"
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
#define LOCK_WAIT 60

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

int backup_check_interrupted(void)
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
		*rc = backup_check_interrupted();
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
int backup_stream_child(struct backup_run *b, char *const argv[], char **envp,
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

/* ---------------------------------------------------------------- dumps */

/* --all runs pg_dumpall for the globals, then pg_dump for each database. */
static int check_dump_client(struct backup_run *b, const struct backup_opts *o)
{
	char *prog = NULL;
	int rc = 0;

	if (o->all)
		rc = pg_client_find("pg_dumpall", b->info.version / 10000, &prog);
	free(prog);
	prog = NULL;
	if (rc == 0)
		rc = pg_client_find("pg_dump", b->info.version / 10000, &prog);
	free(prog);
	return rc;
}

static int dump_one(struct backup_run *b, const char *db)
{
	char **envp = NULL, *prog, *stream;
	int rc;

	rc = pgconn_child_env(b->cfg.conninfo, db, NULL, &envp);
	if (rc < 0)
		return rc;
	rc = pg_client_find("pg_dump", b->info.version / 10000, &prog);
	if (rc < 0)
		goto out_env;
	stream = xasprintf("%s.dump", db);
	{
		/* Custom format, uncompressed: our chunker dedups, zstd compresses. */
		char *argv[] = { prog, "-F", "c", "-Z", "0", "-w", NULL };

		pgk_log_info("running %s for database %s", prog, db);
		rc = backup_stream_child(b, argv, envp, stream, NULL);
	}
	if (rc < 0)
		pgk_error_wrap(rc, "dump of database %s", db);
	free(stream);
	free(prog);
out_env:
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
	rc = pg_client_find("pg_dumpall", b->info.version / 10000, &prog);
	if (rc < 0) {
		pgconn_env_free(envp);
		return rc;
	}
	{
		char *argv[] = { prog, "--globals-only", "-w", NULL };

		rc = backup_stream_child(b, argv, envp, "globals.sql", NULL);
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
	/* Before anything is started: a dump needs a client new enough. */
	rc = o->type == BACKUP_DUMP ? check_dump_client(b, o) : 0;
	if (rc < 0)
		goto out_info;
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
	attempt = backup_id_choose(b->repo, &b->m, 0);
	if (attempt < 0) {
		rc = attempt;
		goto out_lock;
	}
	/* The estimate walks the server's data directories: only when shown. */
	if (b->progress && o->type == BACKUP_DUMP)
		progress_start(b->progress, size_estimate(pc, o, b->info.dbname));
	rc = o->type == BACKUP_BASE ? backup_base(b, pc, o) : backup_dump(b, pc, o);
	if (rc == 0)
		rc = backup_id_save_manifest(b->repo, &b->m, attempt);
	/* Clear the line before the summary or the error takes its place. */
	progress_finish(b->progress, rc == 0);
	b->progress = NULL;
	if (rc < 0)
		pgk_error_wrap(rc, "backup %s failed", b->m.id);
	else
		print_summary(b);
out_lock:
	lock_release(lock);
out_info:
	pg_server_info_free(&b->info);
out_conn:
	pgconn_close(pc);
	return rc;
}

static int set_type(void *opts, const char *arg)
{
	struct backup_opts *o = opts;

	if (strcmp(arg, "base") == 0)
		o->type = BACKUP_BASE;
	else if (strcmp(arg, "dump") == 0)
		o->type = BACKUP_DUMP;
	else
		return pgk_error(PGKEEP_EINVAL, "--type must be base or dump, not '%s'", arg);
	return 0;
}

static int set_checksums(void *opts, const char *arg)
{
	struct backup_opts *o = opts;

	if (strcasecmp(arg, "sha256") == 0)
		o->checksums = "SHA256";
	else if (strcasecmp(arg, "crc32c") == 0)
		o->checksums = "CRC32C";
	else
		return pgk_error(PGKEEP_EINVAL, "--checksums must be sha256 or crc32c, not '%s'",
				 arg);
	return 0;
}

static const struct opt_def backup_options[] = {
	OPT_CALL_DEF("type", 't', "=base|dump", set_type,
		     "physical base backup, or logical dump of one database"),
	OPT_STRING_DEF("db", 'd', "NAME", struct backup_opts, db,
		       "dump this database (default: the conninfo's)"),
	OPT_FLAG_DEF("all", 'a', struct backup_opts, all,
		     "dump the globals and every connectable database"),
	OPT_STRING_DEF("label", 'l', "TEXT", struct backup_opts, label, "recorded with the backup"),
	OPT_PROGRESS_DEF(struct backup_opts, progress),
	OPT_JOBS(struct backup_opts, jobs),
	OPT_CALL_DEF("checksums", 0, "=ALG", set_checksums,
		     "base backups: the server's manifest checksums, sha256 or crc32c\n"
		     "(default: checksums in the config, else sha256); restore\n"
		     "verifies every file by them"),
	OPT_END,
};

const struct opt_spec backup_cli = {
	.command = "backup",
	.summary = "take a base backup (BASE_BACKUP) or a dump (pg_dump)",
	.synopsis = "--type=base|dump [--db NAME | --all] [OPTIONS]",
	.opts = backup_options,
};

static int parse_opts(int argc, char **argv, struct backup_opts *o)
{
	struct opt_args pos;

	memset(o, 0, sizeof(*o));
	if (opt_parse(&backup_cli, argc, argv, o, &pos) < 0)
		return PGKEEP_EINVAL;
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

	if (parse_opts(argc, argv, &o) < 0)
		return opt_fail(&backup_cli);
	o.test_program = getenv("PGKEEP_TEST_BASEBACKUP_PROGRAM");
	/* A child that dies must not take us with it: we report its status. */
	signal(SIGPIPE, SIG_IGN);
	catch_signals();
	memset(&b, 0, sizeof(b));
	clock_gettime(CLOCK_MONOTONIC, &b.t0);
	if (ctx_load_config(g, &b.cfg) < 0)
		return ctx_fail();
	b.jobs = ctx_jobs(o.jobs, &b.cfg, backup_default_jobs());
	rc = ctx_open_repo(g, &b.cfg, &b.repo);
	if (rc == 0) {
		b.progress = progress_new(o.progress, "backup");
		rc = run_backup(&b, &o);
		progress_finish(b.progress, rc == 0);	/* when it stopped early */
	}
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_free(&b.m);
	manifest_free(&b.ref);
	repo_close(b.repo);
	config_free(&b.cfg);
	return status;
}

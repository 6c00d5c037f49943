/*
 * restore: a base backup into a data directory, ready for point-in-time
 * recovery through `pgkeep wal-fetch`; or a dump into a database through
 * pg_restore, or into a file.
 *
 * A base backup is extracted while it streams (a pipe between the pipeline
 * and libarchive), so memory stays bounded.  global/pg_control is withheld
 * under another name until every byte is verified and the recovery settings
 * are written: PostgreSQL refuses to start a directory without it, so a
 * restore that stops half way can never be mistaken for a complete one.
 * Members are created by pg/untar.c, which never writes outside the data
 * directory whatever the tar holds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/privdrop.h"
#include "cmd/restore_tblspc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/child.h"
#include "pg/libarchive_api.h"
#include "pg/pgconn.h"
#include "pg/recovery.h"
#include "pg/untar.h"
#include "pipeline/pipeline.h"
#include "repo/lock.h"
#include "repo/manifest.h"

#define CONTROL_FILE "global/pg_control"
#define CONTROL_PENDING "global/pg_control.pgkeep-restoring"
#define LOCK_WAIT 60

struct restore_opts {
	const char *id;
	/* base backups */
	const char *pgdata;
	bool force;
	enum recovery_target target;
	const char *target_value;
	char target_norm[64];		/* TARGET_TIME: normalised to UTC */
	int64_t target_sec;		/* TARGET_TIME */
	long target_usec;
	uint64_t target_lsn;		/* TARGET_LSN */
	const char *action;
	bool archive_off;
	struct tblspc_maps maps;	/* --tablespace-map */
	/* dumps */
	const char *dbname;
	bool create;
	const char *output;
	const char *stream;
	enum progress_mode progress;
	int jobs;			/* --jobs, 0 when not given */
};

struct restore_run {
	const struct pgk_globals *g;
	struct pgk_config cfg;
	struct repo *repo;
	struct manifest m;
	int jobs;
	struct timespec t0;
	struct progress *progress;	/* NULL: nothing shown */
};

/* ---------------------------------------------------------------- targets */

/*
 * Without a zone the time is local, as a person typing it means; we hand
 * PostgreSQL the same instant in UTC so its own timezone setting cannot
 * shift it.
 */
static int parse_target_time(struct restore_opts *o)
{
	struct parse_time pt;
	struct tm utc;
	time_t t;

	if (parse_timestamp("--target-time", o->target_value, &pt) < 0)
		return PGKEEP_EINVAL;
	o->target_sec = pt.sec;
	o->target_usec = pt.usec;
	t = (time_t)pt.sec;
	gmtime_r(&t, &utc);
	snprintf(o->target_norm, sizeof(o->target_norm),
		 "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", utc.tm_year + 1900, utc.tm_mon + 1,
		 utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, o->target_usec);
	return 0;
}

static int set_target(struct restore_opts *o, enum recovery_target t, const char *v)
{
	if (o->target != TARGET_NONE)
		return pgk_error(PGKEEP_EINVAL, "give at most one of --target-time, --target-lsn, "
				 "--target-xid, --target-name and --target-immediate");
	o->target = t;
	o->target_value = v;
	if (t == TARGET_TIME)
		return parse_target_time(o);
	if (t == TARGET_LSN && pg_lsn_parse(v, &o->target_lsn) < 0)
		return pgk_error(PGKEEP_EINVAL, "--target-lsn '%s' is not an LSN like 0/3000028", v);
	if (t == TARGET_XID && (strspn(v, "0123456789") != strlen(v) || !*v))
		return pgk_error(PGKEEP_EINVAL, "--target-xid '%s' is not a transaction id", v);
	if (t == TARGET_NAME && !*v)
		return pgk_error(PGKEEP_EINVAL, "--target-name is empty");
	return 0;
}

/* ---------------------------------------------------------------- choosing the backup */

static bool reaches_target(const struct manifest *m, const struct restore_opts *o)
{
	if (o->target == TARGET_TIME)
		return manifest_stop_us(m) <= o->target_sec * 1000000 + o->target_usec;
	if (o->target == TARGET_LSN)
		return m->stop_lsn <= o->target_lsn;
	return true;
}

static const char *type_hint(enum backup_type t)
{
	return t == BACKUP_BASE ? "restore it with --pgdata DIR"
				: "restore it with --dbname NAME or --output FILE";
}

static int pick_backup(struct restore_run *rr, const struct restore_opts *o,
		       enum backup_type want)
{
	struct manifest *list = NULL;
	size_t n = 0, i;
	int rc;

	if (strcmp(o->id, "latest") != 0) {
		rc = manifest_load(rr->repo, o->id, &rr->m);
		if (rc < 0)
			return rc;
		if (rr->m.type != want)
			return pgk_error(PGKEEP_EINVAL, "backup %s is a %s backup: %s", o->id,
					 backup_type_name(rr->m.type), type_hint(rr->m.type));
		if (!reaches_target(&rr->m, o))
			return pgk_error(PGKEEP_EINVAL,
					 "backup %s finished after the recovery target %s: "
					 "choose an older backup (or 'latest')", o->id,
					 o->target_value);
		return 0;
	}
	/* Summaries to choose from; then the one chosen, its chunk lists left to the cursor. */
	rc = manifest_list_summary(rr->repo, &list, &n);
	if (rc < 0)
		return rc;
	for (i = n; i > 0; i--)
		if (list[i - 1].type == want && reaches_target(&list[i - 1], o))
			break;
	rc = i > 0 ? manifest_load(rr->repo, list[i - 1].id, &rr->m) : 0;
	manifest_list_free(list, n);
	if (rc < 0)
		return rc;
	if (i > 0)
		return 0;
	if (o->target == TARGET_TIME || o->target == TARGET_LSN)
		return pgk_error(PGKEEP_ENOTFOUND, "repository %s has no base backup that "
				 "finished before the recovery target %s", rr->repo->name,
				 o->target_value);
	return pgk_error(PGKEEP_ENOTFOUND, "repository %s has no %s backup", rr->repo->name,
			 backup_type_name(want));
}

static const struct manifest_stream *find_stream(const struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nstreams; i++)
		if (strcmp(m->streams[i].name, name) == 0)
			return &m->streams[i];
	return NULL;
}

/* ---------------------------------------------------------------- the data directory */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0) {
		pgk_error(PGKEEP_EIO, "cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int dir_is_empty(const char *path, bool *empty)
{
	struct dirent *d;
	DIR *dir;

	dir = opendir(path);
	if (!dir)
		return pgk_error(PGKEEP_EIO, "cannot open directory %s: %s", path, strerror(errno));
	*empty = true;
	while ((d = readdir(dir)))
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			*empty = false;
	closedir(dir);
	return 0;
}

static int mkdir_p(const char *path)
{
	char *copy = xstrdup(path), *p;
	int rc = 0;

	for (p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			rc = pgk_error(PGKEEP_EIO, "cannot create directory %s: %s", copy,
				       strerror(errno));
		*p = '/';
		if (rc < 0)
			break;
	}
	if (rc == 0 && mkdir(copy, 0700) < 0 && errno != EEXIST)
		rc = pgk_error(PGKEEP_EIO, "cannot create directory %s: %s", copy, strerror(errno));
	free(copy);
	return rc;
}

/* A new or empty directory (emptied with --force), mode 0700; its real path. */
static int prepare_pgdata(const struct restore_opts *o, char **abs)
{
	struct stat st;
	char *pid;
	bool empty = false;
	int rc;

	if (stat(o->pgdata, &st) < 0) {
		if (errno != ENOENT)
			return pgk_error(PGKEEP_EIO, "cannot use %s: %s", o->pgdata, strerror(errno));
		rc = mkdir_p(o->pgdata);
		if (rc < 0)
			return rc;
	} else if (!S_ISDIR(st.st_mode)) {
		return pgk_error(PGKEEP_EINVAL, "%s is not a directory", o->pgdata);
	} else {
		rc = dir_is_empty(o->pgdata, &empty);
		if (rc < 0)
			return rc;
		if (!empty && !o->force)
			return pgk_error(PGKEEP_EINVAL,
					 "%s is not empty: restore into a new or empty directory, "
					 "or add --force to empty it first", o->pgdata);
		if (!empty) {
			pid = xasprintf("%s/postmaster.pid", o->pgdata);
			rc = access(pid, F_OK) == 0 ? PGKEEP_EINVAL : 0;
			if (rc < 0)
				pgk_error(rc, "%s exists: is PostgreSQL running there? stop it (or "
					  "remove a stale postmaster.pid) before restoring", pid);
			free(pid);
			if (rc < 0)
				return rc;
			pgk_log_warning("--force: removing everything in %s", o->pgdata);
			if (nftw(o->pgdata, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
				return PGKEEP_EIO;
		}
	}
	*abs = realpath(o->pgdata, NULL);
	if (!*abs)
		return pgk_error(PGKEEP_EIO, "cannot resolve %s: %s", o->pgdata, strerror(errno));
	/* PostgreSQL refuses a data directory others can read. */
	if (chmod(*abs, 0700) < 0)
		return pgk_error(PGKEEP_EIO, "cannot chmod %s: %s", *abs, strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------- extraction */

/* The pipe to the extraction thread, and what libarchive reads at a time. */
#define EXTRACT_PIPE_SIZE (1024 * 1024)

struct extractor {
	int fd;			/* read end of the pipe */
	struct archive *in;	/* the thread frees it */
	struct untar *u;
	bool data_dir;		/* the data directory's tar: pg_control withheld */
	pthread_t thread;
	int rc;
	char err[1024];
};

static int extract_fail(struct extractor *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int extract_fail(struct extractor *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	x->rc = PGKEEP_EIO;
	return x->rc;
}

static int extract_entry(struct extractor *x, struct archive *in, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	int rc;

	/* Withheld until the end: see the comment at the top. */
	rc = untar_entry(x->u, in, e, x->data_dir && name &&
				      strcmp(untar_strip(name), CONTROL_FILE) == 0
				      ? CONTROL_PENDING : NULL);
	if (rc < 0) {
		snprintf(x->err, sizeof(x->err), "%s", x->u->err);
		x->rc = rc;
	}
	return rc;
}

/* Read what is left after the tar's end marker, so the writer never blocks. */
static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0 || errno == EINTR)
		;
}

static void *extract_main(void *arg)
{
	struct extractor *x = arg;
	struct archive *in = x->in;
	struct archive_entry *e;
	int r;

	if (archive_read_open_fd(in, x->fd, EXTRACT_PIPE_SIZE) != ARCHIVE_OK) {
		extract_fail(x, "cannot read the backup stream: %s", archive_error_string(in));
		goto out;
	}
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		if (extract_entry(x, in, e) < 0)
			goto out;
	}
	if (r != ARCHIVE_EOF)
		extract_fail(x, "the backup's tar stream is damaged: %s",
			     archive_error_string(in));
	else
		drain(x->fd);
out:
	archive_read_free(in);
	/* On failure this makes the writer's next write fail with EPIPE. */
	close(x->fd);
	return NULL;
}

struct fd_sink {
	int fd;
	bool failed;	/* the reader went away: its own error explains why */
	struct progress *progress;
};

/* The stream being delivered is what the progress line counts towards. */
static void sink_progress(struct restore_run *rr, struct fd_sink *sk,
			  const struct manifest_stream *s)
{
	progress_start(rr->progress, s->size);
	sk->progress = rr->progress;
}

static int sink_fd(void *payload, const void *buf, size_t len)
{
	struct fd_sink *sk = payload;
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(sk->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sk->failed = true;
			return pgk_error(PGKEEP_EIO, "cannot pass the stream on: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		progress_add(sk->progress, (uint64_t)n);
	}
	return 0;
}

/* Made before the thread starts, so that a libarchive that cannot be loaded
 * is reported like any other error. */
static int extractor_archives(struct extractor *x)
{
	int rc = libarchive_read_new(&x->in);

	if (rc < 0)
		return rc;
	archive_read_support_format_tar(x->in);
	return 0;
}

static int extract_stream(struct restore_run *rr, const struct manifest_stream *s,
			  uint64_t total, struct untar *u, bool data_dir)
{
	struct extractor x = { .u = u, .data_dir = data_dir };
	struct fd_sink sk = { -1, false, NULL };
	int fds[2], rc;

	rc = extractor_archives(&x);
	if (rc < 0)
		return rc;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		archive_read_free(x.in);
		return pgk_error(PGKEEP_EIO, "cannot create a pipe: %s", strerror(errno));
	}
	x.fd = fds[0];
#ifdef F_SETPIPE_SZ
	/* Whole chunks pass in a write or two instead of 64 KiB at a time; the
	 * system may refuse, and the default pipe works too. */
	(void)fcntl(fds[1], F_SETPIPE_SZ, EXTRACT_PIPE_SIZE);
#endif
	if (pthread_create(&x.thread, NULL, extract_main, &x) != 0) {
		archive_read_free(x.in);
		close(fds[0]);
		close(fds[1]);
		return pgk_error(PGKEEP_EIO, "cannot start the extraction thread");
	}
	sk.fd = fds[1];
	progress_start(rr->progress, total);
	sk.progress = rr->progress;
	rc = stream_read(rr->repo, s, rr->jobs, sink_fd, &sk);
	close(fds[1]);
	pthread_join(x.thread, NULL);
	/*
	 * A stream error (a missing or damaged chunk) comes first: the extractor
	 * then only saw a truncated tar.  When the extractor failed first, the
	 * pipe broke and its message is the one that explains.
	 */
	if (rc < 0 && !sk.failed)
		return rc;
	if (x.rc < 0)
		return pgk_error(x.rc, "%s", x.err);
	if (rc < 0)
		return rc;
	pgk_log_info("extracted %" PRIu64 " entries into %s", u->entries, u->root);
	return untar_check_root(u);
}

/* ---------------------------------------------------------------- base restore */

/*
 * The server's backup_manifest (a stream of its own since pgkeep takes base
 * backups itself; older backups carry it inside base.tar), where
 * pg_verifybackup looks for it.  A tar that brought one too is refused.
 */
static int restore_server_manifest(struct restore_run *rr, const struct manifest_stream *s,
				   const struct untar *u)
{
	struct fd_sink sk = { -1, false, rr->progress };
	int rc;

	sk.fd = openat(u->rootfd, "backup_manifest",
		       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sk.fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot create %s/backup_manifest: %s", u->root,
				 strerror(errno));
	rc = stream_read(rr->repo, s, rr->jobs, sink_fd, &sk);
	if (close(sk.fd) < 0 && rc == 0)
		rc = pgk_error(PGKEEP_EIO, "cannot write %s/backup_manifest: %s", u->root,
			       strerror(errno));
	return rc;
}

static char *restore_command(struct restore_run *rr)
{
	const char *cfgpath = rr->g->config_path;
	char exe[PATH_MAX], *abscfg, *qexe, *qcfg, *qrepo, *cmd;
	ssize_t n;

	if (!cfgpath)
		cfgpath = getenv("PGKEEP_CONFIG");
	if (!cfgpath || !*cfgpath)
		cfgpath = PGK_CONFIG_DEFAULT_PATH;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		snprintf(exe, sizeof(exe), "pgkeep");
	else
		exe[n] = '\0';
	abscfg = realpath(cfgpath, NULL);
	qexe = shell_quote(exe);
	qcfg = shell_quote(abscfg ? abscfg : cfgpath);
	qrepo = shell_quote(rr->repo->name);
	/* The repository is named: a later change of the default must not
	 * send recovery to another archive. */
	cmd = xasprintf("%s --config %s --repo %s wal-fetch %%f %%p", qexe, qcfg, qrepo);
	free(qrepo);
	free(qcfg);
	free(qexe);
	free(abscfg);
	return cmd;
}

/* Regular files, not links: what the last steps read and rename. */
static int check_extracted(const struct untar *u)
{
	static const char *need[] = { CONTROL_PENDING, "backup_label", "PG_VERSION" };
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (fstatat(u->rootfd, need[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			return pgk_error(PGKEEP_ECORRUPT, "the backup has no %s",
					 strcmp(need[i], CONTROL_PENDING) ? need[i] : CONTROL_FILE);
	return 0;
}

/* Everything on disk, then pg_control into place: the directory is complete. */
static int finish_pgdata(const struct untar *u)
{
	const char *pending = strchr(CONTROL_PENDING, '/') + 1;
	const char *control = strchr(CONTROL_FILE, '/') + 1;
	int gfd, rc = 0;

	if (syncfs(u->rootfd) < 0)
		return pgk_error(PGKEEP_EIO, "cannot sync %s: %s", u->root, strerror(errno));
	gfd = openat(u->rootfd, "global", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (gfd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s/global: %s", u->root, strerror(errno));
	if (renameat(gfd, pending, gfd, control) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot rename %s/%s to %s: %s", u->root,
			       CONTROL_PENDING, CONTROL_FILE, strerror(errno));
	if (rc == 0 && fsync(gfd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot sync %s/global: %s", u->root, strerror(errno));
	close(gfd);
	return rc;
}

static int restore_base(struct restore_run *rr, const struct restore_opts *o)
{
	const struct manifest_stream *s, *sm;
	struct recovery_settings rs = { 0 };
	struct untar u = { .rootfd = -1 };
	struct tblspc_plan spc = { 0 };
	char *root = NULL, *cmd = NULL, *comment = NULL, *dirs, when[32];
	size_t i;
	int rc;

	s = find_stream(&rr->m, "base.tar");
	if (!s)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s has no base.tar stream", rr->m.id);
	sm = find_stream(&rr->m, "backup_manifest");
	/* Before --force empties the directory, not after. */
	rc = libarchive_load();
	if (rc == 0)
		rc = tblspc_plan(&rr->m, &o->maps, &spc);
	if (rc == 0)
		rc = prepare_pgdata(o, &root);
	if (rc == 0)
		rc = untar_open(&u, root);
	if (rc < 0) {
		tblspc_plan_free(&spc);
		free(root);
		return rc;
	}
	rc = tblspc_prepare(&spc, &u);
	if (rc == 0)
		rc = extract_stream(rr, s, s->size + (sm ? sm->size : 0), &u, true);
	for (i = 0; rc == 0 && i < spc.n; i++)
		rc = extract_stream(rr, spc.v[i].s, spc.v[i].s->size, &spc.v[i].u, false);
	if (rc == 0 && sm)
		rc = restore_server_manifest(rr, sm, &u);
	if (rc == 0)
		rc = check_extracted(&u);
	if (rc == 0)
		rc = tblspc_link(&spc, &u);
	if (rc < 0)
		goto incomplete;
	cmd = restore_command(rr);
	iso_utc_text((int64_t)time(NULL), when, sizeof(when));
	comment = xasprintf("recovery settings written by pgkeep restore of backup %s at %s",
			    rr->m.id, when);
	rs.restore_command = cmd;
	rs.target = o->target;
	rs.target_value = o->target == TARGET_TIME ? o->target_norm : o->target_value;
	rs.action = o->action;
	rs.archive_off = o->archive_off;
	rs.comment = comment;
	rc = recovery_write(u.rootfd, root, &rs);
	if (rc == 0)
		rc = tblspc_sync(&spc);
	if (rc == 0)
		rc = finish_pgdata(&u);
	if (rc < 0)
		goto incomplete;
	goto out;
incomplete:
	if (spc.n) {
		dirs = tblspc_dirs_text(&spc);
		pgk_error_wrap(rc, "restore of backup %s into %s failed, leaving the directory "
			       "incomplete (PostgreSQL cannot start it: %s is missing); empty it "
			       "and the tablespace directories %s, or run restore again with "
			       "--force and new tablespace directories", rr->m.id, root,
			       CONTROL_FILE, dirs);
		free(dirs);
	} else {
		pgk_error_wrap(rc, "restore of backup %s into %s failed, leaving the directory "
			       "incomplete (PostgreSQL cannot start it: %s is missing); empty it "
			       "or run restore again with --force", rr->m.id, root, CONTROL_FILE);
	}
out:
	tblspc_plan_free(&spc);
	untar_close(&u);
	free(comment);
	free(cmd);
	free(root);
	return rc;
}

/* ---------------------------------------------------------------- dumps */

static int write_output(struct restore_run *rr, const struct manifest_stream *s,
			const struct restore_opts *o)
{
	struct fd_sink sk = { STDOUT_FILENO, false, NULL };
	char *tmp;
	int fd, rc;

	sink_progress(rr, &sk, s);
	if (strcmp(o->output, "-") == 0)
		return stream_read(rr->repo, s, rr->jobs, sink_fd, &sk);
	if (!o->force && access(o->output, F_OK) == 0)
		return pgk_error(PGKEEP_EEXISTS, "%s exists (add --force to replace it)",
				 o->output);
	tmp = xasprintf("%s.pgkeep-XXXXXX", o->output);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create %s: %s", tmp, strerror(errno));
		goto out_free;
	}
	sk.fd = fd;
	rc = stream_read(rr->repo, s, rr->jobs, sink_fd, &sk);
	if (rc == 0 && fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot fsync %s: %s", tmp, strerror(errno));
	close(fd);
	if (rc == 0 && rename(tmp, o->output) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot rename %s to %s: %s", tmp, o->output,
			       strerror(errno));
	if (rc < 0)
		unlink(tmp);
out_free:
	free(tmp);
	return rc;
}

/* dbname='...' with conninfo quoting; it carries no secret. */
static char *dbname_connstr(const char *db)
{
	struct pgk_buf b = PGK_BUF_INIT;

	buf_printf(&b, "dbname='");
	for (; *db; db++) {
		if (*db == '\'' || *db == '\\')
			buf_append(&b, "\\", 1);
		buf_append(&b, db, 1);
	}
	buf_append(&b, "'", 1);
	return buf_detach(&b);
}

static int prepare_database(struct restore_run *rr, const struct restore_opts *o, int *major)
{
	struct pg_server_info info;
	struct pgconn *pc;
	bool exists;
	int rc, err;

	rc = pgconn_open(&pc, rr->cfg.conninfo, NULL);
	if (rc < 0)
		return rc;
	rc = pgconn_server_info(pc, &info);
	if (rc < 0)
		goto out;
	*major = info.version / 10000;
	pg_server_info_free(&info);
	exists = pgconn_database_exists(pc, o->dbname, &err);
	if (err < 0)
		rc = err;
	else if (o->create && exists)
		rc = pgk_error(PGKEEP_EEXISTS, "database %s exists; --create makes a new one",
			       o->dbname);
	else if (o->create)
		rc = pgconn_create_database(pc, o->dbname);
	else if (!exists)
		rc = pgk_error(PGKEEP_ENOTFOUND, "database %s does not exist (add --create)",
			       o->dbname);
out:
	pgconn_close(pc);
	return rc;
}

static int pipe_into_database(struct restore_run *rr, const struct manifest_stream *s,
			      const struct restore_opts *o)
{
	bool sql = strlen(s->name) > 4 && strcmp(s->name + strlen(s->name) - 4, ".sql") == 0;
	char **envp = NULL, *prog, *conn;
	struct fd_sink sk = { -1, false, NULL };
	struct pg_child c;
	int major = 0, rc;

	rc = prepare_database(rr, o, &major);
	if (rc < 0)
		return rc;
	rc = pgconn_child_env(rr->cfg.conninfo, o->dbname, NULL, &envp);
	if (rc < 0)
		return rc;
	prog = child_find_program(sql ? "psql" : "pg_restore", major);
	conn = dbname_connstr(o->dbname);
	{
		/* One transaction: a failed restore leaves the database as it was. */
		char *restore_argv[] = { prog, "-d", conn, "--exit-on-error", "--single-transaction",
					 "-w", NULL };
		char *psql_argv[] = { prog, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-w",
				      "-d", conn, NULL };

		rc = child_start(&c, sql ? psql_argv : restore_argv, envp, CHILD_PIPE_STDIN);
	}
	if (rc < 0)
		goto out;
	sk.fd = c.fd;
	sink_progress(rr, &sk, s);
	rc = stream_read(rr->repo, s, rr->jobs, sink_fd, &sk);
	if (rc < 0 && !sk.failed) {
		/* Our stream failed: stop the child before it commits anything. */
		child_abort(&c);
		goto out;
	}
	if (rc < 0) {
		/* The child went away: its status and message explain why. */
		if (child_wait(&c) == 0)
			pgk_error(PGKEEP_EIO, "%s stopped reading the dump", prog);
		goto out;
	}
	rc = child_wait(&c);
out:
	free(conn);
	free(prog);
	pgconn_env_free(envp);
	return rc;
}

static int restore_dump(struct restore_run *rr, const struct restore_opts *o)
{
	const struct manifest_stream *s;
	size_t i;

	if (o->stream) {
		s = find_stream(&rr->m, o->stream);
	} else if (rr->m.nstreams == 1) {
		s = &rr->m.streams[0];
	} else {
		struct pgk_buf names = PGK_BUF_INIT;

		for (i = 0; i < rr->m.nstreams; i++)
			buf_printf(&names, "%s%s", i ? ", " : "", rr->m.streams[i].name);
		pgk_error(PGKEEP_EINVAL, "backup %s holds %zu streams (%s): choose one with --stream",
			  rr->m.id, rr->m.nstreams, names.len ? (char *)names.data : "");
		buf_free(&names);
		return PGKEEP_EINVAL;
	}
	if (!s)
		return pgk_error(PGKEEP_ENOTFOUND, "backup %s has no stream %s", rr->m.id, o->stream);
	if (o->output)
		return write_output(rr, s, o);
	return pipe_into_database(rr, s, o);
}

/* ---------------------------------------------------------------- the command */

static void print_done(const struct restore_run *rr, const struct restore_opts *o)
{
	struct timespec t1;
	char size[32];
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - rr->t0.tv_sec) + (double)(t1.tv_nsec - rr->t0.tv_nsec) / 1e9;
	human_size(manifest_size(&rr->m), size, sizeof(size));
	if (o->pgdata) {
		printf("restored backup %s (%s) into %s in %.1f s\n", rr->m.id, size, o->pgdata,
		       secs);
		if (o->target == TARGET_NONE)
			printf("start PostgreSQL there: it fetches WAL from repository %s and "
			       "recovers to the end of the archive\n", rr->repo->name);
		else
			printf("start PostgreSQL there: it fetches WAL from repository %s, recovers "
			       "to %s = %s, then %s\n", rr->repo->name,
			       recovery_target_setting(o->target),
			       o->target == TARGET_TIME ? o->target_norm :
			       o->target == TARGET_IMMEDIATE ? "immediate" : o->target_value,
			       o->action);
	} else if (o->output && strcmp(o->output, "-") != 0) {
		printf("wrote backup %s (%s) to %s in %.1f s\n", rr->m.id, size, o->output, secs);
	} else if (o->dbname) {
		printf("restored backup %s (%s) into database %s in %.1f s\n", rr->m.id, size,
		       o->dbname, secs);
	}
	fflush(stdout);
}

static int run_restore(struct restore_run *rr, const struct restore_opts *o)
{
	enum backup_type want = o->pgdata ? BACKUP_BASE : BACKUP_DUMP;
	struct repo_lock *lock = NULL;
	int rc;

	/* Shared: expire must not collect chunks we are reading. */
	rc = lock_acquire(&lock, rr->repo, LOCK_SHARED, "restore", LOCK_WAIT);
	if (rc < 0)
		return rc;
	rc = pick_backup(rr, o, want);
	if (rc == 0) {
		pgk_log_info("restoring backup %s", rr->m.id);
		rc = want == BACKUP_BASE ? restore_base(rr, o) : restore_dump(rr, o);
		if (rc < 0 && !strstr(pgk_errmsg(), rr->m.id))
			pgk_error_wrap(rc, "backup %s", rr->m.id);
	}
	/* Clear the line before the summary or the error takes its place. */
	progress_finish(rr->progress, rc == 0);
	rr->progress = NULL;
	if (rc == 0)
		print_done(rr, o);
	lock_release_keep_error(lock);
	return rc;
}

static int check_opts(struct restore_opts *o)
{
	int kinds = !!o->pgdata + !!o->dbname + !!o->output;

	if (kinds != 1)
		return pgk_error(PGKEEP_EINVAL, "give exactly one of --pgdata DIR (base backups), "
				 "--dbname NAME or --output FILE (dumps)");
	if (!o->pgdata && (o->target != TARGET_NONE || o->archive_off || o->maps.n))
		return pgk_error(PGKEEP_EINVAL, "recovery targets, --archive-mode and "
				 "--tablespace-map are for --pgdata");
	if (o->create && !o->dbname)
		return pgk_error(PGKEEP_EINVAL, "--create goes with --dbname");
	if (!o->action)
		o->action = "promote";
	if (strcmp(o->action, "promote") != 0 && strcmp(o->action, "pause") != 0 &&
	    strcmp(o->action, "shutdown") != 0)
		return pgk_error(PGKEEP_EINVAL, "--target-action must be promote, pause or "
				 "shutdown, not '%s'", o->action);
	return 0;
}

static int set_target_time(void *o, const char *v) { return set_target(o, TARGET_TIME, v); }
static int set_target_lsn(void *o, const char *v) { return set_target(o, TARGET_LSN, v); }
static int set_target_xid(void *o, const char *v) { return set_target(o, TARGET_XID, v); }
static int set_target_name(void *o, const char *v) { return set_target(o, TARGET_NAME, v); }
static int set_target_immediate(void *o, const char *v)
{
	(void)v;
	return set_target(o, TARGET_IMMEDIATE, NULL);
}

static int set_archive_mode(void *opts, const char *v)
{
	struct restore_opts *o = opts;

	if (strcmp(v, "off") == 0)
		o->archive_off = true;
	else if (strcmp(v, "preserve") != 0)
		return pgk_error(PGKEEP_EINVAL, "--archive-mode must be off or preserve");
	return 0;
}

static int add_tablespace_map(void *opts, const char *v)
{
	return tblspc_map_parse(&((struct restore_opts *)opts)->maps, v);
}

static const struct opt_def restore_options[] = {
	OPT_STRING_DEF("pgdata", 'D', "DIR", struct restore_opts, pgdata,
		       "base backups: a new or empty data directory"),
	OPT_FLAG_DEF("force", 'f', struct restore_opts, force,
		     "empty a non-empty DIR first / replace an --output file"),
	OPT_CALL_DEF("target-time", 0, "T", set_target_time,
		     "stop recovery at this time ('2026-02-20 14:30:00+01')"),
	OPT_CALL_DEF("target-lsn", 0, "LSN", set_target_lsn, "... at this WAL location"),
	OPT_CALL_DEF("target-xid", 0, "XID", set_target_xid, "... after this transaction"),
	OPT_CALL_DEF("target-name", 0, "NAME", set_target_name,
		     "... at this pg_create_restore_point() name"),
	OPT_CALL_DEF("target-immediate", 0, NULL, set_target_immediate,
		     "... as soon as the backup is consistent"),
	OPT_STRING_DEF("target-action", 0, "A", struct restore_opts, action,
		       "promote (default), pause or shutdown"),
	OPT_CALL_DEF("archive-mode", 0, "M", set_archive_mode,
		     "preserve (default) or off: the restored server archives no WAL"),
	OPT_CALL_DEF("tablespace-map", 0, "OLDDIR=NEWDIR", add_tablespace_map,
		     "restore the tablespace backed up from OLDDIR into NEWDIR (a new\n"
		     "or empty directory; '\\=' for '=' in a path); repeatable"),
	OPT_STRING_DEF("dbname", 'd', "NAME", struct restore_opts, dbname,
		       "dumps: pg_restore into this database"),
	OPT_FLAG_DEF("create", 'C', struct restore_opts, create, "create the database first"),
	OPT_STRING_DEF("output", 'o', "FILE", struct restore_opts, output,
		       "dumps: write the dump file itself ('-' for stdout)"),
	OPT_STRING_DEF("stream", 0, "NAME", struct restore_opts, stream,
		       "which stream of a --all dump (globals.sql, DB.dump)"),
	OPT_PROGRESS_DEF(struct restore_opts, progress),
	OPT_JOBS(struct restore_opts, jobs),
	OPT_END,
};

static const struct opt_arg restore_args[] = {
	{ "ID|latest", "the backup: an id from 'pgkeep list', or the newest" },
	{ NULL, NULL },
};

const struct opt_spec restore_cli = {
	.command = "restore",
	.summary = "restore a backup (ID or latest), to a point in time for base backups",
	.synopsis = "ID|latest --pgdata DIR | --dbname NAME | --output FILE [OPTIONS]",
	.opts = restore_options,
	.args = restore_args,
	.min_args = 1,
	.max_args = 1,
	.args_error = "name one backup: an id from 'pgkeep list', or latest",
	.notes = "A recovery target (--target-*) is one of the five; the targets, --target-action,\n"
		 "--archive-mode and --tablespace-map are for --pgdata.",
};

static int parse_opts(int argc, char **argv, struct restore_opts *o)
{
	struct opt_args pos;
	int rc;

	memset(o, 0, sizeof(*o));
	rc = opt_parse(&restore_cli, argc, argv, o, &pos);
	if (rc < 0)
		return rc;
	o->id = pos.argv[0];
	return check_opts(o);
}

int cmd_restore(const struct pgk_globals *g, int argc, char **argv)
{
	struct restore_run rr;
	struct restore_opts o;
	int rc, status;

	if (parse_opts(argc, argv, &o) < 0) {
		tblspc_maps_free(&o.maps);
		return opt_fail(&restore_cli);
	}
	/* As root, become the data directory's owner before touching anything. */
	if (o.pgdata && privdrop_to_owner(o.pgdata, "restore") < 0) {
		tblspc_maps_free(&o.maps);
		return ctx_fail();
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&rr, 0, sizeof(rr));
	rr.g = g;
	clock_gettime(CLOCK_MONOTONIC, &rr.t0);
	if (ctx_load_config(g, &rr.cfg) < 0) {
		tblspc_maps_free(&o.maps);
		return ctx_fail();
	}
	rr.jobs = ctx_jobs(o.jobs, &rr.cfg, backup_default_jobs());
	rc = ctx_open_repo(g, &rr.cfg, &rr.repo);
	if (rc == 0) {
		rr.progress = progress_new(o.progress, "restore");
		rc = run_restore(&rr, &o);
		progress_finish(rr.progress, rc == 0);	/* when it stopped early */
	}
	/* Report before cleaning up: closing the store reuses the message buffer. */
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_free(&rr.m);
	tblspc_maps_free(&o.maps);
	repo_close(rr.repo);
	config_free(&rr.cfg);
	return status;
}

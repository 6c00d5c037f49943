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
#include "cmd/restore.h"
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
#include "pg/srvmanifest.h"
#include "pg/untar.h"
#include "pipeline/pipeline.h"
#include "repo/lock.h"
#include "repo/manifest.h"

#define LOCK_WAIT 60

/* ---------------------------------------------------------------- choosing the backup */

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
		if (!restore_target_reached(&rr->m, o))
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
		if (list[i - 1].type == want && restore_target_reached(&list[i - 1], o))
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

const struct manifest_stream *restore_find_stream(const struct manifest *m, const char *name)
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
	rc = stream_read(rr->repo, s, rr->jobs, restore_sink_fd, &sk);
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

	s = restore_find_stream(&rr->m, "base.tar");
	if (!s)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s has no base.tar stream", rr->m.id);
	sm = restore_find_stream(&rr->m, "backup_manifest");
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
		rc = restore_extract_stream(rr, s, s->size + (sm ? sm->size : 0), &u, true);
	for (i = 0; rc == 0 && i < spc.n; i++)
		rc = restore_extract_stream(rr, spc.v[i].s, spc.v[i].s->size, &spc.v[i].u, false);
	if (rc == 0 && sm)
		rc = restore_server_manifest(rr, sm, &u);
	if (rc == 0)
		rc = check_extracted(&u);
	if (rc == 0)
		rc = tblspc_link(&spc, &u);
	if (rc == 0)
		rc = srvmanifest_verify(u.rootfd, root, rr->m.id, CONTROL_PENDING);
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
	lock_release(lock);
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
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_free(&rr.m);
	tblspc_maps_free(&o.maps);
	repo_close(rr.repo);
	config_free(&rr.cfg);
	return status;
}

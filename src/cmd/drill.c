/*
 * pgkeep drill: the automated answer to "always test your backups".  The
 * newest base backup is restored into a scratch directory with all the
 * archived WAL after it, started, and checked: every database answers, and
 * amcheck (where installed) finds the B-tree indexes sound.  Then it is
 * stopped and removed.  Exit 0 only if all of it worked.
 *
 * The scratch cluster is a copy of production run by the PostgreSQL user:
 * it listens on no TCP address, only on a socket in a private directory,
 * and its pg_hba.conf (ours, not the backup's) admits the drill's own user
 * alone, by peer authentication.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/restore_tblspc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/child.h"
#include "pg/libarchive_api.h"
#include "pg/libpq_api.h"
#include "pg/recovery.h"
#include "repo/manifest.h"
#include "repo/walcheck.h"

struct drill_opts {
	const char *dir;	/* where the scratch directory goes */
	bool keep;
	int timeout;		/* seconds for recovery */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Only names the socket file: nothing listens on TCP, and the directory is ours. */
#define DRILL_PORT 5432
#define STR_(x) #x
#define STR(x) STR_(x)
#define SOCKET_NAME "/.s.PGSQL." STR(DRILL_PORT)

/* Run a PostgreSQL program to completion; its failure names it. */
static int run_program(char *const argv[])
{
	static char *const envp[] = { "LC_ALL=C", "PATH=/usr/bin:/bin", NULL };
	struct pg_child c;
	char buf[4096];
	int rc;

	rc = child_start(&c, argv, envp, CHILD_PIPE_STDOUT);
	if (rc < 0)
		return rc;
	while (read(c.fd, buf, sizeof(buf)) > 0)
		;
	return child_wait(&c);
}

/*
 * The last FATAL or PANIC line of the server log, to explain a failure the
 * server's state has shown; never the evidence itself (a client's refused
 * connection logs a FATAL too).
 */
static void log_cause(const char *logfile, char *out, size_t len)
{
	FILE *f = fopen(logfile, "r");
	char line[1024];

	snprintf(out, len, "see %s", logfile);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "FATAL:");

		if (!p)
			p = strstr(line, "PANIC:");
		if (p) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", p);
		}
	}
	fclose(f);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static char *query1(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	char *v = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0))
		v = xstrdup(PQgetvalue(res, 0, 0));
	else
		pgk_error(PGKEEP_EIO, "%s", PQresultErrorMessage(res));
	PQclear(res);
	return v;
}

static int connect_db(PGconn **out, const char *sock, const char *user, const char *db)
{
	const char *keys[] = { "host", "port", "user", "dbname", "connect_timeout", NULL };
	char portstr[16];
	const char *vals[6];

	snprintf(portstr, sizeof(portstr), "%d", DRILL_PORT);
	vals[0] = sock, vals[1] = portstr, vals[2] = user, vals[3] = db, vals[4] = "10", vals[5] = NULL;
	return libpq_connect(out, keys, vals, 0);
}

/* Every database answers; amcheck where the extension is available. */
static int sanity(const char *sock, const char *user, size_t *ndb, size_t *nidx)
{
	PGconn *conn;
	PGresult *res;
	int i, rc;

	*ndb = *nidx = 0;
	rc = connect_db(&conn, sock, user, "postgres");
	if (rc < 0)
		return rc;
	if (PQstatus(conn) != CONNECTION_OK) {
		rc = pgk_error(PGKEEP_EIO, "cannot connect to the restored cluster: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return rc;
	}
	res = PQexec(conn, "select datname from pg_database where datallowconn order by 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pgk_error(PGKEEP_EIO, "cannot list databases: %s", PQresultErrorMessage(res));
		goto out;
	}
	for (i = 0; rc == 0 && i < PQntuples(res); i++) {
		const char *db = PQgetvalue(res, i, 0);
		PGconn *dc;
		char *v;

		rc = connect_db(&dc, sock, user, db);
		if (rc < 0)
			break;
		if (PQstatus(dc) != CONNECTION_OK) {
			rc = pgk_error(PGKEEP_EIO, "database %s does not answer: %s", db, PQerrorMessage(dc));
			PQfinish(dc);
			break;
		}
		v = query1(dc, "select count(*) from pg_class");
		if (!v) {
			rc = pgk_error_wrap(PGKEEP_EIO, "database %s", db);
		} else {
			free(v);
			(*ndb)++;
			v = query1(dc, "select count(*) from pg_available_extensions where name = 'amcheck'");
			if (v && strcmp(v, "1") == 0) {
				char *n;

				free(query1(dc, "create extension if not exists amcheck"));
				n = query1(dc,
					   "select count(bt_index_check(c.oid)) from pg_index i "
					   "join pg_class c on c.oid = i.indexrelid "
					   "join pg_am am on am.oid = c.relam "
					   "where am.amname = 'btree' and c.relpersistence <> 't' and i.indisvalid");
				if (!n)
					rc = pgk_error_wrap(PGKEEP_ECORRUPT, "amcheck in database %s", db);
				else
					*nidx += strtoull(n, NULL, 10);
				free(n);
			}
			free(v);
		}
		PQfinish(dc);
	}
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static void report_gap(void *payload, const char *msg)
{
	size_t *gaps = payload;

	/* The first gap becomes the error; any others are logged as well. */
	if ((*gaps)++ == 0)
		pgk_error(PGKEEP_ENOTFOUND, "%s", msg);
	else
		pgk_log_error("%s", msg);
}

/* The newest base backup by recorded start time. */
static int newest_base(struct repo *r, struct manifest *out)
{
	struct manifest *list;
	size_t n, i, best = (size_t)-1;
	int rc;

	rc = manifest_list_summary(r, &list, &n);
	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (list[i].type == BACKUP_BASE)
			best = i; /* sorted by start time */
	if (best == (size_t)-1) {
		manifest_list_free(list, n);
		return pgk_error(PGKEEP_ENOTFOUND, "repository %s has no base backup to drill", r->name);
	}
	rc = manifest_load(r, list[best].id, out);
	manifest_list_free(list, n);
	return rc;
}

static const struct opt_def drill_options[] = {
	OPT_STRING_DEF("dir", 0, "DIR", struct drill_opts, dir,
		       "where the scratch directory goes (default /var/tmp)"),
	OPT_FLAG_DEF("keep", 0, struct drill_opts, keep, "keep the scratch directory afterwards"),
	OPT_SECONDS_DEF("timeout", "DUR", struct drill_opts, timeout, INT_MAX,
			"how long recovery may take (default 3600)"),
	OPT_END,
};

const struct opt_spec drill_cli = {
	.command = "drill",
	.summary = "restore the newest base backup into a scratch cluster and check it works",
	.synopsis = "[OPTIONS]",
	.opts = drill_options,
};

static int parse_args(int argc, char **argv, struct drill_opts *o)
{
	struct opt_args pos;

	o->dir = "/var/tmp";
	o->timeout = 3600;
	return opt_parse(&drill_cli, argc, argv, o, &pos);
}

/* The scratch cluster and where its pieces are. */
struct drill_run {
	const char *user;	/* the drill's OS user, the only one admitted */
	char scratch[4096];
	char data[4200], logfile[4200], sockdir[4200], hba[4200];
	char *pg_ctl;
	bool started;
};

/* A private directory for the socket: no other user can even reach it. */
static int make_sockdir(struct drill_run *d)
{
	struct sockaddr_un sa;

	snprintf(d->sockdir, sizeof(d->sockdir), "%s/socket", d->scratch);
	if (strlen(d->sockdir) + strlen(SOCKET_NAME) >= sizeof(sa.sun_path))
		return pgk_error(PGKEEP_EINVAL, "the drill's socket directory %s is too long for a "
				 "unix socket: choose a shorter --dir", d->sockdir);
	if (mkdir(d->sockdir, 0700) < 0 || chmod(d->sockdir, 0700) < 0)
		return pgk_error(PGKEEP_EIO, "cannot create %s: %s", d->sockdir, strerror(errno));
	return 0;
}

/* Our pg_hba.conf: the drill's user, over the socket, by peer; nobody else, nothing else. */
static int write_hba(struct drill_run *d)
{
	char *text;
	size_t len;
	int fd, rc = 0;

	if (!*d->user || strpbrk(d->user, "\"\n\r"))
		return pgk_error(PGKEEP_EINVAL, "user name '%s' cannot go into pg_hba.conf", d->user);
	snprintf(d->hba, sizeof(d->hba), "%s/pg_hba.conf", d->scratch);
	text = xasprintf("# written by pgkeep drill: only \"%s\", over the private socket\n"
			 "local all \"%s\" peer\n", d->user, d->user);
	len = strlen(text);
	fd = open(d->hba, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot create %s: %s", d->hba, strerror(errno));
	else if (write(fd, text, len) != (ssize_t)len)
		rc = pgk_error(PGKEEP_EIO, "cannot write %s: %s", d->hba, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

static bool server_running(const struct drill_run *d)
{
	char *argv[] = { d->pg_ctl, "status", "-D", (char *)d->data, NULL };

	return run_program(argv) == 0;
}

/*
 * Command-line settings override the backup's configuration: no TCP, our
 * socket directory and pg_hba.conf, and archive_mode off so that the drill's
 * new timeline never reaches the repository.
 */
static int start_server(struct drill_run *d, const char *id)
{
	char *qsock = shell_quote(d->sockdir), *qhba = shell_quote(d->hba), *opts, cause[600];
	int rc;

	opts = xasprintf("-c listen_addresses='' -c port=%d -c unix_socket_directories=%s "
			 "-c unix_socket_permissions=0700 -c hba_file=%s -c archive_mode=off "
			 "-c hot_standby=on -c logging_collector=off", DRILL_PORT, qsock, qhba);
	{
		char *argv[] = { d->pg_ctl, "-D", d->data, "-l", d->logfile, "-w", "-t", "600",
				 "-o", opts, "start", NULL };

		d->started = true;
		rc = run_program(argv);
	}
	if (rc < 0) {
		log_cause(d->logfile, cause, sizeof(cause));
		rc = pgk_error(PGKEEP_EIO, "PostgreSQL did not start on the restored backup %s: %s",
			       id, cause);
	}
	free(opts);
	free(qhba);
	free(qsock);
	return rc;
}

/*
 * Where recovery stands, from the server itself: 1 promoted past the
 * backup's stop LSN, 0 still recovering (or not answering yet, *why says
 * so), negative when it promoted short of the backup's end.
 */
static int recovery_state(const struct drill_run *d, const struct manifest *m, char *why,
			  size_t len)
{
	char sql[256], *v = NULL;
	PGconn *conn;
	int rc = 0;

	snprintf(sql, sizeof(sql), "select case when pg_is_in_recovery() then 'recovering' "
		 "when pg_current_wal_lsn() >= '%X/%X'::pg_lsn then 'recovered' else "
		 "pg_current_wal_lsn()::text end", (unsigned)(m->stop_lsn >> 32),
		 (unsigned)m->stop_lsn);
	if (connect_db(&conn, d->sockdir, d->user, "postgres") < 0)
		return pgk_error(PGKEEP_EIO, "%s", pgk_errmsg());
	if (PQstatus(conn) == CONNECTION_OK)
		v = query1(conn, sql);
	snprintf(why, len, "%s", PQstatus(conn) == CONNECTION_OK ? v ? v : pgk_errmsg()
							       : PQerrorMessage(conn));
	why[strcspn(why, "\n")] = '\0';
	PQfinish(conn);
	if (v && strcmp(v, "recovered") == 0)
		rc = 1;
	else if (v && strcmp(v, "recovering") != 0)
		rc = pgk_error(PGKEEP_ECORRUPT, "recovery of backup %s ended at %s, before the "
			       "backup's end at %X/%X", m->id, v, (unsigned)(m->stop_lsn >> 32),
			       (unsigned)m->stop_lsn);
	free(v);
	return rc;
}

/* Recovery runs until the archive ends, then promotes; a stopped server is a failed drill. */
static int wait_recovery(struct drill_run *d, const struct manifest *m, int timeout)
{
	double t0 = now_s();
	char why[512], cause[600];
	int rc;

	for (;;) {
		rc = recovery_state(d, m, why, sizeof(why));
		if (rc != 0)
			return rc < 0 ? rc : 0;
		pgk_log_debug("waiting for recovery: %s", why);
		if (!server_running(d)) {
			log_cause(d->logfile, cause, sizeof(cause));
			return pgk_error(PGKEEP_EIO, "recovery of backup %s failed: the server "
					 "stopped (%s)", m->id, cause);
		}
		if (now_s() - t0 > timeout)
			return pgk_error(PGKEEP_EIO, "recovery of backup %s did not finish within "
					 "%d s (last: %s)", m->id, timeout, why);
		usleep(200 * 1000);
	}
}

static void stop_server(struct drill_run *d)
{
	char *stop[] = { d->pg_ctl, "-D", d->data, "-m", "immediate", "-w", "stop", NULL };

	if (!d->started || !server_running(d))
		return;
	if (run_program(stop) < 0)
		pgk_log_warning("cannot stop the drill's server: %s", pgk_errmsg());
}

/*
 * The restore command itself, in-process: the same code path.  Every
 * tablespace goes into the scratch directory too (tblspc/OID): never onto
 * the production cluster's own tablespace directories.
 */
static int drill_restore(const struct pgk_globals *g, struct drill_run *d,
			 const struct manifest *m)
{
	const char *saved = pgk_log_command;
	char **rargv = xzalloc((5 + 2 * m->nstreams) * sizeof(*rargv));
	/* getopt reorders rargv: what was allocated is kept here. */
	char **maps = xzalloc((m->nstreams + 1) * sizeof(*maps));
	/* --tablespace-map wants absolute paths, whatever --dir was. */
	char *scratch = realpath(d->scratch, NULL), *old_dir;
	int rargc = 0, rc;
	size_t k, nmaps = 0;

	rargv[rargc++] = "restore";
	rargv[rargc++] = (char *)m->id;
	rargv[rargc++] = "--pgdata";
	rargv[rargc++] = d->data;
	for (k = 0; k < m->nstreams; k++) {
		if (!m->streams[k].tblspc_oid)
			continue;
		old_dir = tblspc_map_escape(m->streams[k].tblspc_location);
		rargv[rargc++] = "--tablespace-map";
		maps[nmaps] = xasprintf("%s=%s/tblspc/%u", old_dir, scratch ? scratch : d->scratch,
					m->streams[k].tblspc_oid);
		rargv[rargc++] = maps[nmaps++];
		free(old_dir);
	}
	optind = 0;
	rc = cmd_restore(g, rargc, rargv);
	pgk_log_command = saved;
	for (k = 0; k < nmaps; k++)
		free(maps[k]);
	free(maps);
	free(rargv);
	free(scratch);
	if (rc != PGK_EXIT_OK)
		return pgk_error(PGKEEP_EIO, "restoring backup %s failed (see the messages above)",
				 m->id);
	return 0;
}

/* The WAL first: a gap is found in a second, not after a long restore. */
static int check_wal(struct repo *r, const struct manifest *m)
{
	struct wal_archive wa = { 0 };
	size_t gaps = 0;

	if (wal_archive_load(r, m->wal_seg_size, &wa) < 0)
		return PGKEEP_EIO;
	wal_archive_check(&wa, m, true, report_gap, &gaps);
	wal_archive_free(&wa);
	if (gaps)
		return pgk_error_wrap(PGKEEP_ENOTFOUND, "drill of backup %s cannot recover", m->id);
	return 0;
}

static int drill_scratch(struct drill_run *d, const char *dir)
{
	snprintf(d->scratch, sizeof(d->scratch), "%s/pgkeep-drill.XXXXXX", dir);
	if (!mkdtemp(d->scratch)) {
		d->scratch[0] = '\0';
		return pgk_error(PGKEEP_EIO, "cannot create a scratch directory in %s: %s", dir,
				 strerror(errno));
	}
	snprintf(d->data, sizeof(d->data), "%s/data", d->scratch);
	snprintf(d->logfile, sizeof(d->logfile), "%s/postgresql.log", d->scratch);
	return 0;
}

static int drill_backup(const struct pgk_globals *g, struct drill_run *d,
			const struct manifest *m, const struct drill_opts *o)
{
	double t_restore, t_start, t_recovered;
	size_t ndb = 0, nidx = 0;
	int rc;

	printf("drill: restoring backup %s into %s\n", m->id, d->data);
	fflush(stdout);
	t_restore = now_s();
	rc = drill_restore(g, d, m);
	if (rc < 0)
		return rc;
	t_start = now_s();
	d->pg_ctl = child_find_program("pg_ctl", m->pg_version / 10000);
	rc = make_sockdir(d);
	if (rc == 0)
		rc = write_hba(d);
	if (rc == 0)
		rc = start_server(d, m->id);
	if (rc == 0)
		rc = wait_recovery(d, m, o->timeout);
	if (rc < 0)
		return rc;
	t_recovered = now_s();
	rc = sanity(d->sockdir, d->user, &ndb, &nidx);
	if (rc < 0)
		return rc;
	printf("drill: backup %s restored in %.1f s, recovered in %.1f s; %zu database(s) answered, "
	       "%zu index(es) checked with amcheck\n",
	       m->id, t_start - t_restore, t_recovered - t_start, ndb, nidx);
	return 0;
}

int cmd_drill(const struct pgk_globals *g, int argc, char **argv)
{
	struct drill_opts o = { 0 };
	struct pgk_config cfg = { 0 };
	struct manifest m = { 0 };
	struct drill_run d = { 0 };
	struct repo *r = NULL;
	struct passwd *pw = getpwuid(geteuid());
	char *user = NULL;
	int ret = PGK_EXIT_ERROR;

	if (parse_args(argc, argv, &o) < 0)
		return opt_fail(&drill_cli);
	if (geteuid() == 0) {
		pgk_log_error("run drill as the PostgreSQL user (e.g. postgres), not as root: PostgreSQL refuses to start as root");
		return PGK_EXIT_ERROR;
	}
	/* getpwuid's result is overwritten by later lookups (libpq makes some). */
	user = xstrdup(pw ? pw->pw_name : "postgres");
	d.user = user;
	if (ctx_load_config(g, &cfg) < 0) {
		free(user);
		return ctx_fail();
	}
	/* Both are needed, libpq only after a long restore: fail before it. */
	if (libpq_load() < 0 || libarchive_load() < 0)
		goto fail;
	if (ctx_open_repo(g, &cfg, &r) < 0 || newest_base(r, &m) < 0 || check_wal(r, &m) < 0)
		goto fail;
	if (drill_scratch(&d, o.dir) < 0 || drill_backup(g, &d, &m, &o) < 0)
		goto fail;
	ret = PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	stop_server(&d);
	if (d.scratch[0]) {
		if (o.keep)
			printf("drill: scratch directory kept: %s\n", d.scratch);
		else
			nftw(d.scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(d.pg_ctl);
	free(user);
	manifest_free(&m);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

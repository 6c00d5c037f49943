/*
 * pgkeep drill: the automated answer to "always test your backups".  The
 * newest base backup is restored into a scratch directory with all the
 * archived WAL after it, started on a free loopback port, and checked: every
 * database answers, and amcheck (where installed) finds the B-tree indexes
 * sound.  Then it is stopped and removed.  Exit 0 only if all of it worked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/child.h"
#include "pg/libarchive_api.h"
#include "pg/libpq_api.h"
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

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

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

/* The last FATAL or PANIC line of the server log: why recovery failed. */
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

static int connect_db(PGconn **out, const char *sock, int port, const char *user, const char *db)
{
	const char *keys[] = { "host", "port", "user", "dbname", "connect_timeout", NULL };
	char portstr[16];
	const char *vals[6];

	snprintf(portstr, sizeof(portstr), "%d", port);
	vals[0] = sock, vals[1] = portstr, vals[2] = user, vals[3] = db, vals[4] = "10", vals[5] = NULL;
	return libpq_connect(out, keys, vals, 0);
}

/* Every database answers; amcheck where the extension is available. */
static int sanity(const char *sock, int port, const char *user, size_t *ndb, size_t *nidx)
{
	PGconn *conn;
	PGresult *res;
	int i, rc;

	*ndb = *nidx = 0;
	rc = connect_db(&conn, sock, port, user, "postgres");
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

		rc = connect_db(&dc, sock, port, user, db);
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

static int parse_args(int argc, char **argv, struct drill_opts *o)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->dir = "/var/tmp";
	o->timeout = 3600;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'k': o->keep = true; break;
		case 't':
			if (parse_seconds("--timeout", optarg, INT_MAX, &o->timeout) < 0) {
				pgk_log_error("%s", pgk_errmsg());
				return -1;
			}
			break;
		default: return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

int cmd_drill(const struct pgk_globals *g, int argc, char **argv)
{
	struct drill_opts o = { 0 };
	struct pgk_config cfg = { 0 };
	struct manifest m = { 0 };
	struct wal_archive wa = { 0 };
	struct repo *r = NULL;
	struct passwd *pw = getpwuid(geteuid());
	char *user = NULL;
	char scratch[4096], data[4200], logfile[4200], opts[4600];
	char *pg_ctl = NULL, cause[600];
	double t_restore, t_start, t_recovered;
	size_t gaps = 0, ndb = 0, nidx = 0;
	bool started = false, have_scratch = false;
	int port, rc, ret = PGK_EXIT_ERROR;

	if (parse_args(argc, argv, &o) < 0) {
		pgk_log_error("usage: pgkeep drill [--dir DIR] [--keep] [--timeout SECS]");
		return PGK_EXIT_USAGE;
	}
	if (geteuid() == 0) {
		pgk_log_error("run drill as the PostgreSQL user (e.g. postgres), not as root: PostgreSQL refuses to start as root");
		return PGK_EXIT_ERROR;
	}
	/* getpwuid's result is overwritten by later lookups (libpq makes some). */
	user = xstrdup(pw ? pw->pw_name : "postgres");
	if (ctx_load_config(g, &cfg) < 0) {
		free(user);
		return ctx_fail();
	}
	/* Both are needed, libpq only after a long restore: fail before it. */
	if (libpq_load() < 0 || libarchive_load() < 0)
		goto fail;
	if (ctx_open_repo(g, &cfg, &r) < 0 || newest_base(r, &m) < 0)
		goto fail;

	/* The WAL first: a gap is found in a second, not after a long restore. */
	if (wal_archive_load(r, m.wal_seg_size, &wa) < 0)
		goto fail;
	wal_archive_check(&wa, &m, true, report_gap, &gaps);
	wal_archive_free(&wa);
	if (gaps) {
		pgk_error_wrap(PGKEEP_ENOTFOUND, "drill of backup %s cannot recover", m.id);
		goto fail;
	}

	snprintf(scratch, sizeof(scratch), "%s/pgkeep-drill.XXXXXX", o.dir);
	if (!mkdtemp(scratch)) {
		pgk_error(PGKEEP_EIO, "cannot create a scratch directory in %s: %s", o.dir, strerror(errno));
		goto fail;
	}
	have_scratch = true;
	snprintf(data, sizeof(data), "%s/data", scratch);
	snprintf(logfile, sizeof(logfile), "%s/postgresql.log", scratch);
	printf("drill: restoring backup %s into %s\n", m.id, data);
	fflush(stdout);

	/* The restore command itself, in-process: the same code path. */
	t_restore = now_s();
	{
		char *rargv[] = { "restore", m.id, "--pgdata", data, NULL };
		const char *saved = pgk_log_command;

		optind = 0;
		rc = cmd_restore(g, 4, rargv);
		pgk_log_command = saved;
		if (rc != PGK_EXIT_OK) {
			pgk_error(PGKEEP_EIO, "restoring backup %s failed (see the messages above)", m.id);
			goto fail;
		}
	}
	t_start = now_s();

	pg_ctl = child_find_program("pg_ctl", m.pg_version / 10000);
	port = free_port();
	if (port < 0) {
		pgk_error(PGKEEP_EIO, "no free port on 127.0.0.1");
		goto fail;
	}
	/* archive_mode off: the drill's new timeline must never reach the repository. */
	snprintf(opts, sizeof(opts),
		 "-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "
		 "-c archive_mode=off -c hot_standby=on", port, scratch);
	{
		char *sargv[] = { pg_ctl, "-D", data, "-l", logfile, "-w", "-t", "600", "-o", opts, "start", NULL };

		rc = run_program(sargv);
		started = rc == 0;
		if (rc < 0) {
			log_cause(logfile, cause, sizeof(cause));
			pgk_error(PGKEEP_EIO, "PostgreSQL did not start on the restored backup %s: %s", m.id, cause);
			goto fail;
		}
	}

	/* Recovery runs until the archive ends, then promotes. */
	for (;;) {
		PGconn *conn;
		char *v;

		if (connect_db(&conn, scratch, port, user, "postgres") < 0)
			goto fail;
		v = PQstatus(conn) == CONNECTION_OK ? query1(conn, "select pg_is_in_recovery()") : NULL;
		if (!v)
			pgk_log_debug("waiting for recovery: %s", PQstatus(conn) == CONNECTION_OK
					  ? pgk_errmsg() : PQerrorMessage(conn));
		PQfinish(conn);
		if (v && strcmp(v, "f") == 0) {
			free(v);
			break;
		}
		free(v);
		if (now_s() - t_start > o.timeout) {
			pgk_error(PGKEEP_EIO, "recovery of backup %s did not finish within %d s", m.id, o.timeout);
			goto fail;
		}
		if (access(logfile, R_OK) == 0) {
			log_cause(logfile, cause, sizeof(cause));
			if (strncmp(cause, "FATAL", 5) == 0 || strncmp(cause, "PANIC", 5) == 0) {
				pgk_error(PGKEEP_EIO, "recovery of backup %s failed: %s", m.id, cause);
				goto fail;
			}
		}
		usleep(200 * 1000);
	}
	t_recovered = now_s();

	if (sanity(scratch, port, user, &ndb, &nidx) < 0)
		goto fail;
	printf("drill: backup %s restored in %.1f s, recovered in %.1f s; %zu database(s) answered, "
	       "%zu index(es) checked with amcheck\n",
	       m.id, t_start - t_restore, t_recovered - t_start, ndb, nidx);
	ret = PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	if (started) {
		char *stop[] = { pg_ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL };

		if (run_program(stop) < 0)
			pgk_log_warning("cannot stop the drill's server: %s", pgk_errmsg());
	}
	if (have_scratch) {
		if (o.keep)
			printf("drill: scratch directory kept: %s\n", scratch);
		else
			nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(pg_ctl);
	free(user);
	manifest_free(&m);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

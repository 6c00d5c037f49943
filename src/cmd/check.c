/*
 * pgkeep check: is this set-up able to keep the database?  Walks the chain
 * from config to an archived segment, one named item at a time, and says
 * what to do about each that fails.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/libpq_api.h"
#include "pg/walname.h"
#include "repo/layout.h"

struct checklist {
	int failed;
};

static void item(struct checklist *cl, bool good, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void item(struct checklist *cl, bool good, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%-16s %s: ", name, good ? "ok" : "FAILED");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!good)
		cl->failed++;
}

/* Write, read back and remove a small object. */
static int check_writable(struct repo *r)
{
	struct pgk_buf b = PGK_BUF_INIT;
	char key[128], host[64] = "host", payload[64];
	int rc;

	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	snprintf(key, sizeof(key), "check/%s-%ld", host, (long)getpid());
	snprintf(payload, sizeof(payload), "pgkeep check %ld", (long)time(NULL));
	rc = repo_put(r, key, OBJ_META, payload, strlen(payload), 0);
	if (rc == 0)
		rc = repo_get(r, key, OBJ_META, &b);
	if (rc == 0 && (b.len != strlen(payload) || memcmp(b.data, payload, b.len) != 0))
		rc = pgk_error(PGKEEP_ECORRUPT, "object %s read back differs from what was written", key);
	buf_free(&b);
	if (store_remove(r->store, key) < 0 && rc == 0)
		rc = -1;
	return rc;
}

/* As PQconnectdb(conninfo) would: a conninfo as dbname is expanded. */
static int connect_conninfo(PGconn **out, const char *conninfo)
{
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { conninfo, NULL };

	return libpq_connect(out, keys, vals, 1);
}

static char *query1(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	char *v = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = xstrdup(PQgetvalue(res, 0, 0));
	else
		pgk_error(PGKEEP_EIO, "%s", PQresultErrorMessage(res));
	PQclear(res);
	return v;
}

static void trim_newline(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* Force a segment switch and wait for that segment to reach the repository. */
static void check_archiving(struct checklist *cl, PGconn *conn, struct repo *r, int timeout)
{
	char *seg, key[LAYOUT_WAL_KEY_MAX];
	struct pgkeep_stat st;
	time_t deadline;
	int rc;

	/* A restore point guarantees WAL activity, so the switch really switches. */
	free(query1(conn, "select pg_create_restore_point('pgkeep check')"));
	seg = query1(conn, "select pg_walfile_name(pg_switch_wal())");
	if (!seg) {
		char msg[PGKEEP_ERRLEN];

		snprintf(msg, sizeof(msg), "%s", pgk_errmsg());
		trim_newline(msg);
		item(cl, false, "archiving", "cannot switch WAL (%s): run check as a superuser", msg);
		return;
	}
	layout_wal_key(seg, key, sizeof(key));
	deadline = time(NULL) + timeout;
	for (;;) {
		rc = store_stat(r->store, key, &st);
		if (rc == 0) {
			item(cl, true, "archiving", "segment %s reached the repository", seg);
			break;
		}
		if (rc != PGKEEP_ENOTFOUND) {
			item(cl, false, "archiving", "%s", pgk_errmsg());
			break;
		}
		if (time(NULL) >= deadline) {
			item(cl, false, "archiving",
			     "segment %s did not reach the repository within %d s: look for archive_command errors in the PostgreSQL log and in pg_stat_archiver",
			     seg, timeout);
			break;
		}
		usleep(200 * 1000);
	}
	free(seg);
}

struct check_opts {
	int timeout;	/* seconds, -1: not given */
};

static const struct opt_def check_options[] = {
	OPT_SECONDS_DEF("timeout", "DUR", struct check_opts, timeout, INT_MAX,
			"how long to wait for a switched segment (default archive_timeout, else 60)"),
	OPT_END,
};

const struct opt_spec check_cli = {
	.command = "check",
	.summary = "check config, repository, PostgreSQL and WAL archiving end to end",
	.synopsis = "[OPTIONS]",
	.opts = check_options,
};

int cmd_check(const struct pgk_globals *g, int argc, char **argv)
{
	struct check_opts o = { -1 };
	struct opt_args pos;
	struct pgk_config cfg = { 0 };
	struct checklist cl = { 0 };
	struct repo *r = NULL;
	PGconn *conn = NULL;
	int timeout;
	char *v;

	if (opt_parse(&check_cli, argc, argv, &o, &pos) < 0)
		return opt_fail(&check_cli);
	timeout = o.timeout;

	if (ctx_load_config(g, &cfg) < 0) {
		item(&cl, false, "config", "%s", pgk_errmsg());
		return PGK_EXIT_ERROR;
	}
	item(&cl, true, "config", "%s", cfg.path);
	if (timeout < 0)
		timeout = cfg.archive_timeout > 0 ? cfg.archive_timeout : 60;

	if (ctx_open_repo(g, &cfg, &r) < 0) {
		item(&cl, false, "repository", "%s", pgk_errmsg());
		goto out;
	}
	item(&cl, true, "repository", "%s opened with the passphrase", r->name);
	if (check_writable(r) < 0)
		item(&cl, false, "writable", "%s", pgk_errmsg());
	else
		item(&cl, true, "writable", "an object was written, read back and removed");

	if (!cfg.conninfo) {
		item(&cl, false, "postgresql", "no conninfo in [global] of %s: set it to reach the cluster",
		     cfg.path);
		goto out;
	}
	if (connect_conninfo(&conn, cfg.conninfo) < 0) {
		item(&cl, false, "postgresql", "%s", pgk_errmsg());
		goto out;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char msg[PGKEEP_ERRLEN];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
		trim_newline(msg);
		/* libpq quotes a bad conninfo, password and all. */
		config_scrub_secrets(msg);
		item(&cl, false, "postgresql", "cannot connect (%s): check conninfo in %s", msg, cfg.path);
		goto out;
	}
	item(&cl, true, "postgresql", "connected, server %s", PQparameterStatus(conn, "server_version"));

	v = query1(conn, "select current_setting('archive_mode')");
	if (v && (strcmp(v, "on") == 0 || strcmp(v, "always") == 0))
		item(&cl, true, "archive_mode", "%s", v);
	else
		item(&cl, false, "archive_mode", "is '%s': set archive_mode = on and restart PostgreSQL",
		     v ? v : "?");
	free(v);
	v = query1(conn, "select current_setting('archive_command')");
	if (v && strstr(v, "pgkeep") && strstr(v, "wal-push") && strstr(v, "%p"))
		item(&cl, true, "archive_command", "%s", v);
	else
		item(&cl, false, "archive_command",
		     "is '%s': set archive_command = 'pgkeep --config %s wal-push %%p' and reload",
		     v ? v : "?", cfg.path);
	free(v);
	if (cl.failed == 0)
		check_archiving(&cl, conn, r, timeout);
	else
		item(&cl, false, "archiving", "not tried until the items above pass");
out:
	if (conn)
		PQfinish(conn);
	if (r)
		repo_close(r);
	config_free(&cfg);
	if (cl.failed)
		printf("check: %d item(s) failed\n", cl.failed);
	return cl.failed ? PGK_EXIT_ERROR : PGK_EXIT_OK;
}

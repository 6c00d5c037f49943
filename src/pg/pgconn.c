/*
 * libpq queries pgkeep needs before backing up or restoring, and the
 * translation of a conninfo into environment variables for child programs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/basebackup.h"
#include "pg/libpq_api.h"
#include "pg/pgconn.h"

extern char **environ;

struct pgconn {
	PGconn *conn;
};

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	pgk_log_debug("server: %s", msg);
}

int pgconn_open(struct pgconn **out, const char *conninfo, const char *dbname)
{
	const char *keys[3] = { "dbname", NULL, NULL };
	const char *vals[3] = { conninfo ? conninfo : "", NULL, NULL };
	struct pgconn *c;
	char *msg, *nl;
	int rc;

	if (dbname) {
		/* The first dbname is expanded as a conninfo, a later one overrides. */
		keys[1] = "dbname";
		vals[1] = dbname;
	}
	c = xzalloc(sizeof(*c));
	rc = libpq_connect(&c->conn, keys, vals, 1);
	if (rc < 0) {
		free(c);
		return rc;
	}
	if (PQstatus(c->conn) != CONNECTION_OK) {
		msg = xstrdup(PQerrorMessage(c->conn));
		while ((nl = strchr(msg, '\n')) && nl[1] == '\0')
			*nl = '\0';
		for (nl = msg; (nl = strchr(nl, '\n'));)
			*nl = ' ';
		pgk_error(PGKEEP_EIO, "cannot connect to PostgreSQL: %s", msg);
		free(msg);
		PQfinish(c->conn);
		free(c);
		return PGKEEP_EIO;
	}
	PQsetNoticeProcessor(c->conn, quiet_notice, NULL);
	*out = c;
	return 0;
}

void pgconn_close(struct pgconn *c)
{
	if (!c)
		return;
	PQfinish(c->conn);
	free(c);
}

static int query_error(PGresult *res, const char *what)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (!m)
		m = res ? PQresStatus(PQresultStatus(res)) : "no result";
	pgk_error(PGKEEP_EIO, "PostgreSQL: %s failed: %s", what, m);
	PQclear(res);
	return PGKEEP_EIO;
}

/* Run a query with text parameters; a result of tuples, or an error. */
static int query(struct pgconn *c, PGresult **out, const char *what, const char *sql,
		 int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		return query_error(res, what);
	*out = res;
	return 0;
}

/* One non-null value from a one-row result. */
static int query_value(struct pgconn *c, const char *what, const char *sql, char **out)
{
	PGresult *res;
	int rc;

	rc = query(c, &res, what, sql, 0, NULL);
	if (rc < 0)
		return rc;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return pgk_error(PGKEEP_EIO, "PostgreSQL: %s returned no value", what);
	}
	*out = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int query_u64(struct pgconn *c, const char *what, const char *sql, uint64_t *out)
{
	char *v, *end;
	int rc;

	rc = query_value(c, what, sql, &v);
	if (rc < 0)
		return rc;
	*out = strtoull(v, &end, 10);
	if (end == v || *end) {
		rc = pgk_error(PGKEEP_EIO, "PostgreSQL: %s returned '%s', not a number", what, v);
	}
	free(v);
	return rc;
}

int pgconn_check_version(int version)
{
	char text[32];

	if (basebackup_server_supported(version))
		return 0;
	/* 9.6 and before numbered their majors with two parts. */
	if (version >= 100000)
		snprintf(text, sizeof(text), "%d", version / 10000);
	else
		snprintf(text, sizeof(text), "%d.%d", version / 10000, version / 100 % 100);
	return pgk_error(PGKEEP_EINVAL, "PostgreSQL %s (server_version_num %d) is not supported: "
			 "pgkeep supports PostgreSQL " BASEBACKUP_VERSIONS_TEXT, text, version);
}

int pgconn_server_info(struct pgconn *c, struct pg_server_info *out)
{
	uint64_t v;
	char *s;
	int rc;

	memset(out, 0, sizeof(*out));
	out->version = PQserverVersion(c->conn);
	rc = pgconn_check_version(out->version);
	if (rc < 0)
		return rc;
	rc = query_u64(c, "reading the system identifier",
		       "select system_identifier from pg_control_system()", &out->sysid);
	if (rc == 0)
		rc = query_u64(c, "reading the timeline",
			       "select timeline_id from pg_control_checkpoint()", &v);
	if (rc < 0)
		return rc;
	out->timeline = (uint32_t)v;
	rc = query_u64(c, "reading the WAL segment size",
		       "select bytes_per_wal_segment from pg_control_init()", &v);
	if (rc < 0)
		return rc;
	out->wal_seg_size = (uint32_t)v;
	rc = query_value(c, "pg_is_in_recovery()", "select pg_is_in_recovery()", &s);
	if (rc < 0)
		return rc;
	out->in_recovery = strcmp(s, "t") == 0;
	free(s);
	rc = query_value(c, "reading archive_mode", "select current_setting('archive_mode')", &s);
	if (rc < 0)
		return rc;
	snprintf(out->archive_mode, sizeof(out->archive_mode), "%s", s);
	free(s);
	rc = query_value(c, "reading archive_command",
			 "select current_setting('archive_command')", &out->archive_command);
	if (rc == 0)
		rc = query_value(c, "reading archive_library",
				 "select current_setting('archive_library')", &out->archive_library);
	if (rc == 0)
		rc = query_value(c, "current_database()", "select current_database()", &out->dbname);
	if (rc < 0)
		pg_server_info_free(out);
	return rc;
}

void pg_server_info_free(struct pg_server_info *i)
{
	free(i->archive_command);
	free(i->archive_library);
	free(i->dbname);
	memset(i, 0, sizeof(*i));
}

int pgconn_extra_tablespaces(struct pgconn *c, char **out, int *count)
{
	struct pgk_buf b = PGK_BUF_INIT;
	PGresult *res;
	int rc, i;

	rc = query(c, &res, "listing tablespaces",
		   "select spcname, pg_tablespace_location(oid) from pg_tablespace "
		   "where spcname not in ('pg_default', 'pg_global') order by spcname",
		   0, NULL);
	if (rc < 0)
		return rc;
	*count = PQntuples(res);
	buf_printf(&b, "%s", "");
	for (i = 0; i < *count; i++)
		buf_printf(&b, "%s%s (%s)", i ? ", " : "", PQgetvalue(res, i, 0),
			   PQgetvalue(res, i, 1));
	PQclear(res);
	*out = buf_detach(&b);
	return 0;
}

int pgconn_archive_wait(struct pgconn *c, struct archive_wait *out)
{
	PGresult *res;
	bool one;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = query(c, &res, "reading backup progress",
		   "select (select pid from pg_stat_progress_basebackup "
		   "        where phase like 'waiting for wal archiving%' limit 1), "
		   "       archived_count, last_failed_wal from pg_stat_archiver", 0, NULL);
	if (rc < 0)
		return rc;
	one = PQntuples(res) == 1;
	if (one && !PQgetisnull(res, 0, 0))
		out->pid = atoi(PQgetvalue(res, 0, 0));
	if (one && !PQgetisnull(res, 0, 1))
		out->archived = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if (one && !PQgetisnull(res, 0, 2))
		out->last_failed = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

int pgconn_cancel_walsender(struct pgconn *c, const char *appname)
{
	const char *params[1] = { appname };
	PGresult *res;
	int rc;

	rc = query(c, &res, "cancelling the backup's walsender",
		   "select pg_cancel_backend(pid) from pg_stat_activity "
		   "where backend_type = 'walsender' and application_name = $1", 1, params);
	if (rc < 0)
		return rc;
	PQclear(res);
	return 0;
}

int pgconn_database_size(struct pgconn *c, const char *dbname, uint64_t *out)
{
	const char *params[1] = { dbname };
	PGresult *res;
	int rc;

	rc = query(c, &res, "pg_database_size()", "select pg_database_size($1)", 1, params);
	if (rc < 0)
		return rc;
	*out = PQntuples(res) == 1 ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return 0;
}

int pgconn_databases(struct pgconn *c, char ***out, size_t *n)
{
	PGresult *res;
	int rc, i;

	rc = query(c, &res, "listing databases",
		   "select datname from pg_database where datallowconn and not datistemplate "
		   "order by datname", 0, NULL);
	if (rc < 0)
		return rc;
	*n = (size_t)PQntuples(res);
	*out = xzalloc((*n + 1) * sizeof(char *));
	for (i = 0; i < PQntuples(res); i++)
		(*out)[i] = xstrdup(PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

bool pgconn_database_exists(struct pgconn *c, const char *dbname, int *err)
{
	const char *params[1] = { dbname };
	PGresult *res;
	bool found;

	*err = query(c, &res, "looking up a database",
		     "select 1 from pg_database where datname = $1", 1, params);
	if (*err < 0)
		return false;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

int pgconn_create_database(struct pgconn *c, const char *dbname)
{
	char *ident, *sql;
	PGresult *res;
	int rc = 0;

	ident = PQescapeIdentifier(c->conn, dbname, strlen(dbname));
	if (!ident)
		return pgk_error(PGKEEP_EINVAL, "cannot quote database name '%s'", dbname);
	sql = xasprintf("create database %s template template0", ident);
	PQfreemem(ident);
	res = PQexec(c->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = query_error(res, "create database");
		return pgk_error_wrap(rc, "database %s", dbname);
	}
	PQclear(res);
	return rc;
}

static bool env_overridden(const char *entry, PQconninfoOption *opts, const char *dbname)
{
	PQconninfoOption *o;
	size_t len;

	for (o = opts; o && o->keyword; o++) {
		if (!o->envvar || !(o->val || (dbname && strcmp(o->keyword, "dbname") == 0)))
			continue;
		len = strlen(o->envvar);
		if (strncmp(entry, o->envvar, len) == 0 && entry[len] == '=')
			return true;
	}
	return false;
}

int pgconn_child_env(const char *conninfo, const char *dbname, const char *appname,
		     char ***envp)
{
	PQconninfoOption *opts = NULL, *o;
	char *errmsg = NULL;
	size_t n = 0, i = 0;
	char **env, **e;
	int rc;

	if (conninfo && *conninfo) {
		rc = libpq_conninfo_parse(&opts, conninfo, &errmsg);
		if (rc < 0)
			return rc;
		if (!opts) {
			/* libpq's message may quote the string: do not repeat it. */
			PQfreemem(errmsg);
			return pgk_error(PGKEEP_EINVAL, "conninfo in the config is not valid");
		}
	}
	for (e = environ; *e; e++)
		n++;
	for (o = opts; o && o->keyword; o++)
		n++;
	env = xzalloc((n + 3) * sizeof(char *));
	for (e = environ; *e; e++)
		if (!env_overridden(*e, opts, dbname) &&
		    !(dbname && strncmp(*e, "PGDATABASE=", 11) == 0) &&
		    !(appname && strncmp(*e, "PGAPPNAME=", 10) == 0))
			env[i++] = xstrdup(*e);
	for (o = opts; o && o->keyword; o++) {
		if (strcmp(o->keyword, "dbname") == 0 && dbname)
			continue;
		if (strcmp(o->keyword, "application_name") == 0 && appname)
			continue;
		if (!o->val)
			continue;
		if (!o->envvar) {
			pgk_log_debug("conninfo keyword %s has no environment variable; "
				      "child programs use their default", o->keyword);
			continue;
		}
		env[i++] = xasprintf("%s=%s", o->envvar, o->val);
	}
	if (dbname)
		env[i++] = xasprintf("PGDATABASE=%s", dbname);
	if (appname)
		env[i++] = xasprintf("PGAPPNAME=%s", appname);
	env[i] = NULL;
	if (opts)
		PQconninfoFree(opts);
	*envp = env;
	return 0;
}

void pgconn_env_free(char **envp)
{
	char **e;

	if (!envp)
		return;
	for (e = envp; *e; e++)
		secure_free(*e, strlen(*e));
	free(envp);
}

int pgconn_clock_us(struct pgconn *c, int64_t *out)
{
	char *v, *end;
	long long us;
	int rc;

	rc = query_value(c, "clock_timestamp()",
			 "select (extract(epoch from clock_timestamp()) * 1000000)::bigint", &v);
	if (rc < 0)
		return rc;
	errno = 0;
	us = strtoll(v, &end, 10);
	rc = errno || *end || end == v || us <= 0
		? pgk_error(PGKEEP_EIO, "PostgreSQL: clock_timestamp() returned '%s'", v) : 0;
	if (rc == 0)
		*out = us;
	free(v);
	return rc;
}

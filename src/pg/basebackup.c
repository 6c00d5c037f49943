/*
 * The replication-protocol base backup client (see basebackup.h): the
 * BASE_BACKUP command, its result sets and its copy stream, read without
 * blocking so that the caller can watch for signals and show progress while
 * the server checkpoints or sends nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/backup_label.h"
#include "pg/basebackup.h"
#include "pg/libpq_api.h"

struct basebackup {
	PGconn *conn;
	struct basebackup_tablespace *spc;
	size_t nspc;
};

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	pgk_log_debug("server: %s", msg);
}

/* libpq's message on one line, without its trailing newline. */
static char *one_line(const char *text)
{
	char *msg = xstrdup(text ? text : ""), *nl;
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (nl = msg; (nl = strchr(nl, '\n'));)
		*nl = ' ';
	return msg;
}

static int conn_error(struct basebackup *bb, const char *what)
{
	char *msg = one_line(PQerrorMessage(bb->conn));

	pgk_error(PGKEEP_EIO, "PostgreSQL: %s failed: %s", what, msg);
	free(msg);
	return PGKEEP_EIO;
}

static int result_error(PGresult *res, const char *what)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char *msg = one_line(m ? m : res ? PQresStatus(PQresultStatus(res)) : "no result");

	pgk_error(PGKEEP_EIO, "PostgreSQL: %s failed: %s", what, msg);
	free(msg);
	PQclear(res);
	return PGKEEP_EIO;
}

int basebackup_connect(struct basebackup **out, const char *conninfo, const char *appname)
{
	/* The first dbname is expanded as a conninfo; the later keys win. */
	const char *keys[] = { "dbname", "replication", "application_name", NULL };
	const char *vals[] = { conninfo ? conninfo : "", "true", appname, NULL };
	struct basebackup *bb = xzalloc(sizeof(*bb));
	char *msg;
	int rc;

	rc = libpq_connect(&bb->conn, keys, vals, 1);
	if (rc < 0) {
		free(bb);
		return rc;
	}
	if (PQstatus(bb->conn) != CONNECTION_OK) {
		msg = one_line(PQerrorMessage(bb->conn));
		pgk_error(PGKEEP_EIO, "cannot open a replication connection to PostgreSQL: %s",
			  msg);
		free(msg);
		basebackup_close(bb);
		return PGKEEP_EIO;
	}
	PQsetNoticeProcessor(bb->conn, quiet_notice, NULL);
	*out = bb;
	return 0;
}

void basebackup_close(struct basebackup *bb)
{
	size_t i;

	if (!bb)
		return;
	/* Closing the connection mid-stream is what ends the server's backup. */
	PQfinish(bb->conn);
	for (i = 0; i < bb->nspc; i++)
		free(bb->spc[i].location);
	free(bb->spc);
	free(bb);
}

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	return end == text || *end || errno ? -1 : 0;
}

int basebackup_identify(struct basebackup *bb, uint64_t *sysid, uint32_t *tli)
{
	PGresult *res = PQexec(bb->conn, "IDENTIFY_SYSTEM");
	uint64_t t;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(res, "IDENTIFY_SYSTEM");
	if (PQntuples(res) != 1 || PQnfields(res) < 2 ||
	    parse_u64(PQgetvalue(res, 0, 0), sysid) < 0 ||
	    parse_u64(PQgetvalue(res, 0, 1), &t) < 0 || t == 0 || t > UINT32_MAX) {
		PQclear(res);
		return pgk_error(PGKEEP_EIO, "PostgreSQL: IDENTIFY_SYSTEM answered an unexpected row");
	}
	*tli = (uint32_t)t;
	PQclear(res);
	return 0;
}

int basebackup_timeline_history(struct basebackup *bb, uint32_t tli, char **name,
				char **content, size_t *len)
{
	char *cmd = xasprintf("TIMELINE_HISTORY %u", tli);
	PGresult *res = PQexec(bb->conn, cmd);

	free(cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(res, "TIMELINE_HISTORY");
	if (PQntuples(res) != 1 || PQnfields(res) < 2 || PQgetisnull(res, 0, 0) ||
	    PQgetisnull(res, 0, 1)) {
		PQclear(res);
		return pgk_error(PGKEEP_EIO, "PostgreSQL: TIMELINE_HISTORY answered an unexpected row");
	}
	/* Sent as bytea but unescaped: the file's own text, which has no NUL. */
	*name = xstrdup(PQgetvalue(res, 0, 0));
	*content = xstrdup(PQgetvalue(res, 0, 1));
	*len = strlen(*content);
	PQclear(res);
	return 0;
}

/* Until libpq has more input, running sink->idle while the server is silent. */
static int wait_input(struct basebackup *bb, const struct basebackup_sink *sink)
{
	struct pollfd pfd = { .fd = PQsocket(bb->conn), .events = POLLIN };
	int r, rc;

	if (pfd.fd < 0)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: the replication connection is closed");
	for (;;) {
		r = poll(&pfd, 1, sink->idle_ms > 0 ? sink->idle_ms : 1000);
		if (r < 0 && errno != EINTR)
			return pgk_error(PGKEEP_EIO, "cannot poll the replication connection: %s",
					 strerror(errno));
		if (sink->idle) {
			rc = sink->idle(sink->payload);
			if (rc < 0)
				return rc;
		}
		if (r > 0)
			break;
	}
	if (!PQconsumeInput(bb->conn))
		return conn_error(bb, "BASE_BACKUP");
	return 0;
}

/* The next result, without blocking the caller's watch; NULL at the end. */
static int next_result(struct basebackup *bb, const struct basebackup_sink *sink,
		       PGresult **out)
{
	int rc;

	while (PQisBusy(bb->conn)) {
		rc = wait_input(bb, sink);
		if (rc < 0)
			return rc;
	}
	*out = PQgetResult(bb->conn);
	return 0;
}

/* A one-row result of (LSN, timeline), as BASE_BACKUP starts and ends. */
static int read_position(PGresult *res, const char *what, uint64_t *lsn, uint32_t *tli)
{
	uint64_t t;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(res, what);
	if (PQntuples(res) != 1 || PQnfields(res) < 2 ||
	    pg_lsn_parse(PQgetvalue(res, 0, 0), lsn) < 0 ||
	    parse_u64(PQgetvalue(res, 0, 1), &t) < 0 || t == 0 || t > UINT32_MAX) {
		PQclear(res);
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent an unexpected %s", what);
	}
	*tli = (uint32_t)t;
	PQclear(res);
	return 0;
}

static int read_tablespaces(struct basebackup *bb, PGresult *res)
{
	uint64_t v;
	int i, n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(res, "BASE_BACKUP's tablespace list");
	n = PQntuples(res);
	if (PQnfields(res) < 3 || n < 1) {
		PQclear(res);
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent an unexpected "
				 "tablespace list");
	}
	bb->spc = xzalloc((size_t)n * sizeof(*bb->spc));
	for (i = 0; i < n; i++, bb->nspc++) {
		struct basebackup_tablespace *t = &bb->spc[i];

		t->location = xstrdup(PQgetisnull(res, i, 1) ? "" : PQgetvalue(res, i, 1));
		if (!PQgetisnull(res, i, 0) && parse_u64(PQgetvalue(res, i, 0), &v) == 0)
			t->oid = (uint32_t)v;
		/* Kilobytes, and null unless PROGRESS was asked for. */
		if (!PQgetisnull(res, i, 2) && parse_u64(PQgetvalue(res, i, 2), &v) == 0)
			t->size = v * 1024;
	}
	PQclear(res);
	return 0;
}

/* The label as a replication-grammar string: quotes doubled, nothing else. */
static char *quote_label(const char *label)
{
	size_t n = strlen(label), i, j = 0;
	char *q = xmalloc(2 * n + 3);

	q[j++] = '\'';
	for (i = 0; i < n; i++) {
		if (label[i] == '\'')
			q[j++] = '\'';
		q[j++] = label[i];
	}
	q[j++] = '\'';
	q[j] = '\0';
	return q;
}

int basebackup_start(struct basebackup *bb, const struct basebackup_opts *o,
		     const struct basebackup_sink *sink, uint64_t *start_lsn, uint32_t *start_tli,
		     const struct basebackup_tablespace **spc, size_t *nspc)
{
	PGresult *res;
	char *label = quote_label(o->label), *cmd;
	int rc;

	/*
	 * WAL false and WAIT false: the WAL comes from the archive, and pgkeep
	 * waits for it in the repository with its own timeout and message
	 * instead of leaving the server polling the archiver.
	 */
	cmd = xasprintf("BASE_BACKUP (LABEL %s, CHECKPOINT '%s', WAL false, WAIT false, "
			"MANIFEST 'yes', MANIFEST_CHECKSUMS '%s', TABLESPACE_MAP true, "
			"PROGRESS true)", label, o->fast ? "fast" : "spread",
			o->manifest_checksums);
	free(label);
	pgk_log_debug("sending %s", cmd);
	rc = PQsendQuery(bb->conn, cmd) ? 0 : conn_error(bb, "BASE_BACKUP");
	free(cmd);
	if (rc < 0)
		return rc;
	rc = next_result(bb, sink, &res);
	if (rc == 0)
		rc = read_position(res, "start position", start_lsn, start_tli);
	if (rc == 0)
		rc = next_result(bb, sink, &res);
	if (rc == 0)
		rc = read_tablespaces(bb, res);
	if (rc < 0)
		return rc;
	*spc = bb->spc;
	*nspc = bb->nspc;
	return 0;
}

/* A NUL-terminated string at *p inside [*p, end); moves *p past it. */
static const char *take_string(const char **p, const char *end)
{
	const char *s = *p, *nul = memchr(s, '\0', (size_t)(end - s));

	if (!nul)
		return NULL;
	*p = nul + 1;
	return s;
}

bool basebackup_server_supported(int version)
{
	return version >= BASEBACKUP_MIN_VERSION && version < BASEBACKUP_END_VERSION;
}

int basebackup_message(const struct basebackup_sink *sink, const char *msg, size_t len)
{
	const char *p = msg + 1, *end = msg + len, *name, *location;
	const unsigned char *u = (const unsigned char *)p;
	uint64_t done = 0;
	int i;

	if (len == 0)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent an empty copy message");
	switch (msg[0]) {
	case 'n':
		name = take_string(&p, end);
		location = name ? take_string(&p, end) : NULL;
		if (!location)
			break;
		return sink->archive(sink->payload, name, location);
	case 'd':
		return sink->data(sink->payload, p, (size_t)(end - p));
	case 'm':
		return sink->manifest(sink->payload);
	case 'p':
		if (len != 9)
			break;
		for (i = 0; i < 8; i++)
			done = done << 8 | u[i];
		if (sink->progress)
			sink->progress(sink->payload, done);
		return 0;
	default:
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent a copy message of "
				 "unknown type 0x%02x", (unsigned char)msg[0]);
	}
	return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent a malformed '%c' message",
			 msg[0]);
}

static int read_copy(struct basebackup *bb, const struct basebackup_sink *sink)
{
	char *buf;
	int n, rc;

	for (;;) {
		n = PQgetCopyData(bb->conn, &buf, 1);
		if (n > 0) {
			rc = basebackup_message(sink, buf, (size_t)n);
			PQfreemem(buf);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == -1)
			return 0;
		if (n < -1)
			return conn_error(bb, "BASE_BACKUP's copy stream");
		rc = wait_input(bb, sink);
		if (rc < 0)
			return rc;
	}
}

int basebackup_stream(struct basebackup *bb, const struct basebackup_sink *sink,
		      uint64_t *end_lsn, uint32_t *end_tli)
{
	PGresult *res;
	bool have_end = false;
	int rc;

	rc = next_result(bb, sink, &res);
	if (rc < 0)
		return rc;
	if (PQresultStatus(res) != PGRES_COPY_OUT)
		return result_error(res, "BASE_BACKUP's copy stream");
	PQclear(res);
	rc = read_copy(bb, sink);
	/* Then the copy's own result, the end position, the command's end. */
	while (rc == 0) {
		rc = next_result(bb, sink, &res);
		if (rc < 0 || !res)
			break;
		if (PQresultStatus(res) == PGRES_TUPLES_OK && !have_end) {
			rc = read_position(res, "end position", end_lsn, end_tli);
			have_end = rc == 0;
		} else if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
		} else {
			rc = result_error(res, "BASE_BACKUP");
		}
	}
	if (rc == 0 && !have_end)
		rc = pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP ended without its end position");
	return rc;
}

/*
 * restore of a dump: the stream written to a file (or standard output),
 * or piped into pg_restore or psql in one transaction, so a failed restore
 * leaves the database as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/restore.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/child.h"
#include "pg/clients.h"
#include "pg/pgconn.h"
#include "pipeline/pipeline.h"

static int write_output(struct restore_run *rr, const struct manifest_stream *s,
			const struct restore_opts *o)
{
	struct fd_sink sk = { STDOUT_FILENO, false, NULL };
	char *tmp;
	int fd, rc;

	restore_sink_progress(rr, &sk, s);
	if (strcmp(o->output, "-") == 0)
		return stream_read(rr->repo, s, rr->jobs, restore_sink_fd, &sk);
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
	rc = stream_read(rr->repo, s, rr->jobs, restore_sink_fd, &sk);
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
	/* pg_restore must know the server's version; any psql runs SQL. */
	if (sql)
		prog = child_find_program("psql", major);
	else if ((rc = pg_client_find("pg_restore", major, &prog)) < 0) {
		pgconn_env_free(envp);
		return rc;
	}
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
	restore_sink_progress(rr, &sk, s);
	rc = stream_read(rr->repo, s, rr->jobs, restore_sink_fd, &sk);
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

int restore_dump(struct restore_run *rr, const struct restore_opts *o)
{
	const struct manifest_stream *s;
	size_t i;

	if (o->stream) {
		s = restore_find_stream(&rr->m, o->stream);
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

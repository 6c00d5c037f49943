/*
 * metrics: every repository's health in Prometheus' text exposition format,
 * on stdout or written atomically into a file for node_exporter's textfile
 * collector (which must never read a half-written file).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/monitor.h"
#include "cmd/listing.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"

struct repo_metrics {
	const char *name;
	bool up;
	struct monitor_health h;
};

/* A value, or false when there is none to report (no sample is written). */
typedef bool (*metric_fn)(const struct repo_metrics *m, enum backup_type t, int64_t *v);

struct family {
	const char *name;
	const char *help;
	bool per_type;		/* labelled type="base|dump" */
	metric_fn value;
};

static bool m_up(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	(void)t;
	*v = m->up;
	return true;
}

static bool m_count(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	*v = (int64_t)m->h.count[t];
	return m->up;
}

static bool m_age(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	const struct manifest *b = m->h.newest[t];

	if (!m->up || !b)
		return false;
	*v = m->h.now > b->stop_time ? m->h.now - b->stop_time : 0;
	return true;
}

static bool m_stop(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	const struct manifest *b = m->h.newest[t];

	if (!m->up || !b)
		return false;
	*v = b->stop_time;
	return true;
}

static bool m_size(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	const struct manifest *b = m->h.newest[t];

	if (!m->up || !b)
		return false;
	*v = (int64_t)manifest_size(b);
	return true;
}

static bool m_duration(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	const struct manifest *b = m->h.newest[t];

	if (!m->up || !b)
		return false;
	*v = b->stop_time > b->start_time ? b->stop_time - b->start_time : 0;
	return true;
}

static bool m_wal_count(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	(void)t;
	*v = (int64_t)m->h.wal_count;
	return m->up && m->h.wal_count != UINT64_MAX;
}

static bool m_wal_age(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	(void)t;
	if (!m->up || !m->h.wal_newest_mtime)
		return false;
	*v = m->h.now > m->h.wal_newest_mtime ? m->h.now - m->h.wal_newest_mtime : 0;
	return true;
}

static bool m_lag_segments(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	(void)t;
	*v = m->h.lag_segments;
	return m->up && m->h.lag_segments >= 0;
}

static bool m_lag_s(const struct repo_metrics *m, enum backup_type t, int64_t *v)
{
	(void)t;
	*v = m->h.lag_s;
	return m->up && m->h.lag_s >= 0;
}

static const struct family families[] = {
	{ "pgkeep_repository_up",
	  "Whether the repository could be opened and listed (1) or not (0).", false, m_up },
	{ "pgkeep_backup_count", "Backups in the repository.", true, m_count },
	{ "pgkeep_backup_newest_age_seconds",
	  "Seconds since the newest backup of this type stopped.", true, m_age },
	{ "pgkeep_backup_newest_timestamp_seconds",
	  "Stop time of the newest backup of this type (Unix time).", true, m_stop },
	{ "pgkeep_backup_newest_size_bytes",
	  "Logical size of the newest backup of this type.", true, m_size },
	{ "pgkeep_backup_newest_duration_seconds",
	  "How long the newest backup of this type took.", true, m_duration },
	{ "pgkeep_wal_segments", "WAL segments in the repository.", false, m_wal_count },
	{ "pgkeep_wal_newest_age_seconds",
	  "Seconds since the newest archived WAL segment was stored.", false, m_wal_age },
	{ "pgkeep_wal_archive_lag_segments",
	  "Completed WAL segments on the server not yet in the repository.", false,
	  m_lag_segments },
	{ "pgkeep_wal_archive_lag_seconds",
	  "Seconds the archiver has been silent while segments wait (0 when caught up).",
	  false, m_lag_s },
};

/* Label values escape backslash, double quote and newline. */
static void label_value(struct pgk_buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			buf_printf(out, "\\n");
		else
			buf_append(out, v, 1);
	}
}

static void sample(struct pgk_buf *out, const struct family *f, const struct repo_metrics *m,
		   enum backup_type t)
{
	int64_t v;

	if (!f->value(m, t, &v))
		return;
	buf_printf(out, "%s{repository=\"", f->name);
	label_value(out, m->name);
	if (f->per_type)
		buf_printf(out, "\",type=\"%s", backup_type_name(t));
	buf_printf(out, "\"} %" PRId64 "\n", v);
}

static void render(struct pgk_buf *out, const struct repo_metrics *ms, size_t n,
		   const struct monitor_server *srv)
{
	size_t i, j;

	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = &families[i];

		buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", f->name, f->help, f->name);
		for (j = 0; j < n; j++) {
			if (f->per_type) {
				sample(out, f, &ms[j], BACKUP_BASE);
				sample(out, f, &ms[j], BACKUP_DUMP);
			} else {
				sample(out, f, &ms[j], 0);
			}
		}
	}
	buf_printf(out, "# HELP pgkeep_server_up Whether the PostgreSQL server answered "
		   "as a primary (1) or not (0).\n# TYPE pgkeep_server_up gauge\n"
		   "pgkeep_server_up %d\n", srv->up ? 1 : 0);
	buf_printf(out, "# HELP pgkeep_metrics_timestamp_seconds When these metrics were "
		   "taken (Unix time).\n# TYPE pgkeep_metrics_timestamp_seconds gauge\n"
		   "pgkeep_metrics_timestamp_seconds %" PRId64 "\n", (int64_t)time(NULL));
}

/* ---------------------------------------------------------------- output */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open directory %s: %s", dir, strerror(errno));
	if (fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot sync directory %s: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/*
 * Temp file in the same directory, fsync, rename.  The temp name starts with
 * a dot and does not end in .prom, so the collector never picks it up.
 */
static int write_atomic(const char *path, const struct pgk_buf *data)
{
	char *d = xstrdup(path), *b = xstrdup(path), *dir = dirname(d), *tmp;
	int fd, rc;

	tmp = xasprintf("%s/.%s.XXXXXX", dir, basename(b));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create %s: %s", tmp, strerror(errno));
		goto out_free;
	}
	rc = write_full(fd, data->data, data->len, tmp);
	/* mkstemp makes it 0600; the collector usually runs as another user. */
	if (rc == 0 && fchmod(fd, 0644) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot chmod %s: %s", tmp, strerror(errno));
	if (rc == 0 && fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot sync %s: %s", tmp, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = pgk_error(PGKEEP_EIO, "cannot close %s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot rename %s to %s: %s", tmp, path,
			       strerror(errno));
	if (rc < 0)
		unlink(tmp);
	else
		rc = fsync_dir(dir);
out_free:
	free(tmp);
	free(b);
	free(d);
	return rc;
}

/* ---------------------------------------------------------------- the command */

static bool collect(struct repo_metrics *m, struct repo_view *v, const struct monitor_server *srv)
{
	char newest[WAL_SEG_NAME_LEN + 1];
	uint64_t count = 0;

	m->name = v->name;
	if (v->error) {
		pgk_log_error("repository %s: %s", v->name, v->error);
		return false;
	}
	if (monitor_list_wal(v->r, srv, newest, &count) < 0 ||
	    monitor_collect(&m->h, v->r, v->list, v->n, count ? newest : NULL, srv) < 0) {
		pgk_log_error("repository %s: %s", v->name, pgk_errmsg());
		return false;
	}
	m->h.wal_count = count;
	m->up = true;
	return true;
}

struct metrics_opts {
	const char *output;
};

static const struct opt_def metrics_options[] = {
	OPT_STRING_DEF("output", 'o', "FILE", struct metrics_opts, output,
		       "write FILE atomically (node_exporter textfile collector)\n"
		       "instead of stdout; exit 2 when a repository is unreadable"),
	OPT_END,
};

const struct opt_spec metrics_cli = {
	.command = "metrics",
	.summary = "write every repository's health in Prometheus text format",
	.synopsis = "[OPTIONS]",
	.opts = metrics_options,
};

int cmd_metrics(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_buf out = PGK_BUF_INIT;
	struct monitor_server srv;
	struct repo_set set = { 0 };
	struct repo_metrics *ms;
	struct pgk_config cfg;
	struct metrics_opts o = { NULL };
	struct opt_args pos;
	bool all_up = true;
	size_t i;
	int rc;

	if (opt_parse(&metrics_cli, argc, argv, &o, &pos) < 0)
		return opt_fail(&metrics_cli);
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	repo_set_load(&set, &cfg);
	monitor_server_query(cfg.conninfo, &srv);
	ms = xzalloc((set.n ? set.n : 1) * sizeof(*ms));
	for (i = 0; i < set.n; i++)
		if (!collect(&ms[i], &set.v[i], &srv))
			all_up = false;
	render(&out, ms, set.n, &srv);
	if (o.output) {
		rc = write_atomic(o.output, &out);
	} else {
		rc = write_full(STDOUT_FILENO, out.data, out.len, "stdout");
	}
	if (rc < 0)
		pgk_log_error("%s", pgk_errmsg());
	buf_free(&out);
	free(ms);
	repo_set_free(&set);
	config_free(&cfg);
	/* What could be read is written; a repository that could not fails the run. */
	return rc < 0 || !all_up ? PGK_EXIT_ERROR : PGK_EXIT_OK;
}

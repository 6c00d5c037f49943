/*
 * Repository health for monitors.  Ages are seconds before now; the archive
 * lag compares the newest segment in the repository with the segment the
 * server is writing, so it tells what a disaster right now would lose.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/monitor.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/libpq_api.h"
#include "repo/layout.h"

/* A monitor runs from a timer: a dead server must not stall it. */
#define CONNECT_TIMEOUT "5"

static const char server_sql[] =
	"select (select system_identifier::text from pg_control_system()), "
	"(select setting from pg_settings where name = 'wal_segment_size'), "
	"case when pg_is_in_recovery() then null "
	"else pg_walfile_name(pg_current_wal_lsn()) end, "
	"(select extract(epoch from last_archived_time)::bigint from pg_stat_archiver)";

static void read_server_row(PGresult *res, struct monitor_server *srv)
{
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 2)) {
		pgk_log_debug("monitor: the server is a standby; no archive lag");
		return;
	}
	srv->sysid = PQgetisnull(res, 0, 0) ? 0 : strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	srv->seg_size = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(srv->current, sizeof(srv->current), "%s", PQgetvalue(res, 0, 2));
	srv->last_archived_time = PQgetisnull(res, 0, 3) ? 0 :
				  strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	srv->up = wal_seg_size_valid(srv->seg_size) && walname_is_segment(srv->current);
}

void monitor_server_query(const char *conninfo, struct monitor_server *srv)
{
	/* connect_timeout first: one the conninfo sets itself wins. */
	const char *keys[] = { "connect_timeout", "dbname", "application_name", NULL };
	const char *vals[] = { CONNECT_TIMEOUT, conninfo ? conninfo : "", "pgkeep monitor", NULL };
	PGconn *conn;
	PGresult *res;

	memset(srv, 0, sizeof(*srv));
	if (libpq_connect(&conn, keys, vals, 1) < 0) {
		/* Not the server's state but the install's: worth more than debug. */
		pgk_log_warning("monitor: %s", pgk_errmsg());
		return;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		pgk_log_debug("monitor: cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return;
	}
	res = PQexec(conn, server_sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		read_server_row(res, srv);
	else
		pgk_log_debug("monitor: cannot ask the server for its WAL position: %s",
			      PQerrorMessage(conn));
	PQclear(res);
	PQfinish(conn);
}

/* A server's answer says something about this repository's archive. */
static bool server_usable(const struct monitor_server *srv, uint64_t repo_sysid)
{
	return srv && srv->up && !(repo_sysid && srv->sysid && repo_sysid != srv->sysid);
}

void monitor_wal_add(struct monitor_wal *w, const char *name, const struct pgkeep_stat *st)
{
	struct monitor_wal_tli *t = NULL;
	struct wal_name wn;
	size_t i;

	if (!walname_is_segment(name) || walname_parse(name, &wn) < 0)
		return;
	for (i = 0; i < w->n && !t; i++)
		if (w->t[i].tli == wn.tli)
			t = &w->t[i];
	if (!t) {
		w->t = xrealloc(w->t, (w->n + 1) * sizeof(*w->t));
		t = &w->t[w->n++];
		memset(t, 0, sizeof(*t));
		t->tli = wn.tli;
	}
	if (!*t->last || strcmp(name, t->last) > 0)
		snprintf(t->last, sizeof(t->last), "%s", name);
	if (st && st->mtime > t->stored)
		t->stored = st->mtime;
	w->count++;
}

/* The timeline the cluster is on, as far as the archive and the server tell. */
static const struct monitor_wal_tli *current_tli(const struct monitor_wal *w,
						  const struct monitor_server *srv,
						  uint64_t repo_sysid)
{
	const struct monitor_wal_tli *best = NULL;
	uint32_t cap = UINT32_MAX;
	struct wal_name c;
	size_t i;

	if (server_usable(srv, repo_sysid) && walname_parse(srv->current, &c) == 0)
		cap = c.tli;
	for (i = 0; i < w->n; i++) {
		const struct monitor_wal_tli *t = &w->t[i];

		if (t->tli > cap)
			continue;
		if (t->tli == cap)
			return t;
		if (!best || t->stored > best->stored ||
		    (t->stored == best->stored && t->tli > best->tli))
			best = t;
	}
	return best;
}

void monitor_wal_newest(const struct monitor_wal *w, const struct monitor_server *srv,
			uint64_t repo_sysid, char newest[WAL_SEG_NAME_LEN + 1])
{
	const struct monitor_wal_tli *t = current_tli(w, srv, repo_sysid);

	snprintf(newest, WAL_SEG_NAME_LEN + 1, "%s", t ? t->last : "");
}

void monitor_wal_free(struct monitor_wal *w)
{
	free(w->t);
	memset(w, 0, sizeof(*w));
}

static int scan_wal(void *payload, const char *key, const struct pgkeep_stat *st)
{
	monitor_wal_add(payload, layout_wal_file(key), st);
	return 0;
}

int monitor_list_wal(struct repo *r, const struct monitor_server *srv,
		     char newest[WAL_SEG_NAME_LEN + 1], uint64_t *count)
{
	struct monitor_wal w = { NULL, 0, 0 };
	int rc;

	rc = store_list(r->store, LAYOUT_WAL_PREFIX, scan_wal, &w);
	if (rc == 0) {
		monitor_wal_newest(&w, srv, r->sysid, newest);
		*count = w.count;
	}
	monitor_wal_free(&w);
	return rc;
}

/*
 * Segments complete on the server and not in the repository.  The segment
 * holding the insert position is still being written, so an archive that is
 * fully caught up holds the one before it: lag 0.
 */
static int64_t lag_segments(const char *newest, const struct monitor_server *srv,
			    uint64_t repo_sysid)
{
	struct wal_name a, c;
	uint64_t have, cur;

	/* Another cluster's server says nothing about this archive. */
	if (!server_usable(srv, repo_sysid) || !*newest)
		return -1;
	if (walname_parse(newest, &a) < 0 || walname_parse(srv->current, &c) < 0 ||
	    wal_name_to_segno(&a, srv->seg_size, &have) < 0 ||
	    wal_name_to_segno(&c, srv->seg_size, &cur) < 0) {
		pgk_error_clear();
		return -1;
	}
	return cur > have + 1 ? (int64_t)(cur - have - 1) : 0;
}

static int stat_newest(struct monitor_health *h, struct repo *r)
{
	char key[LAYOUT_WAL_KEY_MAX];
	struct pgkeep_stat st;
	int rc;

	if (!*h->wal_newest)
		return 0;
	rc = layout_wal_key(h->wal_newest, key, sizeof(key));
	if (rc == 0)
		rc = store_stat(r->store, key, &st);
	if (rc == PGKEEP_ENOTFOUND) {
		/* Removed by expire since the listing: its age is unknown. */
		pgk_error_clear();
		return 0;
	}
	if (rc == 0)
		h->wal_newest_mtime = st.mtime;
	return rc;
}

int monitor_collect(struct monitor_health *h, struct repo *r, const struct manifest *list,
		    size_t n, const char *wal_newest, const struct monitor_server *srv)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	h->now = (int64_t)time(NULL);
	h->wal_count = UINT64_MAX;
	for (i = 0; i < n; i++) {
		unsigned t = (unsigned)list[i].type;

		if (t >= 3)
			continue;
		h->count[t]++;
		/* The list is oldest first; the newest is the one that stopped last. */
		if (!h->newest[t] || list[i].stop_time >= h->newest[t]->stop_time)
			h->newest[t] = &list[i];
	}
	snprintf(h->wal_newest, sizeof(h->wal_newest), "%s", wal_newest ? wal_newest : "");
	h->lag_segments = lag_segments(h->wal_newest, srv, r->sysid);
	h->lag_s = -1;
	/* Seconds the archiver has been silent while segments wait for it. */
	if (h->lag_segments == 0)
		h->lag_s = 0;
	else if (h->lag_segments > 0 && srv->last_archived_time)
		h->lag_s = h->now > srv->last_archived_time ? h->now - srv->last_archived_time : 0;
	return stat_newest(h, r);
}

static void add_age(json_object *o, const char *k, int64_t now, int64_t t, bool known)
{
	json_object_object_add(o, k, known ? json_object_new_int64(now > t ? now - t : 0) : NULL);
}

static void add_count(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, v >= 0 ? json_object_new_int64(v) : NULL);
}

void monitor_json(json_object *root, const struct monitor_health *h)
{
	const struct manifest *b = h->newest[BACKUP_BASE], *d = h->newest[BACKUP_DUMP];
	json_object *wal = NULL;

	add_age(root, "newest_base_age_s", h->now, b ? b->stop_time : 0, b != NULL);
	add_age(root, "newest_dump_age_s", h->now, d ? d->stop_time : 0, d != NULL);
	if (!json_object_object_get_ex(root, "wal", &wal) || !wal) {
		wal = json_object_new_object();
		json_object_object_add(root, "wal", wal);
	}
	json_object_object_add(wal, "newest", *h->wal_newest ?
				json_object_new_string(h->wal_newest) : NULL);
	add_age(wal, "newest_age_s", h->now, h->wal_newest_mtime, h->wal_newest_mtime != 0);
	add_count(wal, "archive_lag_segments", h->lag_segments);
	add_count(wal, "archive_lag_s", h->lag_s);
}

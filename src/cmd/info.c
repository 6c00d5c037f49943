/*
 * info: what a repository holds, for monitoring.  --json prints one object:
 * the backups (oldest first) and the range of archived WAL segments, whose
 * newest modification time tells how far archiving lags.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/monitor.h"
#include "cmd/listing.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/backup_label.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/manifest.h"

struct wal_range {
	char first[WAL_SEG_NAME_LEN + 1];
	char last[WAL_SEG_NAME_LEN + 1];
	uint64_t count;
	int64_t last_mtime;	/* of the newest object under wal/ */
	struct monitor_wal tlis;	/* per timeline, for the newest (monitor.h) */
};

static int collect_wal(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct wal_range *w = payload;
	const char *name = layout_wal_file(key);

	if (st && st->mtime > w->last_mtime)
		w->last_mtime = st->mtime;
	if (!walname_is_segment(name))
		return 0;
	monitor_wal_add(&w->tlis, name, st);
	/* Timeline first in the name: a later timeline sorts after. */
	if (!w->count || strcmp(name, w->first) < 0)
		memcpy(w->first, name, sizeof(w->first));
	if (!w->count || strcmp(name, w->last) > 0)
		memcpy(w->last, name, sizeof(w->last));
	w->count++;
	return 0;
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_time(json_object *o, const char *k, int64_t t)
{
	char text[32];

	iso_utc_text(t, text, sizeof(text));
	add_str(o, k, t ? text : NULL);
}

static void add_lsn(json_object *o, const char *k, uint64_t lsn, bool base)
{
	char text[PG_LSN_TEXT_MAX];

	pg_lsn_format(lsn, text);
	add_str(o, k, base ? text : NULL);
}

static json_object *backup_json(const struct manifest *m)
{
	json_object *o = json_object_new_object();
	bool base = m->type == BACKUP_BASE;

	add_str(o, "id", m->id);
	add_str(o, "type", backup_type_name(m->type));
	add_time(o, "start_time", m->start_time);
	add_time(o, "stop_time", m->stop_time);
	add_lsn(o, "start_lsn", m->start_lsn, base);
	add_lsn(o, "stop_lsn", m->stop_lsn, base);
	json_object_object_add(o, "timeline", json_object_new_int64(m->timeline));
	if (base)
		json_object_object_add(o, "from_standby", json_object_new_boolean(m->from_standby));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)manifest_size(m)));
	json_object_object_add(o, "stored_size",
			       json_object_new_int64((int64_t)manifest_stored(m)));
	add_str(o, "wal_start", base ? m->wal_start : NULL);
	add_str(o, "wal_stop", base ? m->wal_stop : NULL);
	add_str(o, "dbname", m->dbname);
	json_object_object_add(o, "pg_version", json_object_new_int(m->pg_version));
	add_str(o, "label", m->label);
	return o;
}

static json_object *info_object(const char *name, const struct manifest *list, size_t n,
				const struct wal_range *w)
{
	json_object *root = json_object_new_object(), *arr = json_object_new_array(), *wal;
	size_t i;

	add_str(root, "repository", name);
	for (i = 0; i < n; i++)
		json_object_array_add(arr, backup_json(&list[i]));
	json_object_object_add(root, "backups", arr);
	wal = json_object_new_object();
	add_str(wal, "first", w->count ? w->first : NULL);
	add_str(wal, "last", w->count ? w->last : NULL);
	json_object_object_add(wal, "count", json_object_new_int64((int64_t)w->count));
	add_time(wal, "last_archived_time", w->last_mtime);
	json_object_object_add(root, "wal", wal);
	return root;
}

static void print_object(json_object *root)
{
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* The monitoring fields: backup ages, the newest segment's age, archive lag. */
static void add_health(json_object *o, struct repo *r, const struct manifest *list, size_t n,
		       const struct wal_range *w, const struct monitor_server *srv)
{
	char newest[WAL_SEG_NAME_LEN + 1];
	struct monitor_health h;

	monitor_wal_newest(&w->tlis, srv, r->sysid, newest);
	if (monitor_collect(&h, r, list, n, *newest ? newest : NULL, srv) < 0)
		pgk_log_warning("%s", pgk_errmsg());
	monitor_json(o, &h);
}

static void print_json(struct repo *r, const struct manifest *list, size_t n,
		       const struct wal_range *w, const char *conninfo)
{
	json_object *o = info_object(r->name, list, n, w);
	struct monitor_server srv;

	monitor_server_query(conninfo, &srv);
	add_health(o, r, list, n, w, &srv);
	print_object(o);
}

static const struct manifest *newest(const struct manifest *list, size_t n, enum backup_type t)
{
	size_t i;

	for (i = n; i > 0; i--)
		if (list[i - 1].type == t)
			return &list[i - 1];
	return NULL;
}

static void print_text(const struct repo *r, const struct manifest *list, size_t n,
		       const struct wal_range *w)
{
	const struct manifest *b = newest(list, n, BACKUP_BASE), *d = newest(list, n, BACKUP_DUMP);
	char when[32];

	printf("repository:        %s\n", r->name);
	printf("backups:           %zu\n", n);
	if (b) {
		local_time_text(b->stop_time, when, sizeof(when));
		printf("newest base:       %s (finished %s%s)\n", b->id, when,
		       b->from_standby ? ", from a standby" : "");
	}
	if (d) {
		local_time_text(d->stop_time, when, sizeof(when));
		printf("newest dump:       %s (finished %s)\n", d->id, when);
	}
	if (w->count) {
		local_time_text(w->last_mtime, when, sizeof(when));
		printf("WAL:               %s to %s (%" PRIu64 " segments, last stored %s)\n",
		       w->first, w->last, w->count, when);
	} else {
		printf("WAL:               none\n");
	}
}

/* ---- --all-repos: every repository, and where each backup is ---- */

/* Add "repositories": [names holding it] to each backup object of root. */
static void add_holders(json_object *root, const struct repo_set *set)
{
	json_object *backups = NULL;
	const char **names;
	size_t i, j;

	if (!json_object_object_get_ex(root, "backups", &backups))
		return;
	names = xmalloc((set->n ? set->n : 1) * sizeof(*names));
	for (i = 0; i < json_object_array_length(backups); i++) {
		json_object *b = json_object_array_get_idx(backups, i), *in, *id;
		size_t have;

		if (!json_object_object_get_ex(b, "id", &id))
			continue;
		in = json_object_new_array();
		have = repo_set_holders(set, json_object_get_string(id), names);
		for (j = 0; j < have; j++)
			json_object_array_add(in, json_object_new_string(names[j]));
		json_object_object_add(b, "repositories", in);
	}
	free(names);
}

static int info_all(const struct pgk_globals *g, bool json)
{
	struct pgk_config cfg;
	const struct pgk_config_repo *rc;
	struct repo_set set = { 0 };
	struct monitor_server srv = { .up = false };
	json_object *root = NULL, *repos = json_object_new_array();
	const struct manifest **all;
	size_t i, j, n;
	int status = PGK_EXIT_OK;

	if (ctx_load_config(g, &cfg) < 0) {
		json_object_put(repos);
		return ctx_fail();
	}
	if (config_repo(&cfg, g->repo_name, &rc) < 0) {
		json_object_put(repos);
		config_free(&cfg);
		return ctx_fail();
	}
	repo_set_load(&set, &cfg);
	if (json)
		monitor_server_query(cfg.conninfo, &srv);
	for (i = 0; i < set.n; i++) {
		struct repo_view *v = &set.v[i];
		struct wal_range w = { .count = 0 };
		json_object *o;

		if (!v->error && store_list(v->r->store, LAYOUT_WAL_PREFIX, collect_wal, &w) < 0)
			v->error = xstrdup(pgk_errmsg());
		if (v->error) {
			pgk_log_error("%s", v->error);
			status = PGK_EXIT_ERROR;
			o = json_object_new_object();
			add_str(o, "repository", v->name);
			add_str(o, "error", v->error);
		} else {
			o = info_object(v->name, v->list, v->n, &w);
			add_holders(o, &set);
			if (json)
				add_health(o, v->r, v->list, v->n, &w, &srv);
			/* The chosen repository's fields stay at the top level, as
			 * without the option (a second object: no cycle). */
			if (strcmp(v->name, rc->name) == 0) {
				root = info_object(v->name, v->list, v->n, &w);
				add_holders(root, &set);
				if (json)
					add_health(root, v->r, v->list, v->n, &w, &srv);
			}
			if (!json)
				print_text(v->r, v->list, v->n, &w);
		}
		if (!json)
			printf("\n");
		add_str(o, "name", v->name);
		json_object_array_add(repos, o);
		monitor_wal_free(&w.tlis);
	}
	if (!root) {
		root = json_object_new_object();
		add_str(root, "repository", rc->name);
	}
	all = repo_set_union(&set, &n);
	for (i = 0; i < n; i++)
		for (j = 0; j < set.n; j++)
			if (!set.v[j].error && !repo_view_has(&set.v[j], all[i]->id) && !json)
				printf("backup %s is not in %s\n", all[i]->id, set.v[j].name);
	free(all);
	if (json) {
		json_object_object_add(root, "repositories", repos);
		print_object(root);
	} else {
		json_object_put(repos);
		json_object_put(root);
	}
	repo_set_free(&set);
	config_free(&cfg);
	return status;
}

struct info_opts {
	bool json;
	bool all_repos;
};

static const struct opt_def info_options[] = {
	OPT_JSON(struct info_opts, json, "print one JSON object"),
	OPT_ALL_REPOS(struct info_opts, all_repos,
		      "also every other repository, and where each backup is"),
	OPT_END,
};

const struct opt_spec info_cli = {
	.command = "info",
	.summary = "show backups and the WAL archive (--json for monitoring)",
	.synopsis = "[OPTIONS]",
	.opts = info_options,
};

int cmd_info(const struct pgk_globals *g, int argc, char **argv)
{
	struct info_opts o = { false, false };
	struct opt_args pos;
	struct wal_range w = { .count = 0 };
	struct listing l;
	int rc, status;

	if (opt_parse(&info_cli, argc, argv, &o, &pos) < 0)
		return opt_fail(&info_cli);
	if (o.all_repos)
		return info_all(g, o.json);
	rc = listing_open(g, &l);
	if (rc == 0)
		rc = store_list(l.r->store, LAYOUT_WAL_PREFIX, collect_wal, &w);
	if (rc == 0 && o.json)
		print_json(l.r, l.list, l.n, &w, l.cfg.conninfo);
	else if (rc == 0)
		print_text(l.r, l.list, l.n, &w);
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	monitor_wal_free(&w.tlis);
	listing_close(&l);
	return status;
}

/*
 * info: what a repository holds, for monitoring.  --json prints one object:
 * the backups (oldest first) and the range of archived WAL segments, whose
 * newest modification time tells how far archiving lags.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "pg/backup_label.h"
#include "pg/walname.h"
#include "repo/manifest.h"

struct wal_range {
	char first[WAL_SEG_NAME_LEN + 1];
	char last[WAL_SEG_NAME_LEN + 1];
	uint64_t count;
	int64_t last_mtime;	/* of the newest object under wal/ */
};

static int collect_wal(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct wal_range *w = payload;
	const char *name = strrchr(key, '/');

	name = name ? name + 1 : key;
	if (st && st->mtime > w->last_mtime)
		w->last_mtime = st->mtime;
	if (!walname_is_segment(name))
		return 0;
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

static void print_json(const struct repo *r, const struct manifest *list, size_t n,
		       const struct wal_range *w)
{
	json_object *root = json_object_new_object(), *arr = json_object_new_array(), *wal;
	size_t i;

	add_str(root, "repository", r->name);
	for (i = 0; i < n; i++)
		json_object_array_add(arr, backup_json(&list[i]));
	json_object_object_add(root, "backups", arr);
	wal = json_object_new_object();
	add_str(wal, "first", w->count ? w->first : NULL);
	add_str(wal, "last", w->count ? w->last : NULL);
	json_object_object_add(wal, "count", json_object_new_int64((int64_t)w->count));
	add_time(wal, "last_archived_time", w->last_mtime);
	json_object_object_add(root, "wal", wal);
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
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
		printf("newest base:       %s (finished %s)\n", b->id, when);
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

int cmd_info(const struct pgk_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct wal_range w = { .count = 0 };
	struct pgk_config cfg;
	struct manifest *list = NULL;
	struct repo *r = NULL;
	bool json = false;
	size_t n = 0;
	int opt, rc, status;

	while ((opt = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
			continue;
		}
		if (opt == 'h') {
			printf("usage: pgkeep info [--json]\n");
			return PGK_EXIT_OK;
		}
		return PGK_EXIT_USAGE;
	}
	if (optind < argc) {
		pgk_log_error("unexpected argument '%s'", argv[optind]);
		return PGK_EXIT_USAGE;
	}
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	rc = ctx_open_repo(g, &cfg, &r);
	if (rc == 0)
		rc = manifest_list(r, &list, &n);
	if (rc == 0)
		rc = store_list(r->store, "wal/", collect_wal, &w);
	if (rc == 0 && json)
		print_json(r, list, n, &w);
	else if (rc == 0)
		print_text(r, list, n, &w);
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_list_free(list, n);
	repo_close(r);
	config_free(&cfg);
	return status;
}

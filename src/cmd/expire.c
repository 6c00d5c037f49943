/*
 * pgkeep expire: apply the retention policy.  Decides on recorded start
 * times, prints what goes and why, then deletes in the one order that is
 * safe to interrupt at any point: manifests first (a backup ceases to exist),
 * then the chunks no remaining manifest refers to, then the WAL older than
 * the oldest remaining base backup.  Running it again finishes the job.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "repo/gc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/walname.h"
#include "repo/lists.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/pin.h"
#include "repo/retention.h"

struct expire_opts {
	bool dry_run;
	bool json;
	int64_t grace;		/* seconds: unreferenced chunks younger than this stay */
	int lock_wait;
	bool all_repos;
};

/*
 * The policy for one backup type: the plain keep_* settings, overridden by
 * keep_*_base / keep_*_dump.  Errors name the file and line.
 */
static int policy_for(const struct pgk_config *cfg, const struct pgk_config_repo *rc,
		      enum backup_type type, struct retention_policy *p)
{
	const char *suffix = type == BACKUP_BASE ? "_base" : "_dump";
	const char *other = type == BACKUP_BASE ? "_dump" : "_base";
	size_t i, pass;

	memset(p, 0, sizeof(*p));
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < rc->ncore_opts; i++) {
			const char *key = rc->core_opts[i].key;
			size_t len = strlen(key);
			bool typed = len > 5 && (strcmp(key + len - 5, suffix) == 0 ||
						 strcmp(key + len - 5, other) == 0);
			char base[64];

			if (typed != (pass == 1))
				continue;
			if (typed && strcmp(key + len - 5, other) == 0)
				continue;
			snprintf(base, sizeof(base), "%.*s", (int)(typed ? len - 5 : len), key);
			if (retention_set(p, base, rc->core_opts[i].value) < 0)
				return pgk_error_wrap(PGKEEP_EINVAL, "%s:%d", cfg->path,
						      rc->core_opt_lines[i]);
		}
	}
	return 0;
}

/* The oldest WAL segment a kept base backup needs, or false when none. */
static bool wal_cutoff(const struct manifest *list, size_t n, const bool *expired,
		       struct wal_name *cut)
{
	bool have = false;
	size_t i;

	for (i = 0; i < n; i++) {
		struct wal_name wn;

		if (expired[i] || list[i].type != BACKUP_BASE)
			continue;
		if (walname_parse(list[i].wal_start, &wn) < 0)
			continue;
		if (!have || wn.log < cut->log || (wn.log == cut->log && wn.seg < cut->seg)) {
			*cut = wn;
			have = true;
		}
	}
	return have;
}

static const struct opt_def expire_options[] = {
	OPT_FLAG_DEF("dry-run", 'n', struct expire_opts, dry_run,
		     "show what would be removed, remove nothing"),
	OPT_JSON(struct expire_opts, json, "print the decisions as JSON"),
	OPT_DURATION_DEF("grace", "DURATION", struct expire_opts, grace, INT64_MAX,
			 "keep unreferenced chunks younger than this (default 1h; 0 = none)"),
	OPT_SECONDS_DEF("lock-wait", "DUR", struct expire_opts, lock_wait, INT_MAX,
			"wait this long for running commands to finish (default 60)"),
	OPT_ALL_REPOS(struct expire_opts, all_repos,
		      "every repository of the config in turn, each with its own keep_*"),
	OPT_END,
};

const struct opt_spec expire_cli = {
	.command = "expire",
	.summary = "apply the retention policy: remove old backups, their chunks and WAL",
	.synopsis = "[OPTIONS]",
	.opts = expire_options,
};

static int parse_args(int argc, char **argv, struct expire_opts *o)
{
	struct opt_args pos;

	o->grace = 3600;
	o->lock_wait = 60;
	return opt_parse(&expire_cli, argc, argv, o, &pos);
}

static int expire_repo(const struct pgk_globals *g, const void *opts, struct json_object **doc)
{
	struct expire_opts o = *(const struct expire_opts *)opts;
	struct pgk_config cfg = { 0 };
	const struct pgk_config_repo *rc;
	struct repo *r = NULL;
	struct repo_lock *lock = NULL;
	struct manifest *list = NULL;
	struct retention_item *items = NULL;
	struct pin *pins = NULL;
	size_t n = 0, npins = 0, i, nexpired = 0, nkept_locked = 0;
	bool *expired = NULL;
	struct wal_name cut;
	bool have_cut;
	struct gc_result chunks = { 0 }, wal = { 0 }, lists = { 0 };
	struct json_object *jout = NULL, *jbackups = NULL;
	struct gc_backups kept;
	struct gc_refs refs;
	int ret = PGK_EXIT_ERROR;

	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	if (config_repo(&cfg, g->repo_name, &rc) < 0 || ctx_open_repo(g, &cfg, &r) < 0) {
		ret = ctx_fail();
		goto out;
	}
	/* Decide and delete under one exclusive lock, so no backup that could
	 * still add a manifest or reuse a chunk runs meanwhile. */
	if (!o.dry_run && lock_acquire(&lock, r, LOCK_EXCLUSIVE, "expire", o.lock_wait) < 0) {
		ret = ctx_fail();
		goto out;
	}
	if (manifest_list_summary(r, &list, &n) < 0 || pin_list(r, &pins, &npins) < 0) {
		ret = ctx_fail();
		goto out;
	}

	items = xzalloc((n ? n : 1) * sizeof(*items));
	expired = xzalloc((n ? n : 1) * sizeof(*expired));
	for (enum backup_type t = BACKUP_BASE; t <= BACKUP_DUMP; t++) {
		struct retention_policy p;
		struct retention_item *sub = xzalloc((n ? n : 1) * sizeof(*sub));
		size_t *idx = xmalloc((n ? n : 1) * sizeof(*idx));
		size_t m = 0;

		if (policy_for(&cfg, rc, t, &p) < 0) {
			free(sub);
			free(idx);
			ret = ctx_fail();
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (list[i].type != t)
				continue;
			sub[m].start_time = list[i].start_time;
			sub[m].pinned = pin_find(pins, npins, list[i].id);
			idx[m++] = i;
		}
		retention_apply(&p, sub, m);
		for (i = 0; i < m; i++) {
			items[idx[i]] = sub[i];
			expired[idx[i]] = !sub[i].keep;
		}
		free(sub);
		free(idx);
	}

	have_cut = wal_cutoff(list, n, expired, &cut);

	if (o.json) {
		jout = json_object_new_object();
		jbackups = json_object_new_array();
		json_object_object_add(jout, "repository", json_object_new_string(r->name));
		json_object_object_add(jout, "dry_run", json_object_new_boolean(o.dry_run));
		json_object_object_add(jout, "backups", jbackups);
	} else {
		printf("repository %s: %zu backup(s)%s\n", r->name, n, o.dry_run ? " (dry run)" : "");
	}
	for (i = 0; i < n; i++) {
		char when[32];

		if (o.json) {
			struct json_object *b = json_object_new_object();

			iso_utc_text(list[i].start_time, when, sizeof(when));
			json_object_object_add(b, "id", json_object_new_string(list[i].id));
			json_object_object_add(b, "type", json_object_new_string(backup_type_name(list[i].type)));
			json_object_object_add(b, "start_time", json_object_new_string(when));
			json_object_object_add(b, "action", json_object_new_string(expired[i] ? "remove" : "keep"));
			json_object_object_add(b, "reason", json_object_new_string(items[i].reason));
			json_object_array_add(jbackups, b);
		} else {
			local_time_text(list[i].start_time, when, sizeof(when));
			printf("%-6s %-28s %-4s %s  %s\n", expired[i] ? "remove" : "keep", list[i].id,
			       backup_type_name(list[i].type), when, items[i].reason);
		}
	}

	/* 1. Manifests. */
	for (i = 0; i < n; i++) {
		char key[128];
		int64_t until;

		if (!expired[i])
			continue;
		snprintf(key, sizeof(key), "backups/%s.manifest", list[i].id);
		if (gc_locked_until(r, key, &until) && until > time(NULL)) {
			char when[32];

			local_time_text(until, when, sizeof(when));
			if (!o.json)
				printf("kept   %-28s locked in the store until %s\n", list[i].id, when);
			expired[i] = false;
			nkept_locked++;
			continue;
		}
		nexpired++;
		if (o.dry_run)
			continue;
		if (store_remove(r->store, key) < 0) {
			ret = ctx_fail();
			goto out;
		}
		pgk_log_info("removed backup %s (%s)", list[i].id, items[i].reason);
	}
	if (nkept_locked)
		have_cut = wal_cutoff(list, n, expired, &cut);

	/* 2. The removed backups' chunk lists, and those unfinished backups left. */
	if (lists_sweep(r, list, n, expired, o.grace, o.dry_run, &lists) < 0) {
		ret = ctx_fail();
		goto out;
	}

	/* 3. Chunks nothing that remains refers to. */
	kept = (struct gc_backups){ .r = r, .list = list, .n = n, .skip = expired };
	gc_refs_of_backups(&refs, &kept);
	if (gc_sweep_chunks(r, &refs, GC_PASS_IDS, o.grace, o.dry_run, &chunks) < 0) {
		ret = ctx_fail();
		goto out;
	}

	/* 4. WAL before the oldest remaining base backup; history files stay. */
	if (have_cut && gc_sweep_wal(r, &cut, o.dry_run, &wal) < 0) {
		ret = ctx_fail();
		goto out;
	}

	if (o.json) {
		struct json_object *jc = json_object_new_object(), *jw = json_object_new_object();
		char cutname[WAL_SEG_NAME_LEN + 1];

		json_object_object_add(jc, "removed", json_object_new_int64((int64_t)chunks.removed));
		json_object_object_add(jc, "bytes", json_object_new_int64((int64_t)chunks.bytes));
		json_object_object_add(jc, "locked", json_object_new_int64((int64_t)chunks.locked));
		json_object_object_add(jc, "young", json_object_new_int64((int64_t)chunks.young));
		json_object_object_add(jout, "chunks", jc);
		if (have_cut) {
			snprintf(cutname, sizeof(cutname), "%08X%08X%08X", cut.tli, cut.log, cut.seg);
			json_object_object_add(jw, "keep_from", json_object_new_string(cutname));
		} else {
			json_object_object_add(jw, "keep_from", NULL);
		}
		json_object_object_add(jw, "removed", json_object_new_int64((int64_t)wal.removed));
		json_object_object_add(jw, "locked", json_object_new_int64((int64_t)wal.locked));
		json_object_object_add(jout, "wal", jw);
		json_object_object_add(jout, "backups_removed", json_object_new_int64((int64_t)nexpired));
		*doc = jout;
		jout = NULL;
	} else {
		const char *verb = o.dry_run ? "would remove" : "removed";

		printf("%s %zu backup(s), %zu chunk(s) (%.1f MiB), %zu WAL file(s)",
		       verb, nexpired, chunks.removed, chunks.bytes / 1048576.0, wal.removed);
		if (have_cut)
			printf(" older than %08X%08X%08X", cut.tli, cut.log, cut.seg);
		printf("\n");
		if (chunks.young)
			printf("kept %zu unreferenced chunk(s) younger than the grace period\n", chunks.young);
		if (chunks.locked + wal.locked)
			printf("kept %zu object(s) still locked in the store\n", chunks.locked + wal.locked);
		if (!have_cut)
			printf("no base backup remains: all WAL kept\n");
	}
	ret = PGK_EXIT_OK;
out:
	json_object_put(jout);
	free(items);
	free(expired);
	pin_list_free(pins, npins);
	if (list)
		manifest_list_free(list, n);
	lock_release(lock);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

int cmd_expire(const struct pgk_globals *g, int argc, char **argv)
{
	struct expire_opts o = { 0 };

	if (parse_args(argc, argv, &o) < 0)
		return opt_fail(&expire_cli);
	/* Each repository with its own keep_* settings, one after another. */
	return ctx_run_repos(g, o.all_repos, o.json, expire_repo, &o);
}

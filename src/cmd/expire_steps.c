/*
 * pgkeep expire, step by step: decide on recorded start times, print what
 * goes and why, then delete manifests first (a backup ceases to exist), then
 * the chunk lists and chunks no remaining manifest refers to, then the WAL
 * older than the oldest remaining base backup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cmd/backup_util.h"
#include "cmd/expire_steps.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/gc.h"
#include "repo/layout.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/pin.h"
#include "repo/retention.h"
#include "repo/store.h"

/* One repository's expiry: the backups, what the policy says of each, and the counts. */
struct expire_run {
	struct repo *r;
	const struct expire_params *p;
	struct manifest *list;
	size_t n;
	struct pin *pins;
	size_t npins;
	struct retention_item *items;
	bool *expired;
	struct wal_name cut;
	bool have_cut;
	size_t nexpired, nkept_locked;
	struct gc_result chunks, wal, lists;
	struct json_object *jout, *jbackups;
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

/* Mark in x->expired what the policy for type t removes, with its reason in x->items. */
static int decide_type(struct expire_run *x, const struct pgk_config *cfg,
		       const struct pgk_config_repo *rc, enum backup_type t)
{
	size_t n = x->n, m = 0, i;
	struct retention_policy p;
	struct retention_item *sub;
	size_t *idx;

	if (policy_for(cfg, rc, t, &p) < 0)
		return PGKEEP_EINVAL;
	sub = xzalloc((n ? n : 1) * sizeof(*sub));
	idx = xmalloc((n ? n : 1) * sizeof(*idx));
	for (i = 0; i < n; i++) {
		if (x->list[i].type != t)
			continue;
		sub[m].start_time = x->list[i].start_time;
		sub[m].pinned = pin_find(x->pins, x->npins, x->list[i].id);
		idx[m++] = i;
	}
	retention_apply(&p, sub, m);
	for (i = 0; i < m; i++) {
		x->items[idx[i]] = sub[i];
		x->expired[idx[i]] = !sub[i].keep;
	}
	free(sub);
	free(idx);
	return 0;
}

static int decide(struct expire_run *x, const struct pgk_config *cfg,
		  const struct pgk_config_repo *rc)
{
	size_t n;

	if (manifest_list_summary(x->r, &x->list, &x->n) < 0 ||
	    pin_list(x->r, &x->pins, &x->npins) < 0)
		return -1;
	n = x->n;
	x->items = xzalloc((n ? n : 1) * sizeof(*x->items));
	x->expired = xzalloc((n ? n : 1) * sizeof(*x->expired));
	for (enum backup_type t = BACKUP_BASE; t <= BACKUP_DUMP; t++)
		if (decide_type(x, cfg, rc, t) < 0)
			return -1;
	x->have_cut = wal_cutoff(x->list, x->n, x->expired, &x->cut);
	return 0;
}

static void print_plan_json(struct expire_run *x)
{
	char when[32];
	size_t i;

	x->jout = json_object_new_object();
	x->jbackups = json_object_new_array();
	json_object_object_add(x->jout, "repository", json_object_new_string(x->r->name));
	json_object_object_add(x->jout, "dry_run", json_object_new_boolean(x->p->dry_run));
	json_object_object_add(x->jout, "backups", x->jbackups);
	for (i = 0; i < x->n; i++) {
		struct json_object *b = json_object_new_object();

		iso_utc_text(x->list[i].start_time, when, sizeof(when));
		json_object_object_add(b, "id", json_object_new_string(x->list[i].id));
		json_object_object_add(b, "type", json_object_new_string(backup_type_name(x->list[i].type)));
		json_object_object_add(b, "start_time", json_object_new_string(when));
		json_object_object_add(b, "action", json_object_new_string(x->expired[i] ? "remove" : "keep"));
		json_object_object_add(b, "reason", json_object_new_string(x->items[i].reason));
		json_object_array_add(x->jbackups, b);
	}
}

static void print_plan(struct expire_run *x)
{
	char when[32];
	size_t i;

	if (x->p->json) {
		print_plan_json(x);
		return;
	}
	printf("repository %s: %zu backup(s)%s\n", x->r->name, x->n,
	       x->p->dry_run ? " (dry run)" : "");
	for (i = 0; i < x->n; i++) {
		local_time_text(x->list[i].start_time, when, sizeof(when));
		printf("%-6s %-28s %-4s %s  %s\n", x->expired[i] ? "remove" : "keep", x->list[i].id,
		       backup_type_name(x->list[i].type), when, x->items[i].reason);
	}
}

/* 1. Manifests, but those the store still locks stay (and keep their WAL). */
static int remove_manifests(struct expire_run *x)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		char key[128];
		int64_t until;

		if (!x->expired[i])
			continue;
		layout_manifest_key(x->list[i].id, key, sizeof(key));
		if (gc_locked_until(x->r, key, &until) && until > time(NULL)) {
			char when[32];

			local_time_text(until, when, sizeof(when));
			if (!x->p->json)
				printf("kept   %-28s locked in the store until %s\n", x->list[i].id, when);
			x->expired[i] = false;
			x->nkept_locked++;
			continue;
		}
		x->nexpired++;
		if (x->p->dry_run)
			continue;
		if (store_remove(x->r->store, key) < 0)
			return -1;
		pgk_log_info("removed backup %s (%s)", x->list[i].id, x->items[i].reason);
	}
	if (x->nkept_locked)
		x->have_cut = wal_cutoff(x->list, x->n, x->expired, &x->cut);
	return 0;
}

static int sweep(struct expire_run *x)
{
	struct gc_backups kept;
	struct gc_refs refs;

	/* 2. The removed backups' chunk lists, and those unfinished backups left. */
	if (lists_sweep(x->r, x->list, x->n, x->expired, x->p->grace, x->p->dry_run, &x->lists) < 0)
		return -1;

	/* 3. Chunks nothing that remains refers to. */
	kept = (struct gc_backups){ .r = x->r, .list = x->list, .n = x->n, .skip = x->expired };
	gc_refs_of_backups(&refs, &kept);
	if (gc_sweep_chunks(x->r, &refs, GC_PASS_IDS, x->p->grace, x->p->dry_run, &x->chunks) < 0)
		return -1;

	/* 4. WAL before the oldest remaining base backup; history files stay. */
	if (x->have_cut && gc_sweep_wal(x->r, &x->cut, x->p->dry_run, &x->wal) < 0)
		return -1;
	return 0;
}

static void print_result_json(struct expire_run *x)
{
	struct json_object *jc = json_object_new_object(), *jw = json_object_new_object();
	char cutname[WAL_SEG_NAME_LEN + 1];

	json_object_object_add(jc, "removed", json_object_new_int64((int64_t)x->chunks.removed));
	json_object_object_add(jc, "bytes", json_object_new_int64((int64_t)x->chunks.bytes));
	json_object_object_add(jc, "locked", json_object_new_int64((int64_t)x->chunks.locked));
	json_object_object_add(jc, "young", json_object_new_int64((int64_t)x->chunks.young));
	json_object_object_add(x->jout, "chunks", jc);
	if (x->have_cut) {
		snprintf(cutname, sizeof(cutname), "%08X%08X%08X", x->cut.tli, x->cut.log, x->cut.seg);
		json_object_object_add(jw, "keep_from", json_object_new_string(cutname));
	} else {
		json_object_object_add(jw, "keep_from", NULL);
	}
	json_object_object_add(jw, "removed", json_object_new_int64((int64_t)x->wal.removed));
	json_object_object_add(jw, "locked", json_object_new_int64((int64_t)x->wal.locked));
	json_object_object_add(x->jout, "wal", jw);
	json_object_object_add(x->jout, "backups_removed", json_object_new_int64((int64_t)x->nexpired));
}

static void print_result(struct expire_run *x)
{
	const char *verb = x->p->dry_run ? "would remove" : "removed";

	if (x->p->json) {
		print_result_json(x);
		return;
	}
	printf("%s %zu backup(s), %zu chunk(s) (%.1f MiB), %zu WAL file(s)",
	       verb, x->nexpired, x->chunks.removed, x->chunks.bytes / 1048576.0, x->wal.removed);
	if (x->have_cut)
		printf(" older than %08X%08X%08X", x->cut.tli, x->cut.log, x->cut.seg);
	printf("\n");
	if (x->chunks.young)
		printf("kept %zu unreferenced chunk(s) younger than the grace period\n",
		       x->chunks.young);
	if (x->chunks.locked + x->wal.locked)
		printf("kept %zu object(s) still locked in the store\n",
		       x->chunks.locked + x->wal.locked);
	if (!x->have_cut)
		printf("no base backup remains: all WAL kept\n");
}

int expire_repo(struct repo *r, const struct pgk_config *cfg, const struct pgk_config_repo *rc,
		const struct expire_params *p, struct json_object **doc)
{
	struct expire_run x = { .r = r, .p = p };
	int ret = -1;

	if (decide(&x, cfg, rc) < 0)
		goto out_free;
	print_plan(&x);
	if (remove_manifests(&x) < 0 || sweep(&x) < 0)
		goto out_free;
	print_result(&x);
	if (doc) {
		*doc = x.jout;
		x.jout = NULL;
	}
	ret = 0;
out_free:
	json_object_put(x.jout);
	free(x.items);
	free(x.expired);
	pin_list_free(x.pins, x.npins);
	if (x.list)
		manifest_list_free(x.list, x.n);
	return ret;
}

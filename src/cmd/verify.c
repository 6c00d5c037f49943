/*
 * pgkeep verify [--read-data] [--json]: is every backup restorable?  Every
 * manifest must read, every chunk it names must exist (with --read-data: be
 * fetched, decrypted and checked against its keyed id and the stream's
 * checksum), and the WAL must run without a gap from each base backup's start
 * to its stop and on to the newest archived segment.  Chunks nothing refers
 * to are reported, not counted as problems.  Exit 0 only when all is well.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/gc.h"
#include "repo/lists.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/walcheck.h"

struct report {
	bool json;
	size_t problems;
	struct json_object *jproblems;
};

static void problem(struct report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct report *rep, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rep->problems++;
	if (rep->json)
		json_object_array_add(rep->jproblems, json_object_new_string(msg));
	else
		printf("problem: %s\n", msg);
}

struct keylist {
	char **keys;
	size_t n;
};

static int add_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct keylist *l = payload;

	(void)st;
	l->keys = xrealloc(l->keys, (l->n + 1) * sizeof(*l->keys));
	l->keys[l->n++] = xstrdup(key);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool sorted_has(char **v, size_t n, const char *s)
{
	return bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

static int null_sink(void *payload, const void *buf, size_t len)
{
	(void)payload, (void)buf, (void)len;
	return 0;
}

static void report_problem(void *payload, const char *msg)
{
	problem(payload, "%s", msg);
}

/* WAL continuity from the oldest base backup on: later ones lie inside it. */
static int check_wal(struct repo *r, struct report *rep, const struct manifest *list, size_t n,
		     struct json_object *jout)
{
	const struct manifest *oldest = NULL;
	struct wal_archive a;
	uint32_t seg_size = 0;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (list[i].type == BACKUP_BASE && list[i].wal_seg_size)
			seg_size = list[i].wal_seg_size;
	rc = wal_archive_load(r, seg_size, &a);
	if (rc < 0)
		return rc;
	json_object_object_add(jout, "wal_segments", json_object_new_int64((int64_t)a.n));
	/* The oldest by recorded start, never by id. */
	for (i = 0; i < n; i++)
		if (list[i].type == BACKUP_BASE &&
		    (!oldest || list[i].start_time < oldest->start_time ||
		     (list[i].start_time == oldest->start_time && list[i].stop_lsn < oldest->stop_lsn)))
			oldest = &list[i];
	/* Each backup's own range names the backup that needs a missing
	 * segment; the oldest's range on to the newest covers the rest. */
	for (i = 0; i < n; i++)
		if (list[i].type == BACKUP_BASE)
			wal_archive_check(&a, &list[i], &list[i] == oldest, report_problem, rep);
	wal_archive_free(&a);
	return 0;
}

int cmd_verify(const struct pgk_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-data", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct pgk_config cfg = { 0 };
	struct report rep = { 0 };
	struct repo *r = NULL;
	struct repo_lock *lock = NULL;
	struct keylist manifests = { NULL, 0 }, chunks = { NULL, 0 };
	struct manifest *list = NULL;
	struct json_object *jout = json_object_new_object(), *jbackups = json_object_new_array();
	char **refs = NULL, **orphans = NULL;
	size_t n = 0, nrefs = 0, norphans = 0, nlists = 0, i, j, k;
	bool read_data = false;
	int c, jobs, ret = PGK_EXIT_ERROR;

	if (ctx_all_repos(argc, argv)) {
		json_object_put(jout);
		json_object_put(jbackups);
		return ctx_each_repo(g, argc, argv, cmd_verify);
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			read_data = true;
		else if (c == 'j')
			rep.json = true;
		else
			return PGK_EXIT_USAGE;
	}
	rep.jproblems = json_object_new_array();
	json_object_object_add(jout, "backups", jbackups);
	json_object_object_add(jout, "problems", rep.jproblems);
	if (ctx_load_config(g, &cfg) < 0) {
		json_object_put(jout);
		return ctx_fail();
	}
	jobs = cfg.jobs > 0 ? cfg.jobs : 2;
	if (ctx_open_repo(g, &cfg, &r) < 0 ||
	    lock_acquire(&lock, r, LOCK_SHARED, "verify", 60) < 0 ||
	    store_list(r->store, "backups/", add_key, &manifests) < 0 ||
	    store_list(r->store, "chunks/", add_key, &chunks) < 0)
		goto fail;
	json_object_object_add(jout, "repository", json_object_new_string(r->name));

	/* Chunk ids present, sorted, for existence checks without a call each. */
	for (i = 0; i < chunks.n; i++) {
		const char *slash = strrchr(chunks.keys[i], '/');
		char *id = xstrdup(slash ? slash + 1 : chunks.keys[i]);

		free(chunks.keys[i]);
		chunks.keys[i] = id;
	}
	if (chunks.n > 1)
		qsort(chunks.keys, chunks.n, sizeof(*chunks.keys), cmp_str);

	if (manifests.n > 1)
		qsort(manifests.keys, manifests.n, sizeof(*manifests.keys), cmp_str);
	list = xzalloc((manifests.n ? manifests.n : 1) * sizeof(*list));
	for (i = 0; i < manifests.n; i++) {
		const char *key = manifests.keys[i];
		size_t len = strlen(key);
		char id[MANIFEST_ID_MAX];
		size_t missing = 0;
		struct json_object *jb;

		if (len < 9 + 9 || strcmp(key + len - 9, ".manifest") != 0) {
			problem(&rep, "unexpected object %s", key);
			continue;
		}
		snprintf(id, sizeof(id), "%.*s", (int)(len - 8 - 9), key + 8);
		if (manifest_load_full(r, id, &list[n]) < 0) {
			problem(&rep, "backup %s: manifest unreadable: %s", id, pgk_errmsg());
			continue;
		}
		for (j = 0; j < list[n].nstreams; j++) {
			const struct manifest_stream *s = &list[n].streams[j];

			for (k = 0; k < s->nchunks; k++)
				if (!sorted_has(chunks.keys, chunks.n, s->chunks[k].id)) {
					char ck[128];

					chunk_key(s->chunks[k].id, ck, sizeof(ck));
					problem(&rep, "backup %s: stream %s: chunk %s is missing (%s)",
						id, s->name, s->chunks[k].id, ck);
					missing++;
				}
			if (read_data && !missing && stream_read(r, s, jobs, null_sink, NULL) < 0)
				problem(&rep, "backup %s: stream %s: %s", id, s->name, pgk_errmsg());
		}
		jb = json_object_new_object();
		json_object_object_add(jb, "id", json_object_new_string(id));
		json_object_object_add(jb, "type", json_object_new_string(backup_type_name(list[n].type)));
		json_object_object_add(jb, "missing_chunks", json_object_new_int64((int64_t)missing));
		json_object_array_add(jbackups, jb);
		if (!rep.json)
			printf("backup %s: %s\n", id, missing ? "chunks missing" : read_data ? "data verified" : "chunks present");
		n++;
	}

	if (check_wal(r, &rep, list, n, jout) < 0)
		goto fail;

	/* Chunks nothing refers to: left by an interrupted backup; expire removes them. */
	{
		char **ids;
		size_t total = 0, m = 0;

		for (i = 0; i < n; i++)
			for (j = 0; j < list[i].nstreams; j++)
				total += list[i].streams[j].nchunks;
		ids = xmalloc((total ? total : 1) * sizeof(*ids));
		for (i = 0; i < n; i++)
			for (j = 0; j < list[i].nstreams; j++)
				for (k = 0; k < list[i].streams[j].nchunks; k++)
					ids[m++] = list[i].streams[j].chunks[k].id;
		if (m > 1)
			qsort(ids, m, sizeof(*ids), cmp_str);
		refs = ids;
		nrefs = m;
		if (gc_unreferenced_chunks(r, refs, nrefs, &orphans, &norphans) < 0)
			goto fail;
	}
	/* A delta is only as good as its base. */
	{
		char **lost = NULL;
		size_t nlost = 0;

		if (gc_missing_bases(r, refs, nrefs, chunks.keys, chunks.n, &lost, &nlost) < 0)
			goto fail;
		for (i = 0; i < nlost; i++)
			problem(&rep, "chunk %.64s is stored as a delta of chunk %s, which is missing",
				lost[i], lost[i] + 65);
		gc_free_ids(lost, nlost);
	}
	if (lists_unreferenced(r, list, n, &nlists) < 0)
		goto fail;
	json_object_object_add(jout, "unreferenced_chunks", json_object_new_int64((int64_t)norphans));
	json_object_object_add(jout, "unreferenced_lists", json_object_new_int64((int64_t)nlists));
	json_object_object_add(jout, "ok", json_object_new_boolean(rep.problems == 0));
	if (rep.json) {
		printf("%s\n", json_object_to_json_string_ext(jout, JSON_C_TO_STRING_PRETTY));
	} else {
		if (norphans)
			printf("note: %zu chunk(s) nothing refers to (left by an interrupted backup; expire removes them)\n",
			       norphans);
		if (nlists)
			printf("note: %zu chunk list object(s) of no backup (left by an interrupted backup; expire removes them)\n",
			       nlists);
		if (rep.problems)
			printf("verify: %zu problem(s) in repository %s\n", rep.problems, r->name);
		else
			printf("verify: repository %s is consistent (%zu backup(s)%s)\n", r->name, n,
			       read_data ? ", all data read back" : "");
	}
	ret = rep.problems ? PGK_EXIT_ERROR : PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	gc_free_ids(orphans, norphans);
	free(refs);
	for (i = 0; i < manifests.n; i++)
		free(manifests.keys[i]);
	free(manifests.keys);
	for (i = 0; i < chunks.n; i++)
		free(chunks.keys[i]);
	free(chunks.keys);
	if (list)
		manifest_list_free(list, n);
	json_object_put(jout);
	lock_release(lock);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

/*
 * pgkeep verify [--read-data] [--json]: is every backup restorable?  Every
 * manifest must read, every chunk it names must exist (with --read-data: be
 * fetched, decrypted and checked against its keyed id and the stream's
 * checksum), and the WAL must run without a gap from each base backup's start
 * to its stop and on to the newest archived segment.  Chunks nothing refers
 * to are reported, not counted as problems.  Exit 0 only when all is well.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/gc.h"
#include "repo/layout.h"
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

/* What verify made of one object under backups/. */
struct entry {
	const char *key;
	char id[MANIFEST_ID_MAX];
	enum { ENTRY_OK, ENTRY_UNEXPECTED, ENTRY_UNREADABLE } state;
	char *error;		/* unreadable: why */
	size_t nstreams;
	size_t *missing;	/* per stream, summed over the passes */
};

/* The backups' chunks, told one manifest at a time; the last pass reports. */
struct walk {
	struct repo *r;
	struct report *rep;
	struct entry *e;
	size_t n;
	bool read_data;
	int jobs;
	struct json_object *jbackups;
};

/* Only what the WAL check reads of a manifest: no streams, nothing to free. */
static void keep_header(struct manifest *h, const struct manifest *m)
{
	manifest_copy_header(h, m);
	memcpy(h->list_set, m->list_set, sizeof(h->list_set));
	h->summary = true;
}

/* The chunks of one stream; a missing one is a problem where it is found. */
static int walk_stream(struct walk *w, struct entry *e, const struct manifest *m, size_t j,
		       gc_ref_fn fn, void *arg)
{
	const struct manifest_chunk *c;
	struct manifest_cursor *cur;
	int rc;

	rc = manifest_cursor_open(w->r, m, j, &cur);
	if (rc < 0)
		return rc;
	while ((rc = manifest_cursor_next(cur, &c)) == 1) {
		char ck[128];

		rc = fn(arg, c->id);
		if (rc < 0)
			break;
		if (rc == 0)
			continue;
		chunk_key(c->id, ck, sizeof(ck));
		problem(w->rep, "backup %s: stream %s: chunk %s is missing (%s)", e->id,
			m->streams[j].name, c->id, ck);
		e->missing[j]++;
	}
	manifest_cursor_close(cur);
	return rc < 0 ? rc : 0;
}

/*
 * A stream that did not read back: find its damaged chunks one by one (only
 * here, so a sound repository is read once), each a problem of its own.
 * Returns how many; when none is, the stream itself is the problem (its
 * checksum, or the order of its chunks).
 */
static int scan_damaged(struct walk *w, struct entry *e, const struct manifest_stream *s,
			const char *why, size_t *damaged)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	const struct manifest_chunk *c;
	struct manifest_cursor *cur;
	char *stream_err = xstrdup(why);
	size_t found = 0;
	int rc;

	rc = manifest_stream_cursor_open(w->r, s, &cur);
	if (rc < 0)
		goto out_free;
	while ((rc = manifest_cursor_next(cur, &c)) == 1) {
		if (chunk_read(w->r, c->id, c->size, &obj, &plain) < 0) {
			problem(w->rep, "backup %s: stream %s: chunk %s is damaged: %s", e->id,
				s->name, c->id, pgk_errmsg());
			found++;
		}
	}
	manifest_cursor_close(cur);
	if (rc == 0 && !found)
		problem(w->rep, "backup %s: stream %s: %s", e->id, s->name, stream_err);
	*damaged = found;
out_free:
	buf_free(&obj);
	buf_free(&plain);
	free(stream_err);
	return rc;
}

/* What was found, as the backup's line says it. */
static void print_backup_line(const struct entry *e, size_t missing, size_t damaged,
			      size_t bad_streams, bool read_data)
{
	printf("backup %s: ", e->id);
	if (missing)
		printf("missing: %zu chunk%s%s", missing, missing == 1 ? "" : "s",
		       damaged || bad_streams ? ", " : "");
	if (damaged)
		printf("damaged: %zu chunk%s", damaged, damaged == 1 ? "" : "s");
	else if (bad_streams)
		printf("damaged: %zu stream%s", bad_streams, bad_streams == 1 ? "" : "s");
	if (!missing && !damaged && !bad_streams)
		printf("%s", read_data ? "data verified" : "chunks present");
	printf("\n");
}

/* Read one stream back whole; on failure count what is damaged in it. */
static int read_back(struct walk *w, struct entry *e, const struct manifest_stream *s,
		     size_t *damaged, size_t *bad_streams)
{
	size_t n = 0;
	int rc;

	if (stream_read(w->r, s, w->jobs, null_sink, NULL) == 0)
		return 0;
	rc = scan_damaged(w, e, s, pgk_errmsg(), &n);
	*damaged += n;
	(*bad_streams)++;
	return rc;
}

static int walk_backups(void *payload, unsigned pass, unsigned npasses, gc_ref_fn fn, void *arg)
{
	struct walk *w = payload;
	bool last = pass + 1 == npasses;
	size_t i, j;
	int rc;

	for (i = 0; i < w->n; i++) {
		struct entry *e = &w->e[i];
		struct manifest m = { 0 };
		size_t missing = 0, damaged = 0, bad_streams = 0;
		struct json_object *jb;

		if (e->state == ENTRY_UNEXPECTED) {
			if (last)
				problem(w->rep, "unexpected object %s", e->key);
			continue;
		}
		if (e->state == ENTRY_UNREADABLE) {
			if (last)
				problem(w->rep, "backup %s: manifest unreadable: %s", e->id, e->error);
			continue;
		}
		/* Whole, not a summary: --read-data hands its streams to stream_read. */
		rc = manifest_load(w->r, e->id, &m);
		if (rc == 0 && m.nstreams != e->nstreams)
			rc = pgk_error(PGKEEP_ECORRUPT, "backup %s changed while verified", e->id);
		for (j = 0; rc == 0 && j < m.nstreams; j++) {
			rc = walk_stream(w, e, &m, j, fn, arg);
			missing += e->missing[j];
			/* A stream with a missing chunk cannot read back: said already. */
			if (rc == 0 && last && w->read_data && !e->missing[j])
				rc = read_back(w, e, &m.streams[j], &damaged, &bad_streams);
		}
		if (rc < 0) {
			manifest_free(&m);
			return rc;
		}
		if (last) {
			jb = json_object_new_object();
			json_object_object_add(jb, "id", json_object_new_string(e->id));
			json_object_object_add(jb, "type", json_object_new_string(backup_type_name(m.type)));
			json_object_object_add(jb, "missing_chunks", json_object_new_int64((int64_t)missing));
			json_object_object_add(jb, "damaged_chunks", json_object_new_int64((int64_t)damaged));
			json_object_object_add(jb, "damaged_streams",
					       json_object_new_int64((int64_t)bad_streams));
			json_object_object_add(jb, "data_verified", json_object_new_boolean(
				w->read_data && !missing && !bad_streams));
			json_object_array_add(w->jbackups, jb);
			if (!w->rep->json)
				print_backup_line(e, missing, damaged, bad_streams, w->read_data);
		}
		manifest_free(&m);
	}
	return 0;
}

/*
 * Sort out the objects under backups/: which are manifests that read (their
 * headers into heads, for the WAL check), and how many chunk references
 * they hold, which sets the number of passes.
 */
static uint64_t survey(struct repo *r, struct keylist *manifests, struct entry *e,
		       struct manifest *heads, size_t *nheads)
{
	uint64_t total = 0;
	size_t i, j;

	*nheads = 0;
	for (i = 0; i < manifests->n; i++) {
		const char *key = manifests->keys[i];
		char *id = layout_manifest_key_id(key);
		struct manifest m = { 0 };

		e[i].key = key;
		if (!id) {
			e[i].state = ENTRY_UNEXPECTED;
			continue;
		}
		snprintf(e[i].id, sizeof(e[i].id), "%s", id);
		free(id);
		if (manifest_load(r, e[i].id, &m) < 0) {
			e[i].state = ENTRY_UNREADABLE;
			e[i].error = xstrdup(pgk_errmsg());
			continue;
		}
		e[i].state = ENTRY_OK;
		e[i].nstreams = m.nstreams;
		e[i].missing = xzalloc((m.nstreams ? m.nstreams : 1) * sizeof(*e[i].missing));
		for (j = 0; j < m.nstreams; j++)
			total += m.streams[j].nchunks;
		keep_header(&heads[(*nheads)++], &m);
		manifest_free(&m);
	}
	return total;
}

struct verify_opts {
	bool read_data;
	bool json;
	bool all_repos;
};

static const struct opt_def verify_options[] = {
	OPT_FLAG_DEF("read-data", 0, struct verify_opts, read_data,
		     "fetch, decrypt and check every chunk (default: check they exist)"),
	OPT_JSON(struct verify_opts, json, "print the result as JSON"),
	OPT_ALL_REPOS(struct verify_opts, all_repos, "verify every repository of the config in turn"),
	OPT_END,
};

const struct opt_spec verify_cli = {
	.command = "verify",
	.summary = "check that every backup and the WAL archive are complete",
	.synopsis = "[OPTIONS]",
	.opts = verify_options,
};

static int verify_repo(const struct pgk_globals *g, const void *opts, struct json_object **doc)
{
	const struct verify_opts *o = opts;
	struct pgk_config cfg = { 0 };
	struct report rep = { .json = o->json };
	struct repo *r = NULL;
	struct repo_lock *lock = NULL;
	struct keylist manifests = { NULL, 0 };
	struct manifest *heads = NULL;
	struct entry *entries = NULL;
	struct gc_check found = { 0 };
	struct walk w = { 0 };
	struct gc_refs refs;
	struct json_object *jout = json_object_new_object(), *jbackups = json_object_new_array();
	size_t n = 0, nlists = 0, i;
	bool read_data = o->read_data;
	int ret = PGK_EXIT_ERROR;

	rep.jproblems = json_object_new_array();
	json_object_object_add(jout, "backups", jbackups);
	json_object_object_add(jout, "problems", rep.jproblems);
	if (ctx_load_config(g, &cfg) < 0) {
		json_object_put(jout);
		return ctx_fail();
	}
	if (ctx_open_repo(g, &cfg, &r) < 0 ||
	    lock_acquire(&lock, r, LOCK_SHARED, "verify", 60) < 0 ||
	    store_list(r->store, LAYOUT_BACKUPS_PREFIX, add_key, &manifests) < 0)
		goto fail;
	json_object_object_add(jout, "repository", json_object_new_string(r->name));

	if (manifests.n > 1)
		qsort(manifests.keys, manifests.n, sizeof(*manifests.keys), cmp_str);
	entries = xzalloc((manifests.n ? manifests.n : 1) * sizeof(*entries));
	heads = xzalloc((manifests.n ? manifests.n : 1) * sizeof(*heads));
	w = (struct walk){ .r = r, .rep = &rep, .e = entries, .n = manifests.n,
			   .read_data = read_data, .jobs = ctx_jobs(0, &cfg, 2),
			   .jbackups = jbackups };
	refs = (struct gc_refs){ .walk = walk_backups, .payload = &w,
				 .total = survey(r, &manifests, entries, heads, &n) };

	/*
	 * Every chunk a backup names must be there; chunks nothing refers to
	 * (left by an interrupted backup; expire removes them) are counted.
	 */
	if (gc_check_chunks(r, &refs, GC_PASS_IDS, &found) < 0)
		goto fail;

	if (check_wal(r, &rep, heads, n, jout) < 0)
		goto fail;

	/* A delta is only as good as its base. */
	for (i = 0; i < found.nmissing_bases; i++)
		problem(&rep, "chunk %.64s is stored as a delta of chunk %s, which is missing",
			found.missing_bases[i], found.missing_bases[i] + 65);
	if (lists_unreferenced(r, heads, n, &nlists) < 0)
		goto fail;
	json_object_object_add(jout, "unreferenced_chunks",
			       json_object_new_int64((int64_t)found.unreferenced));
	json_object_object_add(jout, "unreferenced_lists", json_object_new_int64((int64_t)nlists));
	json_object_object_add(jout, "ok", json_object_new_boolean(rep.problems == 0));
	if (rep.json) {
		*doc = jout;
		jout = NULL;
	} else {
		if (found.unreferenced)
			printf("note: %zu chunk(s) nothing refers to (left by an interrupted backup; expire removes them)\n",
			       found.unreferenced);
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
	gc_check_free(&found);
	for (i = 0; entries && i < manifests.n; i++) {
		free(entries[i].error);
		free(entries[i].missing);
	}
	free(entries);
	free(heads);
	for (i = 0; i < manifests.n; i++)
		free(manifests.keys[i]);
	free(manifests.keys);
	json_object_put(jout);
	lock_release(lock);
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

int cmd_verify(const struct pgk_globals *g, int argc, char **argv)
{
	struct verify_opts o = { 0 };
	struct opt_args pos;

	if (opt_parse(&verify_cli, argc, argv, &o, &pos) < 0)
		return opt_fail(&verify_cli);
	return ctx_run_repos(g, o.all_repos, o.json, verify_repo, &o);
}

/*
 * pgkeep copy --from A --to B [ID...|--missing]: copy backups between two
 * repositories of one cluster, sending only the chunks B lacks, together
 * with the WAL B needs to restore them to any later point; the manifest last.
 *
 * Every object is opened with A's keys and sealed again with B's.  Chunk ids
 * are keyed hashes under each repository's own chunk-id key, so a chunk's id
 * in B is only known from its plaintext.  To avoid fetching chunks B already
 * holds, the manifests of backups present in both repositories are read in
 * pairs: same backup, same chunk boundaries, so position k of a stream maps
 * A's id to B's.  A chunk not known that way is fetched, verified and named
 * with B's key, then stored unless B has it.  Chunk lists are read and
 * written a batch at a time, B's in list objects of its own.
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/copy.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/layout.h"
#include "repo/lists.h"
#include "repo/lock.h"
#include "repo/manifest.h"

#define COPY_DEFAULT_JOBS 4
#define COPY_MAX_JOBS 32
/*
 * Chunks of a stream handled together: read from A's chunk list, copied by
 * the workers, then added to B's list in order.  Bounds the memory a copy
 * needs, whatever the size of the backup.
 */
#define COPY_BATCH 1024
/*
 * Two caches bound what a copy holds, whatever the size of the repositories:
 * the chunk ids B holds, from one listing of B, and A's ids mapped to B's,
 * learnt from backups both hold, the newest first.  Each takes at most this
 * many ids (about 8 MiB).  Past that a copy still works, more slowly: a chunk
 * the map does not name is fetched from A and named with B's key, and once
 * B's listing has not fitted, whether B holds a chunk is asked of B, chunk by
 * chunk.  The environment variable PGKEEP_TEST_COPY_IDS sets a smaller cap,
 * so that tests reach those paths with a small repository.
 */
#define COPY_CACHE_IDS ((size_t)64 * 1024)

/* ---- one backup ---- */

static void print_stats(const char *what, const struct copy_stats *s)
{
	char sent[32];

	human_size(s->bytes_sent, sent, sizeof(sent));
	printf("%s: %zu chunk(s) sent (%s), %zu already present\n", what, s->chunks_sent, sent,
	       s->chunks_present);
}

static void stats_add(struct copy_stats *to, const struct copy_stats *s)
{
	to->chunks_sent += s->chunks_sent;
	to->chunks_present += s->chunks_present;
	to->bytes_sent += s->bytes_sent;
	to->wal_sent += s->wal_sent;
	to->wal_present += s->wal_present;
	to->wal_bytes += s->wal_bytes;
}

/*
 * One stream: A's chunk list read a batch at a time, the batch copied by
 * the workers, its entries (naming B's chunks) added to B's list objects.
 */
static int copy_stream(struct copy *c, const struct manifest_stream *s,
		       struct manifest_stream *d)
{
	struct manifest_chunk *batch = xmalloc(COPY_BATCH * sizeof(*batch));
	const struct manifest_chunk *mc;
	struct manifest_cursor *cur;
	struct list_out lo;
	size_t n, k;
	int ret;

	list_out_init(&lo, c->to, d);
	d->size = s->size;
	d->sum_alg = s->sum_alg;
	memcpy(d->sum, s->sum, sizeof(d->sum));
	d->stored = 0;
	ret = manifest_stream_cursor_open(c->from, s, &cur);
	while (ret == 0) {
		for (n = 0; n < COPY_BATCH && (ret = manifest_cursor_next(cur, &mc)) == 1; n++)
			batch[n] = *mc;
		if (ret < 0)
			break;
		ret = copy_par_run(c, n, copy_chunk, batch);
		for (k = 0; ret == 0 && k < n; k++) {
			d->stored += batch[k].stored;
			ret = list_out_append(&lo, &batch[k]);
		}
		if (ret || n < COPY_BATCH)
			break;
	}
	if (ret == 0)
		ret = list_out_flush(&lo);
	if (ret == 0 && d->nchunks != s->nchunks)
		ret = pgk_error(PGKEEP_ECORRUPT, "%zu chunks copied, the manifest lists %zu",
				d->nchunks, s->nchunks);
	manifest_cursor_close(cur);
	list_out_free(&lo);
	free(batch);
	return ret;
}

/* B's manifest starts as A's, without the streams. */
static void copy_header(struct manifest *to, const struct manifest *from)
{
	manifest_copy_header(to, from);
	to->dbname = from->dbname ? xstrdup(from->dbname) : NULL;
	to->label = from->label ? xstrdup(from->label) : NULL;
	to->format = from->format ? xstrdup(from->format) : NULL;
}

/*
 * Chunks, then (base backups) the WAL, then the manifest.  bases: every
 * base backup B holds or will hold after this one, for the WAL cutoff.
 */
static int copy_backup(struct copy *c, const char *id, const struct manifest *bases,
		       size_t nbases)
{
	struct manifest m = { 0 }, dm = { 0 };
	size_t i;
	int ret;

	memset(&c->st, 0, sizeof(c->st));
	ret = manifest_load(c->from, id, &m);
	if (ret)
		return ret;
	if (c->from->sysid && m.sysid && m.sysid != c->from->sysid) {
		ret = pgk_error(PGKEEP_ECORRUPT, "backup %s in %s belongs to cluster %" PRIu64
				", the repository to %" PRIu64, id, c->from->name, m.sysid,
				c->from->sysid);
		goto out_free;
	}
	copy_header(&dm, &m);
	for (i = 0; i < m.nstreams && ret == 0; i++) {
		const struct manifest_stream *s = &m.streams[i];

		struct manifest_stream *d = manifest_add_stream(&dm, s->name);

		manifest_stream_set_tablespace(d, s->tblspc_oid, s->tblspc_location);
		ret = copy_stream(c, s, d);
		if (ret) {
			ret = pgk_error_wrap(ret, "backup %s: stream %s", id, s->name);
			break;
		}
	}
	if (ret == 0 && m.type == BACKUP_BASE && !c->wal_done)
		ret = copy_wal(c, bases, nbases);
	if (ret == 0 && m.type == BACKUP_BASE)
		ret = copy_check_backup_wal(c, &m);
	if (ret == 0) {
		ret = manifest_save(c->to, &dm);
		if (ret == PGKEEP_EEXISTS)
			ret = 0;	/* a concurrent copy finished it */
	}
	if (ret == 0) {
		char what[MANIFEST_ID_MAX + 16];

		snprintf(what, sizeof(what), "copied %s", id);
		print_stats(what, &c->st);
		pgk_log_info("backup %s copied from %s to %s", id, c->from->name, c->to->name);
	}
	stats_add(&c->total, &c->st);
out_free:
	manifest_free(&dm);
	manifest_free(&m);
	return ret;
}

/* ---- the cluster ---- */

static int read_sysid(struct repo *r, uint64_t *out)
{
	struct pgk_buf text = PGK_BUF_INIT;
	char *end;
	int ret;

	ret = repo_get(r, LAYOUT_SYSID_KEY, OBJ_META, &text);
	if (ret == 0) {
		buf_append(&text, "", 1);
		*out = strtoull((const char *)text.data, &end, 10);
		if (end == (const char *)text.data)
			ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s is damaged", r->name,
					LAYOUT_SYSID_KEY);
	}
	buf_free(&text);
	return ret;
}

/* Both repositories hold the same cluster; B, still empty, now does too. */
static int check_cluster(struct copy *c)
{
	uint64_t sysid;
	int ret;

	ret = read_sysid(c->from, &sysid);
	if (ret == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_ENOTFOUND, "repository %s holds no backup or WAL yet",
				 c->from->name);
	if (ret)
		return ret;
	c->from->sysid = sysid;
	ret = repo_check_sysid(c->to, sysid);
	if (ret == PGKEEP_EINVAL)
		return pgk_error_wrap(ret, "cannot copy from %s to %s: they hold different clusters",
				      c->from->name, c->to->name);
	return ret;
}

/* ---- the command ---- */

struct copy_opts {
	const char *from, *to;
	bool missing;
	char **ids;
	int nids;
	int lock_wait;
	size_t cache_ids;	/* the cap of each id cache (COPY_CACHE_IDS) */
};

static const struct opt_def copy_options[] = {
	OPT_STRING_DEF("to", 0, "NAME", struct copy_opts, to, "the repository to copy to (required)"),
	OPT_STRING_DEF("from", 0, "NAME", struct copy_opts, from,
		       "the repository to copy from (default: --repo, else the default)"),
	OPT_FLAG_DEF("missing", 0, struct copy_opts, missing, "every backup --to lacks"),
	OPT_SECONDS_DEF("lock-wait", "DUR", struct copy_opts, lock_wait, INT_MAX,
			"wait this long for an exclusive lock to go (default 60)"),
	OPT_END,
};

static const struct opt_arg copy_args[] = {
	{ "ID...", "these backups ('latest' = the newest); or --missing" },
	{ NULL, NULL },
};

const struct opt_spec copy_cli = {
	.command = "copy",
	.summary = "copy backups and the WAL they need to another repository",
	.synopsis = "--to NAME [--from NAME] ID... | --missing [OPTIONS]",
	.opts = copy_options,
	.args = copy_args,
	.max_args = -1,
};

static int parse_args(int argc, char **argv, struct copy_opts *o)
{
	struct opt_args pos;

	o->lock_wait = 60;
	if (opt_parse(&copy_cli, argc, argv, o, &pos) < 0)
		return PGKEEP_EINVAL;
	o->ids = pos.argv;
	o->nids = pos.argc;
	if (!o->to)
		return pgk_error(PGKEEP_EINVAL, "copy needs --to REPOSITORY");
	if (o->missing == (o->nids > 0))
		return pgk_error(PGKEEP_EINVAL, "copy needs backup ids or --missing (one of them)");
	return 0;
}

static bool in_list(const struct manifest *list, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i].id, id) == 0)
			return true;
	return false;
}

/* Which of A's backups to copy, oldest first: indexes into la. */
static int choose(const struct copy_opts *o, const struct manifest *la, size_t na,
		  const struct manifest *lb, size_t nb, bool *want)
{
	size_t i;
	int k;

	for (i = 0; i < na; i++)
		want[i] = o->missing && !in_list(lb, nb, la[i].id);
	for (k = 0; k < o->nids; k++) {
		const char *id = o->ids[k];

		if (strcmp(id, "latest") == 0 && na)
			id = la[na - 1].id;
		for (i = 0; i < na && strcmp(la[i].id, id) != 0; i++)
			;
		if (i == na)
			return pgk_error(PGKEEP_ENOTFOUND, "repository %s has no backup %s", o->from,
					 o->ids[k]);
		if (in_list(lb, nb, id))
			printf("%s is already in %s\n", id, o->to);
		else
			want[i] = true;
	}
	return 0;
}

/* COPY_CACHE_IDS, or a smaller cap from env (PGKEEP_TEST_COPY_IDS). */
static size_t cache_ids(const char *env)
{
	char *end;
	unsigned long v;

	if (!env || !*env)
		return COPY_CACHE_IDS;
	v = strtoul(env, &end, 10);
	return *end || v == 0 || v > COPY_CACHE_IDS ? COPY_CACHE_IDS : (size_t)v;
}

/* Lists, the id map and the WAL listing of B; then each chosen backup. */
static int copy_run(struct copy *c, const struct copy_opts *o)
{
	struct manifest *la = NULL, *lb = NULL, *bases = NULL;
	size_t na = 0, nb = 0, nbases = 0, ncopy = 0, i;
	bool *want = NULL;
	int ret;

	ret = manifest_list_summary(c->from, &la, &na);
	if (ret == 0)
		ret = manifest_list_summary(c->to, &lb, &nb);
	if (ret)
		goto out_free;
	want = xzalloc((na ? na : 1) * sizeof(*want));
	ret = choose(o, la, na, lb, nb, want);
	if (ret)
		goto out_free;

	/* The base backups B holds or will hold: the WAL it needs starts at the oldest. */
	bases = xzalloc((na + nb + 1) * sizeof(*bases));
	for (i = 0; i < nb; i++)
		if (lb[i].type == BACKUP_BASE)
			bases[nbases++] = lb[i];
	for (i = 0; i < na; i++) {
		if (want[i])
			ncopy++;
		if (want[i] && la[i].type == BACKUP_BASE)
			bases[nbases++] = la[i];
	}
	printf("copy from %s to %s: %zu backup(s) to copy\n", c->from->name, c->to->name, ncopy);

	c->present.max = c->map.max = o->cache_ids;
	ret = store_list(c->to->store, LAYOUT_CHUNKS_PREFIX, copy_present_add, &c->present);
	if (ret == 0)
		ret = store_list(c->to->store, LAYOUT_WAL_PREFIX, keylist_add, &c->wal_to);
	if (ret)
		goto out_free;
	keylist_sort(&c->wal_to);
	c->present_partial = c->present.full;
	if (c->present_partial)
		pgk_log_info("repository %s holds more than %zu chunks: copy asks it about each "
			     "chunk instead of listing them all", c->to->name, c->present.max);
	/* The newest backups first: the next one to copy shares most with them. */
	for (i = na; i-- > 0 && ncopy && !c->map.full;)
		if (in_list(lb, nb, la[i].id) && copy_learn_pair(c, la[i].id) < 0)
			pgk_log_warning("backup %s: %s (its chunks will be fetched)", la[i].id,
					pgk_errmsg());
	if (c->map.full)
		pgk_log_info("copy keeps %zu of the chunk names both repositories share; the "
			     "chunks of older backups are fetched and named again", c->map.max);

	for (i = 0; i < na && ret == 0; i++)
		if (want[i])
			ret = copy_backup(c, la[i].id, bases, nbases);
	/* Keep B's archive current for point-in-time restores of what it holds. */
	if (ret == 0 && !c->wal_done && nbases) {
		memset(&c->st, 0, sizeof(c->st));
		ret = copy_wal(c, bases, nbases);
		stats_add(&c->total, &c->st);
	}
	if (ret == 0) {
		char sent[32], wal[32];

		human_size(c->total.bytes_sent, sent, sizeof(sent));
		human_size(c->total.wal_bytes, wal, sizeof(wal));
		printf("copied %zu backup(s) from %s to %s: %zu chunk(s) sent (%s), %zu already present;"
		       " %zu WAL file(s) sent (%s), %zu already present\n",
		       ncopy, c->from->name, c->to->name, c->total.chunks_sent, sent,
		       c->total.chunks_present, c->total.wal_sent, wal, c->total.wal_present);
	}
out_free:
	free(bases);	/* shallow copies of la / lb entries */
	free(want);
	manifest_list_free(la, na);
	manifest_list_free(lb, nb);
	return ret;
}

int cmd_copy(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_config cfg = { 0 };
	const struct pgk_config_repo *rc;
	struct copy_opts o = { 0 };
	struct copy c = { 0 };
	struct repo_lock *lfrom = NULL, *lto = NULL;
	int ret = PGK_EXIT_ERROR;

	o.cache_ids = cache_ids(getenv("PGKEEP_TEST_COPY_IDS"));
	if (parse_args(argc, argv, &o) < 0)
		return opt_fail(&copy_cli);
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	/* --from defaults to --repo, else the default repository. */
	if (config_repo(&cfg, o.from ? o.from : g->repo_name, &rc) < 0)
		goto fail;
	o.from = rc->name;
	if (config_repo(&cfg, o.to, &rc) < 0)
		goto fail;
	if (strcmp(o.from, o.to) == 0) {
		pgk_log_error("--from and --to both name repository %s", o.to);
		ret = PGK_EXIT_USAGE;
		goto out;
	}
	c.jobs = ctx_jobs(0, &cfg, COPY_DEFAULT_JOBS);
	if (c.jobs > COPY_MAX_JOBS)
		c.jobs = COPY_MAX_JOBS;
	pthread_mutex_init(&c.mu, NULL);
	if (ctx_open_repo_named(&cfg, o.from, &c.from) < 0 ||
	    ctx_open_repo_named(&cfg, o.to, &c.to) < 0 ||
	    lock_acquire(&lfrom, c.from, LOCK_SHARED, "copy", o.lock_wait) < 0 ||
	    lock_acquire(&lto, c.to, LOCK_SHARED, "copy", o.lock_wait) < 0)
		goto fail;
	ret = check_cluster(&c);
	if (ret == PGKEEP_ENOTFOUND) {
		printf("%s: nothing to copy\n", pgk_errmsg());
		ret = PGK_EXIT_OK;
		goto out;
	}
	if (ret < 0 || copy_run(&c, &o) < 0)
		goto fail;
	ret = PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	lock_release(lto);
	lock_release(lfrom);
	repo_close(c.to);
	repo_close(c.from);
	idmap_free(&c.present);
	idmap_free(&c.map);
	keylist_free(&c.wal_to);
	if (c.jobs)
		pthread_mutex_destroy(&c.mu);
	config_free(&cfg);
	return ret;
}

/*
 * Backup manifests: building them in memory, and storing, loading and
 * listing them in the repository.  Their JSON form is manifest_json.c's,
 * reading a stream's chunk list manifest_cursor.c's.
 */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/layout.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/manifest_int.h"

const char *backup_type_name(enum backup_type t)
{
	switch (t) {
	case BACKUP_BASE: return "base";
	case BACKUP_DUMP: return "dump";
	}
	return "unknown";
}

static void stream_free(struct manifest_stream *s)
{
	free(s->name);
	free(s->tblspc_location);
	free(s->chunks);
	free(s->lists);
}

void manifest_free(struct manifest *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nstreams; i++)
		stream_free(&m->streams[i]);
	free(m->streams);
	free(m->dbname);
	free(m->label);
	free(m->format);
	memset(m, 0, sizeof(*m));
}

void manifest_copy_header(struct manifest *to, const struct manifest *from)
{
	memset(to, 0, sizeof(*to));
	memcpy(to->id, from->id, sizeof(to->id));
	to->type = from->type;
	to->sysid = from->sysid;
	to->pg_version = from->pg_version;
	to->timeline = from->timeline;
	to->from_standby = from->from_standby;
	to->start_lsn = from->start_lsn;
	to->stop_lsn = from->stop_lsn;
	memcpy(to->wal_start, from->wal_start, sizeof(to->wal_start));
	memcpy(to->wal_stop, from->wal_stop, sizeof(to->wal_stop));
	to->wal_seg_size = from->wal_seg_size;
	to->start_time = from->start_time;
	to->stop_time = from->stop_time;
	to->start_us = from->start_us;
	to->stop_us = from->stop_us;
}

#define USEC 1000000

/* Floor and ceiling of a / USEC, for times before the epoch too. */
int64_t manifest_floor_sec(int64_t us)
{
	return us / USEC - (us % USEC < 0);
}

int64_t manifest_ceil_sec(int64_t us)
{
	return us / USEC + (us % USEC > 0);
}

void manifest_set_start(struct manifest *m, int64_t us)
{
	m->start_us = us;
	m->start_time = manifest_floor_sec(us);
}

void manifest_set_stop(struct manifest *m, int64_t us)
{
	m->stop_us = us;
	m->stop_time = manifest_ceil_sec(us);
}

/* Seconds as microseconds, saturating: no real time is near the limits. */
static int64_t sec_to_us(int64_t s)
{
	if (s > INT64_MAX / USEC)
		return INT64_MAX;
	if (s < INT64_MIN / USEC)
		return INT64_MIN;
	return s * USEC;
}

int64_t manifest_start_us(const struct manifest *m)
{
	return m->start_us ? m->start_us : sec_to_us(m->start_time);
}

int64_t manifest_stop_us(const struct manifest *m)
{
	return m->stop_us ? m->stop_us : sec_to_us(m->stop_time);
}

struct manifest_stream *manifest_add_stream(struct manifest *m, const char *name)
{
	struct manifest_stream *s;

	m->streams = xrealloc(m->streams, (m->nstreams + 1) * sizeof(*m->streams));
	s = &m->streams[m->nstreams++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->sum_alg = STREAM_SUM_DEFAULT;
	s->index = m->nstreams - 1;
	snprintf(s->backup, sizeof(s->backup), "%s", m->id);
	if (!m->list_set[0])
		list_set_new(m->list_set);
	memcpy(s->list_set, m->list_set, sizeof(s->list_set));
	return s;
}

void manifest_stream_set_tablespace(struct manifest_stream *s, uint32_t oid,
				    const char *location)
{
	free(s->tblspc_location);
	s->tblspc_oid = oid;
	s->tblspc_location = location ? xstrdup(location) : NULL;
}

bool manifest_tablespace_location_ok(const char *location)
{
	const char *p = location;
	size_t n;

	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (p = location + 1;; p += n + 1) {
		n = strcspn(p, "/");
		if (n == 0 && p[n] == '\0')
			return p != location + 1;
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (p[n] == '\0')
			return true;
	}
}

struct manifest_chunk *manifest_stream_add_chunk(struct manifest_stream *s, const char *id,
						 uint32_t size, uint32_t stored)
{
	struct manifest_chunk *c;

	if (s->nchunks == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->chunks = xrealloc(s->chunks, s->cap * sizeof(*s->chunks));
	}
	c = &s->chunks[s->nchunks++];
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->size = size;
	c->stored = stored;
	if (size > s->max_chunk)
		s->max_chunk = size;
	return c;
}

uint64_t manifest_size(const struct manifest *m)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < m->nstreams; i++)
		n += m->streams[i].size;
	return n;
}

uint64_t manifest_stored(const struct manifest *m)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < m->nstreams; i++)
		n += m->streams[i].stored;
	return n;
}


/* ---- in the repository ---- */

/* Ids become store keys: one key segment of [A-Za-z0-9._-], not "." or "..". */
bool manifest_id_valid(const char *id)
{
	size_t i, len = strlen(id);

	if (len == 0 || len >= MANIFEST_ID_MAX || id[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("._-", id[i]))
			return false;
	return true;
}

int manifest_save(struct repo *r, const struct manifest *m)
{
	struct pgk_buf json = PGK_BUF_INIT;
	char *key;
	int ret;

	if (!manifest_id_valid(m->id))
		return pgk_error(PGKEEP_EINVAL, "invalid backup id \"%s\"", m->id);
	ret = manifest_to_json(m, &json);
	if (ret)
		return ret;
	key = layout_manifest_key_dup(m->id);
	ret = repo_put(r, key, OBJ_MANIFEST, json.data, json.len, PGKEEP_PUT_IF_ABSENT);
	if (ret == PGKEEP_EEXISTS)
		pgk_error(ret, "backup %s already exists (%s)", m->id, key);
	free(key);
	buf_free(&json);
	return ret;
}

int manifest_load(struct repo *r, const char *id, struct manifest *m)
{
	struct pgk_buf json = PGK_BUF_INIT;
	char *key;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!manifest_id_valid(id))
		return pgk_error(PGKEEP_EINVAL, "invalid backup id \"%s\"", id);
	key = layout_manifest_key_dup(id);
	ret = repo_get(r, key, OBJ_MANIFEST, &json);
	if (ret == PGKEEP_ENOTFOUND)
		pgk_error(ret, "backup %s not found (%s)", id, key);
	if (ret == 0)
		ret = manifest_from_json(m, (const char *)json.data, json.len, key);
	/* A manifest stored under another backup's name was moved or forged. */
	if (ret == 0 && strcmp(m->id, id) != 0) {
		ret = pgk_error(PGKEEP_ECORRUPT, "manifest %s: records backup id %s", key, m->id);
		manifest_free(m);
	}
	free(key);
	buf_free(&json);
	return ret;
}

int manifest_load_full(struct repo *r, const char *id, struct manifest *m)
{
	size_t i;
	int ret;

	ret = manifest_load(r, id, m);
	for (i = 0; ret == 0 && i < m->nstreams; i++)
		ret = manifest_stream_expand(r, &m->streams[i]);
	if (ret)
		manifest_free(m);
	return ret;
}

struct id_list {
	char **ids;
	size_t n, cap;
};

static int collect_id(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct id_list *l = payload;
	char *id = layout_manifest_key_id(key);

	(void)st;
	if (!id)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->ids = xrealloc(l->ids, l->cap * sizeof(*l->ids));
	}
	l->ids[l->n++] = id;
	return 0;
}

/* Ids are names, not clocks: order by what the backups recorded. */
static int cmp_manifest(const void *a, const void *b)
{
	const struct manifest *x = a, *y = b;

	if (x->start_time != y->start_time)
		return x->start_time < y->start_time ? -1 : 1;
	if (x->stop_lsn != y->stop_lsn)
		return x->stop_lsn < y->stop_lsn ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void drop_chunks(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nstreams; i++) {
		free(m->streams[i].chunks);
		m->streams[i].chunks = NULL;	/* nchunks still counts them */
		m->streams[i].cap = 0;
	}
}

static int list_manifests(struct repo *r, bool keep_chunks, struct manifest **out, size_t *n)
{
	struct id_list ids = { 0 };
	struct manifest *list;
	size_t i, got = 0;
	int ret;

	*out = NULL;
	*n = 0;
	ret = store_list(r->store, LAYOUT_BACKUPS_PREFIX, collect_id, &ids);
	if (ret)
		goto out_free_ids;
	list = xzalloc((ids.n ? ids.n : 1) * sizeof(*list));
	for (i = 0; i < ids.n; i++) {
		ret = keep_chunks ? manifest_load_full(r, ids.ids[i], &list[got]) :
				    manifest_load(r, ids.ids[i], &list[got]);
		/* Expired between the listing and now: it is simply gone. */
		if (ret == PGKEEP_ENOTFOUND)
			continue;
		if (ret) {
			manifest_list_free(list, got);
			goto out_free_ids;
		}
		if (!keep_chunks) {
			drop_chunks(&list[got]);
			list[got].summary = true;
		}
		got++;
	}
	ret = 0;
	qsort(list, got, sizeof(*list), cmp_manifest);
	*out = list;
	*n = got;
out_free_ids:
	for (i = 0; i < ids.n; i++)
		free(ids.ids[i]);
	free(ids.ids);
	return ret;
}

int manifest_list(struct repo *r, struct manifest **out, size_t *n)
{
	return list_manifests(r, true, out, n);
}

int manifest_list_summary(struct repo *r, struct manifest **out, size_t *n)
{
	return list_manifests(r, false, out, n);
}

void manifest_list_free(struct manifest *list, size_t n)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < n; i++)
		manifest_free(&list[i]);
	free(list);
}

/*
 * Reading a stream's chunk list in order, whether inline in its manifest
 * (format 1) or in list objects (repo/lists.h), one list in hand at a time.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/lists.h"
#include "repo/manifest.h"

struct manifest_cursor {
	struct manifest own;		/* loaded when m is a summary of format 1 */
	const struct manifest_stream *s;
	size_t next;			/* chunks returned so far */
	/* A listed stream: the list in hand, the next entry of it. */
	struct repo *r;
	bool listed;
	struct pgk_buf plain;
	size_t list;			/* lists fetched so far */
	uint32_t in_list, pos;
	uint64_t bytes;
	struct manifest_chunk cur;
	int err;			/* sticky */
	char errmsg[PGKEEP_ERRLEN];
};

int manifest_stream_cursor_open(struct repo *r, const struct manifest_stream *s,
				struct manifest_cursor **out)
{
	struct manifest_cursor *c = xzalloc(sizeof(*c));

	c->s = s;
	c->r = r;
	/* Chunks held in memory are read from there, expanded or not. */
	c->listed = s->listed && !s->chunks;
	*out = c;
	return 0;
}

int manifest_cursor_open(struct repo *r, const struct manifest *m, size_t stream,
			 struct manifest_cursor **out)
{
	struct manifest_cursor *c;
	int ret;

	*out = NULL;
	if (stream >= m->nstreams)
		return pgk_error(PGKEEP_EINVAL, "backup %s has no stream %zu", m->id, stream);
	if (!m->summary || m->streams[stream].listed)
		return manifest_stream_cursor_open(r, &m->streams[stream], out);
	/* A summary of format 1: the chunk list is in the manifest itself. */
	c = xzalloc(sizeof(*c));
	ret = manifest_load(r, m->id, &c->own);
	if (ret == 0 && (stream >= c->own.nstreams ||
			 strcmp(c->own.streams[stream].name, m->streams[stream].name) != 0))
		ret = pgk_error(PGKEEP_ECORRUPT, "backup %s: stream %s changed while read",
				m->id, m->streams[stream].name);
	if (ret) {
		manifest_free(&c->own);
		free(c);
		return ret;
	}
	c->s = &c->own.streams[stream];
	c->r = r;
	c->listed = c->s->listed && !c->s->chunks;
	*out = c;
	return 0;
}

static int cursor_fail(struct manifest_cursor *c, int ret)
{
	c->err = ret;
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", pgk_errmsg());
	return ret;
}

/* Past the last list: the lists must have added up to what the manifest says. */
static int cursor_end(struct manifest_cursor *c)
{
	const struct manifest_stream *s = c->s;

	if (c->next != s->nchunks || c->bytes != s->size)
		return cursor_fail(c, pgk_error(PGKEEP_ECORRUPT,
				   "backup %s: stream %s: its lists hold %zu chunks of %llu bytes, "
				   "the manifest says %zu of %llu", s->backup, s->name, c->next,
				   (unsigned long long)c->bytes, s->nchunks,
				   (unsigned long long)s->size));
	return 0;
}

static int cursor_next_listed(struct manifest_cursor *c, const struct manifest_chunk **out)
{
	int ret;

	while (c->pos == c->in_list) {
		if (c->list == c->s->nlists)
			return cursor_end(c);
		ret = list_fetch(c->r, c->s, c->list, &c->plain, &c->in_list);
		if (ret)
			return cursor_fail(c, ret);
		c->list++;
		c->pos = 0;
	}
	ret = list_entry(c->s, c->list - 1, &c->plain, c->pos, &c->cur);
	if (ret)
		return cursor_fail(c, ret);
	c->pos++;
	c->next++;
	c->bytes += c->cur.size;
	*out = &c->cur;
	return 1;
}

int manifest_cursor_next(struct manifest_cursor *c, const struct manifest_chunk **out)
{
	if (c->err)
		return pgk_error(c->err, "%s", c->errmsg);
	if (c->listed)
		return cursor_next_listed(c, out);
	if (c->next >= c->s->nchunks)
		return 0;
	*out = &c->s->chunks[c->next++];
	return 1;
}

void manifest_cursor_close(struct manifest_cursor *c)
{
	if (!c)
		return;
	manifest_free(&c->own);
	buf_free(&c->plain);
	free(c);
}

int manifest_stream_expand(struct repo *r, struct manifest_stream *s)
{
	struct manifest_stream tmp;
	struct manifest_cursor *c;
	const struct manifest_chunk *mc;
	struct manifest_chunk *dst;
	int ret;

	if (!s->listed || s->chunks || s->nchunks == 0)
		return 0;
	/* Read into a copy, so that s stays listed for the cursor meanwhile. */
	memset(&tmp, 0, sizeof(tmp));
	manifest_stream_cursor_open(r, s, &c);
	while ((ret = manifest_cursor_next(c, &mc)) == 1) {
		dst = manifest_stream_add_chunk(&tmp, mc->id, mc->size, mc->stored);
		dst->known = mc->known;
		dst->anchor = mc->anchor;
	}
	manifest_cursor_close(c);
	if (ret < 0) {
		free(tmp.chunks);
		return ret;
	}
	s->chunks = tmp.chunks;
	s->cap = tmp.cap;
	return 0;
}


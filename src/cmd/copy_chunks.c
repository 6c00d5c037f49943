/*
 * copy's chunks: each fetched from A only when B's id for it is not known
 * from a backup both hold, verified, named with B's key, and stored unless
 * B holds it already.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/copy.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/chunks.h"
#include "repo/layout.h"
#include "repo/lists.h"
#include "repo/manifest.h"

/* Whether B holds chunk bid: from the listing, or asked of B when that did not fit. */
static int b_holds(struct copy *c, const uint8_t bid[32], bool *have)
{
	char hex[65];
	int ret;

	pthread_mutex_lock(&c->mu);
	*have = idmap_find(&c->present, bid) != NULL;
	pthread_mutex_unlock(&c->mu);
	if (*have || !c->present_partial)
		return 0;
	hex_encode(bid, 32, hex);
	ret = chunk_exists(c->to, hex);
	if (ret <= 0)
		return ret;
	*have = true;
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->present, bid, NULL);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/*
 * Fetch A's chunk and prove it is the one A's manifest names.  B gets it
 * whole: A's delta bases need not exist in B.
 */
static int fetch_chunk(struct repo *r, const struct manifest_chunk *mc, struct par_bufs *b)
{
	int ret = chunk_read(r, mc->id, mc->size, &b->obj, &b->plain);

	return ret ? pgk_error_wrap(ret, "repository %s", r->name) : 0;
}

/*
 * The entry names B's chunk from now on.  A's anchor means nothing under
 * B's keys: B's next backup finds its predecessors by offset alone.
 */
static void name_in_b(struct manifest_chunk *mc, const uint8_t bid[32])
{
	hex_encode(bid, 32, mc->id);
	mc->known = false;
	mc->anchor = 0;
}

/*
 * One chunk of a stream: on return mc names B's chunk and `stored` counts
 * the bytes this copy wrote for it.
 */
int copy_chunk(struct copy *c, void *arg, size_t i, struct par_bufs *b)
{
	struct manifest_chunk *mc = &((struct manifest_chunk *)arg)[i];
	uint8_t aid[32], bid[32];
	char bhex[65];
	struct idmap_slot *s;
	bool known, have;
	int ret;

	if (!hex_decode(mc->id, 32, aid))
		return pgk_error(PGKEEP_ECORRUPT, "repository %s: bad chunk id %s in a manifest",
				 c->from->name, mc->id);
	pthread_mutex_lock(&c->mu);
	s = idmap_find(&c->map, aid);
	known = s != NULL;
	if (known)
		memcpy(bid, s->val, 32);
	pthread_mutex_unlock(&c->mu);
	if (known) {
		ret = b_holds(c, bid, &have);
		if (ret)
			return ret;
		if (have) {
			pthread_mutex_lock(&c->mu);
			c->st.chunks_present++;
			pthread_mutex_unlock(&c->mu);
			goto out_named;
		}
	}

	ret = fetch_chunk(c->from, mc, b);
	if (ret)
		return ret;
	keys_chunk_id(&c->to->keys, b->plain.data, b->plain.len, bhex);
	hex_decode(bhex, 32, bid);
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->map, aid, bid);
	pthread_mutex_unlock(&c->mu);
	ret = b_holds(c, bid, &have);
	if (ret)
		return ret;

	mc->stored = 0;
	if (!have) {
		buf_reset(&b->sealed);
		ret = chunk_seal(c->to, bhex, b->plain.data, b->plain.len, &b->sealed);
		if (ret)
			return ret;
		ret = chunk_store(c->to, bhex, NULL, b->sealed.data, b->sealed.len);
		if (ret < 0)
			return ret;
		have = ret == 1;	/* another writer got there: same bytes */
		if (!have)
			mc->stored = (uint32_t)b->sealed.len;
	}
	pthread_mutex_lock(&c->mu);
	idmap_put(&c->present, bid, NULL);
	if (have) {
		c->st.chunks_present++;
	} else {
		c->st.chunks_sent++;
		c->st.bytes_sent += mc->stored;
	}
	pthread_mutex_unlock(&c->mu);
	/* Recorded only once B holds it, so a later backup may skip the fetch. */
	name_in_b(mc, bid);
	return 0;
out_named:
	name_in_b(mc, bid);
	mc->stored = 0;
	return 0;
}

/* The chunk ids B holds, from one listing. */
int copy_present_add(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct idmap *m = payload;
	uint8_t id[32];

	(void)st;
	if (layout_chunk_key_id(key, id))
		idmap_put(m, id, NULL);
	return 0;
}

/* Learn A id -> B id from one backup both repositories hold. */
int copy_learn_pair(struct copy *c, const char *id)
{
	struct manifest a = { 0 }, b = { 0 };
	size_t i, k;
	int ret;

	ret = manifest_load(c->from, id, &a);
	if (ret == 0)
		ret = manifest_load(c->to, id, &b);
	if (ret)
		goto out_free;
	if (a.nstreams != b.nstreams)
		goto out_free;
	for (i = 0; ret == 0 && i < a.nstreams; i++) {
		const struct manifest_stream *sa = &a.streams[i], *sb = &b.streams[i];
		const struct manifest_chunk *ca, *cb;
		struct manifest_cursor *xa = NULL, *xb = NULL;
		uint8_t ka[32], kb[32];
		int ra, rb;

		if (sa->nchunks != sb->nchunks || sa->sum_alg != sb->sum_alg || strcmp(sa->sum, sb->sum) != 0)
			continue;
		/* The two lists side by side, one entry of each in hand. */
		ret = manifest_stream_cursor_open(c->from, sa, &xa);
		if (ret == 0)
			ret = manifest_stream_cursor_open(c->to, sb, &xb);
		for (k = 0; ret == 0 && k < sa->nchunks; k++) {
			ra = manifest_cursor_next(xa, &ca);
			rb = ra == 1 ? manifest_cursor_next(xb, &cb) : ra;
			if (ra < 0 || rb < 0)
				ret = ra < 0 ? ra : rb;
			if (ra != 1 || rb != 1)
				break;
			if (ca->size == cb->size && hex_decode(ca->id, 32, ka) &&
			    hex_decode(cb->id, 32, kb))
				idmap_put(&c->map, ka, kb);
		}
		manifest_cursor_close(xa);
		manifest_cursor_close(xb);
	}
out_free:
	manifest_free(&a);
	manifest_free(&b);
	return ret;
}

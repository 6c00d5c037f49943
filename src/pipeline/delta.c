/*
 * Deltas in the writer: the same stream in the previous backup, followed
 * through a window as this one moves on, tells which of its chunks a new
 * chunk most likely replaces; the whole chunks behind those become the
 * bases it is sealed against, when that is smaller than sealing it whole.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pipeline/pipeline_int.h"

static int cmp_anchor(const void *a, const void *b)
{
	const struct anchor_ent *x = a, *y = b;

	if (x->anchor != y->anchor)
		return x->anchor < y->anchor ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * The reference is read into a window of at most this many chunks around
 * where this stream's chunks map to (about 32 GB of stream at the average
 * chunk size, 2 MiB with its index): anchors further away are not found,
 * which costs deltas, never correctness.
 */
size_t pipeline_ref_window = 32768;

static void ref_drop(struct stream_writer *w)
{
	manifest_cursor_close(w->ref_cur);
	w->ref_cur = NULL;
	w->have_ref = false;
	w->win_n = 0;
	w->n_anchor = 0;
}

static void ref_reindex(struct stream_writer *w)
{
	size_t i;

	w->n_anchor = 0;
	for (i = 0; i < w->win_n; i++)
		if (w->win[i].known)
			w->by_anchor[w->n_anchor++] =
				(struct anchor_ent){ w->win[i].anchor, w->win_base + i };
	qsort(w->by_anchor, w->n_anchor, sizeof(*w->by_anchor), cmp_anchor);
}

/* Read reference chunks until the window is full or the reference ends. */
static int ref_read(struct stream_writer *w)
{
	const struct manifest_chunk *mc;
	struct ref_ent *e;
	int ret;

	while (w->ref_cur && w->win_n < pipeline_ref_window) {
		ret = manifest_cursor_next(w->ref_cur, &mc);
		if (ret <= 0) {
			manifest_cursor_close(w->ref_cur);
			w->ref_cur = NULL;
			if (ret < 0)
				return ret;
			break;
		}
		e = &w->win[w->win_n++];
		if (!hex_decode(mc->id, 32, e->id))
			memset(e->id, 0, sizeof(e->id));
		e->off = w->ref_next_off;
		e->size = mc->size;
		e->known = mc->known;
		e->anchor = mc->anchor;
		w->ref_next_off += mc->size;
	}
	return 0;
}

/* The first chunk in the window that ends after off, as an index into it. */
static size_t win_at(const struct stream_writer *w, uint64_t off)
{
	size_t lo = 0, hi = w->win_n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (w->win[mid].off + w->win[mid].size <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Move the window so that off lies in its first three quarters (or the
 * reference has been read to the end), half a window at a time.  A
 * damaged reference only costs deltas; a store failure fails the backup.
 */
static int ref_follow(struct stream_writer *w, uint64_t off)
{
	size_t half = pipeline_ref_window / 2;
	bool moved = false;
	int ret = 0;

	while (w->ref_cur && (w->win_n < pipeline_ref_window ||
			      win_at(w, off) >= pipeline_ref_window / 4 * 3)) {
		if (w->win_n == pipeline_ref_window) {
			memmove(w->win, w->win + half, (w->win_n - half) * sizeof(*w->win));
			w->win_n -= half;
			w->win_base += half;
		}
		ret = ref_read(w);
		moved = true;
		if (ret)
			break;
	}
	if (ret == PGKEEP_ECORRUPT || ret == PGKEEP_EAUTH) {
		pgk_log_warning("stream %s: no more deltas: %s", pipeline_stream_name(w->dest),
				pgk_errmsg());
		pgk_error_clear();
		ref_drop(w);
		return 0;
	}
	if (ret)
		return ret;
	if (moved)
		ref_reindex(w);
	return 0;
}

int delta_ref_open(struct stream_writer *w, const struct manifest_stream *ref)
{
	if (!ref || !ref->nchunks || pipeline_ref_window < 4)
		return 0;
	w->have_ref = true;
	w->win = xmalloc(pipeline_ref_window * sizeof(*w->win));
	w->by_anchor = xmalloc(pipeline_ref_window * sizeof(*w->by_anchor));
	manifest_stream_cursor_open(w->r, ref, &w->ref_cur);
	return ref_follow(w, 0);
}

static uint64_t distance(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * The reference chunk that started with the same bytes, nearest to where
 * this stream's drift puts it (runs of zero pages share anchors), or -1.
 */
static long anchored(const struct stream_writer *w, uint64_t anchor, uint64_t expect)
{
	size_t lo = 0, hi = w->n_anchor, mid, i;
	long best = -1;
	uint64_t best_off = 0, off;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (w->by_anchor[mid].anchor < anchor)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < w->n_anchor && w->by_anchor[i].anchor == anchor; i++) {
		off = w->win[w->by_anchor[i].idx - w->win_base].off;
		if (best < 0 || distance(off, expect) < distance(best_off, expect)) {
			best = (long)w->by_anchor[i].idx;
			best_off = off;
		}
	}
	return best;
}

/*
 * The first reference chunk that ends after off, by its index in the whole
 * reference (the window's end when none in it does; its start for an
 * offset before it).
 */
static size_t ref_chunk_at(const struct stream_writer *w, uint64_t off)
{
	return w->win_base + win_at(w, off);
}

/*
 * In the writer's thread, in stream order, as a chunk is submitted: where
 * its bytes most likely were in the reference.  A chunk that starts as a
 * reference chunk did pins the two streams together there; any other maps
 * through the offset between them at the last such pin.  So a cut point
 * that moved, appeared or vanished (one chunk where there were two, or the
 * reverse) still finds the reference chunks that hold its bytes.
 */
/* Where the next chunk's first byte was in the reference, by the drift. */
static uint64_t mapped_pos(const struct stream_writer *w)
{
	return (int64_t)w->pos > w->drift ? (uint64_t)((int64_t)w->pos - w->drift) : 0;
}

int delta_mark_chunk(struct stream_writer *w, struct wslot *slot)
{
	uint64_t start;
	size_t i;
	long k;
	int ret;

	slot->anchor = keys_chunk_anchor(&w->r->keys, slot->data, slot->len);
	slot->pred = slot->pred_end = 0;
	slot->npred = 0;
	if (w->have_ref) {
		ret = ref_follow(w, mapped_pos(w));
		if (ret)
			return ret;
	}
	if (w->have_ref && w->win_n) {
		k = anchored(w, slot->anchor, mapped_pos(w));
		if (k >= 0)
			w->drift = (int64_t)w->pos - (int64_t)w->win[k - w->win_base].off;
		start = mapped_pos(w);
		ret = ref_follow(w, start + slot->len - 1);
		if (ret)
			return ret;
		slot->pred = ref_chunk_at(w, start);
		slot->pred_end = ref_chunk_at(w, start + slot->len - 1) + 1;
		if (slot->pred_end > w->win_base + w->win_n)
			slot->pred_end = w->win_base + w->win_n;
		for (i = slot->pred; i < slot->pred_end && slot->npred < PRED_MAX; i++)
			memcpy(slot->pred_id[slot->npred++], w->win[i - w->win_base].id, 32);
	}
	w->pos += slot->len;
	return 0;
}

static void swap_bufs(struct pgk_buf *a, struct pgk_buf *b)
{
	struct pgk_buf t = *a;

	*a = *b;
	*b = t;
}

int delta_seal(struct stream_writer *w, struct wslot *slot, struct wbufs *b)
{
	struct obj_bases *bs = &b->bases;
	struct repo *r = w->r;
	uint64_t stored = 0;
	size_t i;
	int ret = 0;

	bs->n = 0;
	buf_reset(&bs->plain);
	for (i = 0; ret == 0 && i < slot->npred && bs->n < OBJ_DELTA_MAX_BASES &&
			     bs->plain.len < CHUNK_BASES_BYTES_MAX; i++) {
		char id[65];

		hex_encode(slot->pred_id[i], 32, id);
		ret = chunk_add_bases(r, id, bs, &b->cand, &b->obj, &stored);
	}
	if (ret == PGKEEP_ECORRUPT || ret == PGKEEP_EAUTH) {
		/*
		 * A damaged or missing base: storing the chunk whole is always
		 * right, and the damage is verify's to report.  A store that
		 * fails fails the backup, as it would a moment later anyway.
		 */
		pgk_log_warning("chunk %s stored whole: %s", slot->id, pgk_errmsg());
		pgk_error_clear();
		ret = 1;
	}
	if (ret == 0 && bs->n == 0)
		ret = 1;
	if (ret == 0)
		ret = chunk_seal_delta(r, slot->id, bs, slot->data, slot->len, &b->sealed);
	secure_zero(bs->plain.data, bs->plain.len);
	if (ret)
		return ret;
	slot->nbases = bs->n;
	/*
	 * A delta worth less than half of what its bases cost whole, scaled to
	 * this chunk (its bytes have drifted away): whole may be smaller, and
	 * storing it whole makes it the next backup's base.
	 */
	if (b->sealed.len > stored * slot->len / (2 * (uint64_t)bs->plain.len + 1)) {
		buf_reset(&b->alt);
		ret = chunk_seal(r, slot->id, slot->data, slot->len, &b->alt);
		if (ret)
			return ret;
		if (b->alt.len <= b->sealed.len) {
			swap_bufs(&b->sealed, &b->alt);
			slot->nbases = 0;
		}
	}
	return 0;
}

/*
 * What only a delta needs goes back to the system between chunks (large
 * buffers are mmapped, see pipeline_memory_mode): four workers each keeping megabytes of
 * bases they no longer need would cost more than the chunks in flight.
 */
void delta_release_bufs(struct wbufs *b)
{
	secure_free(b->bases.plain.data, b->bases.plain.cap);
	b->bases.plain = (struct pgk_buf)PGK_BUF_INIT;
	buf_free(&b->cand);
	buf_free(&b->obj);
	buf_free(&b->alt);
}

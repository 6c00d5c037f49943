/*
 * WAL continuity over one listing of wal/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/walcheck.h"

struct wal_seg {
	uint32_t tli;
	uint64_t segno;
};

static int cmp_seg(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;

	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	return x->tli < y->tli ? -1 : (x->tli > y->tli);
}

struct loader {
	struct wal_archive *a;
	size_t cap;
};

static int add_seg(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct loader *l = payload;
	struct wal_name wn;
	uint64_t segno;

	(void)st;
	if (walname_parse(layout_wal_file(key), &wn) < 0 || wn.type != WAL_SEGMENT ||
	    wal_name_to_segno(&wn, l->a->seg_size, &segno) < 0)
		return 0;
	if (l->a->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->a->segs = xrealloc(l->a->segs, l->cap * sizeof(*l->a->segs));
	}
	l->a->segs[l->a->n].tli = wn.tli;
	l->a->segs[l->a->n++].segno = segno;
	if (segno > l->a->newest)
		l->a->newest = segno;
	return 0;
}

int wal_archive_load(struct repo *r, uint32_t seg_size, struct wal_archive *out)
{
	struct loader l = { out, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	out->seg_size = seg_size ? seg_size : WAL_SEG_SIZE_DEFAULT;
	rc = store_list(r->store, LAYOUT_WAL_PREFIX, add_seg, &l);
	if (rc < 0) {
		wal_archive_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->segs, out->n, sizeof(*out->segs), cmp_seg);
	return 0;
}

void wal_archive_free(struct wal_archive *a)
{
	free(a->segs);
	a->segs = NULL;
	a->n = 0;
}

/* Is segno there on timeline tli (exact), or on tli or a later one? */
static bool present(const struct wal_archive *a, uint64_t segno, uint32_t tli, bool exact)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->segs[mid].segno < segno)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < a->n && a->segs[lo].segno == segno; lo++)
		if (exact ? a->segs[lo].tli == tli : a->segs[lo].tli >= tli)
			return true;
	return false;
}

static size_t check_range(const struct wal_archive *a, uint32_t tli, uint64_t from, uint64_t to,
			  bool exact, const char *what, walcheck_report_fn report, void *payload)
{
	size_t gaps = 0;
	uint64_t s = from;

	while (s <= to) {
		char x[WAL_SEG_NAME_LEN + 1], y[WAL_SEG_NAME_LEN + 1], msg[256];
		uint64_t e;

		if (present(a, s, tli, exact)) {
			s++;
			continue;
		}
		for (e = s; e + 1 <= to && !present(a, e + 1, tli, exact); e++)
			;
		wal_segno_to_name(x, tli, s, a->seg_size);
		wal_segno_to_name(y, tli, e, a->seg_size);
		if (s == e)
			snprintf(msg, sizeof(msg), "%s: WAL segment %s is missing", what, x);
		else
			snprintf(msg, sizeof(msg), "%s: WAL segments %s..%s are missing", what, x, y);
		report(payload, msg);
		gaps++;
		s = e + 1;
	}
	return gaps;
}

size_t wal_archive_check(const struct wal_archive *a, const struct manifest *m,
			 bool through_newest, walcheck_report_fn report, void *payload)
{
	struct wal_name ws, we;
	uint64_t s, e;
	char what[128], msg[256];
	size_t gaps;

	snprintf(what, sizeof(what), "backup %s", m->id);
	if (walname_parse(m->wal_start, &ws) < 0 || walname_parse(m->wal_stop, &we) < 0 ||
	    wal_name_to_segno(&ws, a->seg_size, &s) < 0 || wal_name_to_segno(&we, a->seg_size, &e) < 0 ||
	    e < s) {
		snprintf(msg, sizeof(msg), "%s: bad WAL range '%s'..'%s' in its manifest", what,
			 m->wal_start, m->wal_stop);
		report(payload, msg);
		return 1;
	}
	gaps = check_range(a, ws.tli, s, e, true, what, report, payload);
	if (through_newest && e < a->newest) {
		snprintf(what, sizeof(what), "WAL after backup %s", m->id);
		gaps += check_range(a, ws.tli, e + 1, a->newest, false, what, report, payload);
	}
	return gaps;
}

/*
 * copy's WAL: what B needs to restore its base backups to any later point,
 * each file sealed again for B as A stored it.
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
#include "repo/layout.h"
#include "repo/lists.h"
#include "repo/manifest.h"

struct wal_job {
	char **keys;		/* wal/ keys to copy */
	size_t n;
};

/*
 * A WAL file is named by its segment, not by a key: it is sealed again for
 * B where it lies, still compressed as A stored it, so a copy holds one
 * stored segment per job and no 16 MiB of plaintext.
 */
static int copy_wal_file(struct copy *c, void *arg, size_t i, struct par_bufs *b)
{
	const char *key = ((struct wal_job *)arg)->keys[i];
	uint64_t plainlen;
	int ret;

	buf_reset(&b->obj);
	ret = obj_fetch(c->from->store, key, OBJ_WAL, &b->obj);
	if (ret == 0)
		ret = obj_reseal(&c->from->keys, &c->to->keys, OBJ_WAL, key, &b->obj);
	if (ret)
		return pgk_error_wrap(ret, "repository %s", c->from->name);
	plainlen = obj_plain_len(b->obj.data, b->obj.len);
	ret = store_put(c->to->store, key, b->obj.data, b->obj.len, PGKEEP_PUT_IF_ABSENT);
	if (ret && ret != PGKEEP_EEXISTS)
		return ret;
	pthread_mutex_lock(&c->mu);
	if (ret == PGKEEP_EEXISTS) {
		c->st.wal_present++;
	} else {
		c->st.wal_sent++;
		c->st.wal_bytes += plainlen;
	}
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* The segment number of a segment-based WAL key; false for history files. */
static bool key_segno(const char *key, uint32_t seg_size, uint64_t *segno)
{
	struct wal_name wn;

	if (walname_parse(layout_wal_file(key), &wn) < 0 || wn.type == WAL_HISTORY)
		return false;
	return wal_name_to_segno(&wn, seg_size, segno) == 0;
}

/* Every segment of m's own range is in B (after the WAL was copied). */
int copy_check_backup_wal(struct copy *c, const struct manifest *m)
{
	char name[WAL_SEG_NAME_LEN + 1], key[LAYOUT_WAL_KEY_MAX];
	uint32_t seg_size = m->wal_seg_size ? m->wal_seg_size : WAL_SEG_SIZE_DEFAULT;
	int guard;

	snprintf(name, sizeof(name), "%s", m->wal_start);
	for (guard = 0; guard < 1 << 20; guard++) {
		if (layout_wal_key(name, key, sizeof(key)) < 0)
			break;
		if (!keylist_has(&c->wal_to, key))
			return pgk_error(PGKEEP_ENOTFOUND,
					 "backup %s needs WAL segment %s, which neither %s nor %s holds",
					 m->id, name, c->from->name, c->to->name);
		if (strcmp(name, m->wal_stop) == 0)
			return 0;
		if (wal_next_segment(name, seg_size, name) < 0)
			break;
	}
	return pgk_error(PGKEEP_ECORRUPT, "backup %s: bad WAL range %s to %s", m->id, m->wal_start,
			 m->wal_stop);
}

/*
 * The WAL B needs for its base backups: every file of A from the oldest
 * base backup B will hold on, and every history file, that B lacks.
 */
int copy_wal(struct copy *c, const struct manifest *bases, size_t nbases)
{
	struct keylist from = { 0 };
	struct wal_job job = { 0 };
	uint32_t seg_size = WAL_SEG_SIZE_DEFAULT;
	uint64_t cut = UINT64_MAX, segno;
	size_t i;
	int ret;

	for (i = 0; i < nbases; i++) {
		if (bases[i].wal_seg_size)
			seg_size = bases[i].wal_seg_size;
	}
	for (i = 0; i < nbases; i++) {
		char key[LAYOUT_WAL_KEY_MAX];

		if (layout_wal_key(bases[i].wal_start, key, sizeof(key)) == 0 &&
		    key_segno(key, seg_size, &segno) && segno < cut)
			cut = segno;
	}
	ret = store_list(c->from->store, LAYOUT_WAL_PREFIX, keylist_add, &from);
	if (ret)
		goto out_free;
	keylist_sort(&from);
	for (i = 0; i < from.n; i++) {
		const char *key = from.keys[i];
		bool wanted = !key_segno(key, seg_size, &segno) || segno >= cut;

		if (wanted && !keylist_has(&c->wal_to, key)) {
			job.keys = xrealloc(job.keys, (job.n + 1) * sizeof(*job.keys));
			job.keys[job.n++] = from.keys[i];
		}
	}
	ret = copy_par_run(c, job.n, copy_wal_file, &job);
	if (ret)
		goto out_free;
	/* B holds them now: later checks look at B's listing alone. */
	for (i = 0; i < job.n; i++) {
		struct pgkeep_stat st = { 0 };

		keylist_add(&c->wal_to, job.keys[i], &st);
	}
	keylist_sort(&c->wal_to);
	c->wal_done = true;
out_free:
	free(job.keys);
	keylist_free(&from);
	return ret;
}

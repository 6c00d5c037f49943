/*
 * Backup ids: the first free YYYYMMDDTHHMMSSZ-TYPE[-N] for a new manifest,
 * and the save that moves on to the next one when another writer won.
 */
#include <stdio.h>
#include <time.h>

#include "cmd/backup_id.h"
#include "common/error.h"
#include "repo/layout.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/store.h"

int backup_id_choose(struct repo *r, struct manifest *m, int attempt)
{
	char stamp[32], key[128];
	struct pgkeep_stat st;
	struct tm tm;
	time_t t = (time_t)m->start_time;
	int rc, i;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (i = attempt; i < 100; i++) {
		if (i == 0)
			snprintf(m->id, sizeof(m->id), "%s-%s", stamp, backup_type_name(m->type));
		else
			snprintf(m->id, sizeof(m->id), "%s-%s-%d", stamp,
				 backup_type_name(m->type), i + 1);
		layout_manifest_key(m->id, key, sizeof(key));
		rc = store_stat(r->store, key, &st);
		if (rc == PGKEEP_ENOTFOUND)
			return i;
		if (rc < 0)
			return rc;
	}
	return pgk_error(PGKEEP_EEXISTS, "no free backup id for %s", stamp);
}

int backup_id_save_manifest(struct repo *r, struct manifest *m, int attempt)
{
	int rc;

	for (;;) {
		rc = manifest_save(r, m);
		if (rc != PGKEEP_EEXISTS)
			return rc;
		attempt = backup_id_choose(r, m, attempt + 1);
		if (attempt < 0)
			return attempt;
	}
}

/*
 * The WAL side of a base backup that the primary's archiver does not cover
 * by itself (see backup_standby.h): a timeline's history file taken from the
 * server, and the wait of a standby's backup for the primary's archive.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_standby.h"
#include "common/error.h"
#include "common/log.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/walmeta.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/repo.h"
#include "repo/store.h"

int backup_history_store(struct repo *r, const char *name, const char *text, size_t len)
{
	char key[LAYOUT_WAL_KEY_MAX];
	struct pgkeep_stat st;
	struct wal_name wn;
	int rc;

	rc = walname_parse(name, &wn);
	if (rc == 0 && wn.type != WAL_HISTORY)
		rc = pgk_error(PGKEEP_EINVAL, "%s is not a timeline history file name", name);
	if (rc == 0)
		rc = walmeta_check_history(text, len, &wn, name);
	if (rc == 0)
		rc = layout_wal_key(name, key, sizeof(key));
	if (rc < 0)
		return pgk_error_wrap(rc, "the server's timeline history");
	rc = store_stat(r->store, key, &st);
	if (rc != PGKEEP_ENOTFOUND)
		return rc;
	rc = repo_put(r, key, OBJ_WAL, text, len, PGKEEP_PUT_IF_ABSENT);
	/* The archiver may have pushed it meanwhile: the same file. */
	if (rc == PGKEEP_EEXISTS) {
		pgk_error_clear();
		return 0;
	}
	if (rc < 0)
		return pgk_error_wrap(rc, "storing %s in repository %s", name, r->name);
	pgk_log_info("stored %s, taken from the server, in repository %s: the archive did not "
		     "have it yet", name, r->name);
	return 0;
}

int backup_standby_stop(const struct backup_label *bl, uint64_t end_lsn, uint32_t end_tli,
			    struct backup_label *hist)
{
	if (!bl->from_standby)
		return pgk_error(PGKEEP_EINVAL, "the server was a standby when the backup began, "
				 "but its backup_label does not say BACKUP FROM: standby");
	if (!end_lsn || !end_tli)
		return pgk_error(PGKEEP_EINVAL, "a backup from a standby needs the end position "
				 "BASE_BACKUP gives, and this one has none");
	memset(hist, 0, sizeof(*hist));
	*hist = *bl;
	hist->has_stop = true;
	hist->stop_lsn = end_lsn;
	hist->stop_tli = end_tli;
	hist->stop_time = 0;
	return 0;
}

/*
 * Pauses between looks: short at first (the segment is often there or a
 * moment away), then a second, so that a primary archiving every few
 * minutes costs a remote store one request a second.
 */
#define POLL_FIRST_MS 20
#define POLL_MAX_MS 1000

static int wait_one(const struct standby_wait *w, const char *name, time_t deadline)
{
	char key[LAYOUT_WAL_KEY_MAX], note[128];
	struct pgkeep_stat st;
	int rc, ms = POLL_FIRST_MS;
	bool told = false;

	rc = layout_wal_key(name, key, sizeof(key));
	while (rc == 0) {
		rc = store_stat(w->repo->store, key, &st);
		if (rc != PGKEEP_ENOTFOUND)
			break;
		if (!told) {
			told = true;
			pgk_log_info("waiting for WAL segment %s from the primary's archive "
				     "(repository %s, standby_wal_timeout %d s)", name, w->repo->name,
				     w->timeout);
			snprintf(note, sizeof(note), "waiting for WAL segment %s from the primary's "
				 "archive", name);
			progress_note(w->progress, note);
		}
		if (time(NULL) >= deadline)
			return pgk_error(PGKEEP_EIO, "WAL segment %s needed by backup %s (taken from "
					 "a standby) did not reach repository %s within %d s "
					 "(standby_wal_timeout): the primary must archive it "
					 "there with pgkeep wal-push", name, w->backup_id,
					 w->repo->name, w->timeout);
		rc = w->interrupted ? w->interrupted() : 0;
		if (rc < 0)
			return rc;
		usleep((useconds_t)ms * 1000);
		ms = ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : ms * 2;
	}
	return rc;
}

int backup_standby_wait(const struct standby_wait *w, uint64_t first, uint64_t last,
			    uint32_t tli)
{
	char name[WAL_SEG_NAME_LEN + 1];
	time_t deadline = time(NULL) + w->timeout;
	uint64_t segno;
	int rc;

	/* In order: the archiver pushes them so, and the message names the
	 * segment that is actually late. */
	for (segno = first; segno <= last; segno++) {
		wal_segno_to_name(name, tli, segno, w->wal_seg_size);
		rc = wait_one(w, name, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

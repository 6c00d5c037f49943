/*
 * A base backup's WAL: its backup_label read from the tar's head, the
 * cluster checked against the repository, and the wait until every
 * segment from the backup's start to its stop is archived, which is what
 * makes the backup restorable; and the stop time made as tight as is safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup.h"
#include "cmd/backup_util.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/basebackup.h"
#include "pg/libarchive_api.h"
#include "pg/pgconn.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/layout.h"
#include "repo/manifest.h"

#define DEFAULT_ARCHIVE_TIMEOUT 300

/* The backup_label at the start of the base backup's tar. */
int backup_label_from_head(const struct pgk_buf *head, struct backup_label *bl)
{
	struct archive *a;
	struct archive_entry *e;
	char text[HEAD_BUF];
	la_ssize_t n;
	int rc;

	rc = libarchive_read_new(&a);
	if (rc < 0)
		return rc;
	rc = PGKEEP_ECORRUPT;
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, head->data, head->len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		pgk_error(rc, "the base backup does not start with a tar header: %s",
			  archive_error_string(a) ? archive_error_string(a) : "empty");
		goto out;
	}
	if (strcmp(archive_entry_pathname(e), "backup_label") != 0) {
		pgk_error(rc, "the base backup's tar starts with %s, not backup_label",
			  archive_entry_pathname(e));
		goto out;
	}
	n = archive_read_data(a, text, sizeof(text));
	if (n <= 0 || n != archive_entry_size(e)) {
		pgk_error(rc, "cannot read backup_label from the base backup's tar");
		goto out;
	}
	rc = backup_label_parse(bl, text, (size_t)n, false, "backup_label");
out:
	archive_read_free(a);
	return rc;
}

static int archive_timeout(const struct backup_run *b)
{
	return b->cfg.archive_timeout >= 0 ? b->cfg.archive_timeout : DEFAULT_ARCHIVE_TIMEOUT;
}

static int wal_missing_error(const struct backup_run *b, const char *name)
{
	return pgk_error(PGKEEP_EIO,
			 "WAL file %s needed by backup %s did not reach repository %s within "
			 "%d s: is archive_command set to pgkeep wal-push?",
			 name, b->m.id, b->repo->name, archive_timeout(b));
}

/*
 * Pauses between looks for WAL in the repository: short at first (with -X
 * none the server has usually waited for the archiver already, and
 * otherwise the archiver is a moment behind), longer while it stays away,
 * so that a slow archiver costs a remote store a handful of requests a
 * second, not dozens.
 */
#define POLL_FIRST_MS 10
#define POLL_MAX_MS 500

static int poll_pause(struct backup_run *b, const char *name, time_t deadline, int *ms)
{
	if (time(NULL) >= deadline)
		return wal_missing_error(b, name);
	if (backup_check_interrupted() < 0)
		return PGKEEP_EIO;
	usleep((useconds_t)*ms * 1000);
	*ms = *ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : *ms * 2;
	return 0;
}

/* The backup history file, once the archiver has pushed it. */
int backup_wait_history(struct backup_run *b, const struct backup_label *start,
			struct backup_label *hist)
{
	char name[64], key[LAYOUT_WAL_KEY_MAX];
	struct pgk_buf data = PGK_BUF_INIT;
	time_t deadline = time(NULL) + archive_timeout(b);
	int rc, ms = POLL_FIRST_MS;

	backup_history_name(name, sizeof(name), start->start_tli, start->start_lsn,
			    b->m.wal_seg_size);
	rc = layout_wal_key(name, key, sizeof(key));
	if (rc < 0)
		return rc;
	pgk_log_info("waiting for %s", key);
	for (;;) {
		rc = repo_get(b->repo, key, OBJ_WAL, &data);
		if (rc != PGKEEP_ENOTFOUND)
			break;
		rc = poll_pause(b, name, deadline, &ms);
		if (rc < 0)
			return rc;
	}
	if (rc == 0)
		rc = backup_label_parse(hist, (const char *)data.data, data.len, true, key);
	buf_free(&data);
	if (rc == 0 && hist->start_lsn != start->start_lsn)
		rc = pgk_error(PGKEEP_ECORRUPT, "%s is for a backup starting at another LSN", key);
	return rc;
}

/*
 * Every segment from wal_start through wal_stop, in the repository.  The
 * newest first: wal-push stores segments ahead in parallel, but the
 * archiver hands them over in order, so once the last is there the others
 * nearly always are, and each is then looked at once.
 */
int backup_wait_segments(struct backup_run *b, uint64_t first, uint64_t last, uint32_t tli)
{
	char name[WAL_SEG_NAME_LEN + 1], key[LAYOUT_WAL_KEY_MAX];
	time_t deadline = time(NULL) + archive_timeout(b);
	struct pgkeep_stat st;
	uint64_t segno, i;
	int rc, ms;

	for (i = 0; i <= last - first; i++) {
		segno = i == 0 ? last : first + i - 1;
		wal_segno_to_name(name, tli, segno, b->m.wal_seg_size);
		layout_wal_key(name, key, sizeof(key));
		ms = POLL_FIRST_MS;
		for (;;) {
			rc = store_stat(b->repo->store, key, &st);
			if (rc != PGKEEP_ENOTFOUND)
				break;
			rc = poll_pause(b, name, deadline, &ms);
			if (rc < 0)
				return rc;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int backup_check_cluster(struct backup_run *b)
{
	if (!basebackup_server_supported(b->info.version))
		return pgk_error(PGKEEP_EINVAL,
				 "PostgreSQL %d (server_version_num %d) is not supported for base "
				 "backups: pgkeep takes base backups of PostgreSQL "
				 BASEBACKUP_VERSIONS_TEXT, b->info.version / 10000, b->info.version);
	if (!wal_seg_size_valid(b->info.wal_seg_size))
		return pgk_error(PGKEEP_EINVAL, "the server reports a WAL segment size of %u",
				 b->info.wal_seg_size);
	/* A standby's own archiving settings do not matter: the primary's archive does. */
	if (b->info.in_recovery)
		return 0;
	if (strcmp(b->info.archive_mode, "off") == 0)
		return pgk_error(PGKEEP_EINVAL,
				 "archive_mode is off: a base backup needs its WAL archived "
				 "(archive_mode = on, archive_command = 'pgkeep wal-push %%p')");
	if (!*b->info.archive_command && !*b->info.archive_library)
		return pgk_error(PGKEEP_EINVAL,
				 "archive_command is empty: a base backup needs its WAL archived "
				 "(archive_command = 'pgkeep wal-push %%p')");
	if (!strstr(b->info.archive_command, "pgkeep") && !*b->info.archive_library)
		pgk_log_warning("archive_command '%s' does not look like pgkeep wal-push; the "
				"backup waits for its WAL in repository %s",
				b->info.archive_command, b->repo->name);
	return 0;
}

int backup_fill_wal_range(struct backup_run *b, const struct backup_label *bl,
			  const struct backup_label *hist, uint64_t *first, uint64_t *last)
{
	if (hist->stop_tli != bl->start_tli)
		return pgk_error(PGKEEP_EINVAL,
				 "backup %s started on timeline %u and stopped on %u; take it again",
				 b->m.id, bl->start_tli, hist->stop_tli);
	if (hist->stop_lsn <= bl->start_lsn)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s stops before it starts", b->m.id);
	b->m.timeline = bl->start_tli;
	b->m.start_lsn = bl->start_lsn;
	b->m.stop_lsn = hist->stop_lsn;
	*first = wal_lsn_to_segno(bl->start_lsn, b->m.wal_seg_size);
	/* The stop LSN may sit on a segment boundary: the last byte is before it. */
	*last = wal_lsn_to_segno(hist->stop_lsn - 1, b->m.wal_seg_size);
	wal_segno_to_name(b->m.wal_start, bl->start_tli, *first, b->m.wal_seg_size);
	wal_segno_to_name(b->m.wal_stop, bl->start_tli, *last, b->m.wal_seg_size);
	if (strcmp(b->m.wal_start, bl->start_wal) != 0)
		return pgk_error(PGKEEP_ECORRUPT, "backup_label names segment %s for LSN %s",
				 bl->start_wal, b->m.wal_start);
	return 0;
}

/*
 * The stop by the server's clock, read once the server has sent the whole backup: every
 * commit before the backup's end bears an earlier timestamp of that same
 * clock, so any recovery target from this instant on is past the point
 * where the restored cluster becomes consistent.
 */
void backup_record_stop(struct backup_run *b, struct pgconn *pc)
{
	int64_t us = backup_now_us();

	if (pgconn_clock_us(pc, &us) < 0)
		pgk_log_warning("backup %s: cannot read the server's clock (%s): its stop time is "
				"this host's", b->m.id, pgk_errmsg());
	if (us < manifest_start_us(&b->m))
		us = manifest_start_us(&b->m);
	manifest_set_stop(&b->m, us);
}

/*
 * Some time may pass between the backup's end on the server and the end of
 * the stream here.  The history file's STOP TIME, whole seconds of
 * the same clock taken just after the end, bounds it too: every commit
 * before the end is earlier than that second's close.
 */
void backup_tighten_stop(struct backup_run *b, const struct backup_label *hist)
{
	int64_t bound;

	if (hist->stop_time <= 0 || hist->stop_time >= INT64_MAX / 1000000 - 1)
		return;
	bound = (hist->stop_time + 1) * 1000000;
	if (bound < b->m.stop_us && bound >= manifest_start_us(&b->m))
		manifest_set_stop(&b->m, bound);
}

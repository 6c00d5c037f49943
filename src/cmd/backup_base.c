/*
 * A base backup taken from the server over a replication connection (the
 * copy stream of base.tar, each tablespace's tar and backup_manifest, each
 * into a stream of its own) or from a program that writes one tar.
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
#include "cmd/backup_standby.h"
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
#include "repo/manifest.h"

/* The server's stream of one base backup: base.tar, then backup_manifest. */
struct base_sink {
	struct backup_run *b;
	const struct basebackup_tablespace *spc;	/* the server's list */
	size_t nspc;
	struct stream_writer *w;	/* the stream being written */
	struct pgk_buf *head;
	int archives;
	bool main_done;			/* base.tar began: no archive may follow */
	bool in_manifest;
	bool streaming;			/* the checkpoint is over */
};

static int sink_open(struct base_sink *k, const char *name, uint32_t oid, const char *location)
{
	struct backup_run *b = k->b;
	struct manifest_stream *s = manifest_add_stream(&b->m, name);

	if (oid)
		manifest_stream_set_tablespace(s, oid, location);
	return stream_writer_open(&k->w, b->repo, s,
				  backup_ref_stream(b->have_ref ? &b->ref : NULL, name), b->jobs);
}

/* Finished and freed before another stream is added: adding moves them. */
static int sink_close(struct base_sink *k)
{
	int rc = k->w ? stream_writer_finish(k->w) : 0;

	stream_writer_free(k->w);
	k->w = NULL;
	return rc;
}

static bool find_stream_name(const struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nstreams; i++)
		if (strcmp(m->streams[i].name, name) == 0)
			return true;
	return false;
}

/* The listed tablespace at location, whose OID names the stream. */
static const struct basebackup_tablespace *sink_tablespace(const struct base_sink *k,
							   const char *location)
{
	size_t i;

	for (i = 0; i < k->nspc; i++)
		if (k->spc[i].oid && strcmp(k->spc[i].location, location) == 0)
			return &k->spc[i];
	return NULL;
}

/*
 * One archive per tablespace, the main directory's (base.tar, no location)
 * last; each becomes a stream of its own, tblspc/OID.tar for a tablespace,
 * with the OID and the location restore puts it back at.
 */
static int sink_archive(void *payload, const char *name, const char *location)
{
	struct base_sink *k = payload;
	const struct basebackup_tablespace *t;
	char sname[64];
	int rc;

	if (k->main_done || k->in_manifest)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent archive %s after "
				 "base.tar", name);
	rc = sink_close(k);
	if (rc < 0)
		return rc;
	k->archives++;
	if (!*location) {
		if (strcmp(name, "base.tar") != 0)
			return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent an unexpected "
					 "archive %s for the data directory", name);
		k->main_done = true;
		return sink_open(k, "base.tar", 0, NULL);
	}
	t = sink_tablespace(k, location);
	if (!t)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent archive %s for '%s', "
				 "which is not in its tablespace list", name, location);
	if (!manifest_tablespace_location_ok(location))
		return pgk_error(PGKEEP_EINVAL, "tablespace %u is at '%s': restore needs an "
				 "absolute path without '.' or '..' components", t->oid, location);
	snprintf(sname, sizeof(sname), "tblspc/%u.tar", t->oid);
	if (find_stream_name(&k->b->m, sname))
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent tablespace %u twice",
				 t->oid);
	return sink_open(k, sname, t->oid, location);
}

static int sink_data(void *payload, const void *buf, size_t len)
{
	struct base_sink *k = payload;
	struct pgk_buf *head = k->head;

	if (!k->w)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent data before an archive");
	/* backup_label opens base.tar, not the tablespaces' tars before it. */
	if (k->main_done && !k->in_manifest && head->len < HEAD_BUF)
		buf_append(head, buf, len < HEAD_BUF - head->len ? len : HEAD_BUF - head->len);
	progress_add(k->b->progress, len);
	return stream_writer_write(k->w, buf, len);
}

/* The server's backup_manifest: its own stream, restored beside the data. */
static int sink_manifest(void *payload)
{
	struct base_sink *k = payload;
	int rc;

	if (k->in_manifest || !k->main_done)
		return pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent a manifest out of turn");
	k->in_manifest = true;
	rc = sink_close(k);
	return rc < 0 ? rc : sink_open(k, "backup_manifest", 0, NULL);
}

static int sink_idle(void *payload)
{
	struct base_sink *k = payload;

	if (!k->streaming)
		progress_note(k->b->progress, "waiting for the server's checkpoint");
	return backup_check_interrupted();
}

/*
 * A backup on a timeline after the first is restored through its history
 * file, which the archiver of a server promoted a moment ago may not have
 * pushed yet: the server's own copy is stored then.
 */
static int store_timeline_history(struct backup_run *b, struct basebackup *bb, uint32_t tli)
{
	char *name = NULL, *text = NULL;
	size_t len = 0;
	int rc;

	rc = basebackup_timeline_history(bb, tli, &name, &text, &len);
	if (rc == 0)
		rc = backup_history_store(b->repo, name, text, len);
	free(name);
	free(text);
	return rc;
}

/*
 * The base backup over a replication connection.  The start and end
 * positions the server gives are checked against backup_label and the
 * backup history file, which remain what the WAL range is read from.
 */
static int base_from_server(struct backup_run *b, const char *label, const char *checksums,
			    const char *appname, struct pgk_buf *head, uint64_t *end_lsn,
			    uint32_t *end_tli)
{
	struct base_sink k = { .b = b, .head = head };
	struct basebackup_sink sink = {
		.archive = sink_archive, .data = sink_data, .manifest = sink_manifest,
		.idle = sink_idle, .idle_ms = 250, .payload = &k,
	};
	struct basebackup_opts bo = { .label = label, .fast = true,
				      .manifest_checksums = checksums };
	const struct basebackup_tablespace *spc;
	struct basebackup *bb = NULL;
	uint64_t sysid, lsn, total = 0;
	uint32_t tli;
	size_t nspc, i;
	int rc;

	rc = basebackup_connect(&bb, b->cfg.conninfo, appname);
	if (rc < 0)
		return rc;
	rc = basebackup_identify(bb, &sysid, &tli);
	if (rc == 0 && sysid != b->info.sysid)
		rc = pgk_error(PGKEEP_EINVAL, "the replication connection reaches system %" PRIu64
			       ", the other connection %" PRIu64, sysid, b->info.sysid);
	if (rc < 0)
		goto out;
	pgk_log_info("taking base backup %s over a replication connection (timeline %u)",
		     b->m.id, tli);
	rc = basebackup_start(bb, &bo, &sink, &lsn, &tli, &spc, &nspc);
	if (rc < 0)
		goto out;
	k.streaming = true;
	k.spc = spc;
	k.nspc = nspc;
	for (i = 0; i < nspc; i++)
		total += spc[i].size;
	progress_start(b->progress, total);
	rc = basebackup_stream(bb, &sink, end_lsn, end_tli);
	if (rc == 0 && !k.in_manifest)
		rc = pgk_error(PGKEEP_EIO, "PostgreSQL: BASE_BACKUP sent no backup manifest");
	if (rc == 0)
		rc = sink_close(&k);
	if (rc == 0 && *end_tli > 1)
		rc = store_timeline_history(b, bb, *end_tli);
out:
	stream_writer_free(k.w);
	basebackup_close(bb);
	return rc;
}

/* The standby variant of wait_history and wait_segments: no history file,
 * and the segments come from the primary's archiver, whenever it pushes them. */
static int wait_standby_wal(struct backup_run *b, const struct backup_label *bl,
			    uint64_t end_lsn, uint32_t end_tli, struct backup_label *hist,
			    uint64_t *first, uint64_t *last)
{
	struct standby_wait w = {
		.repo = b->repo, .backup_id = b->m.id, .wal_seg_size = b->m.wal_seg_size,
		.timeout = b->cfg.standby_wal_timeout >= 0 ? b->cfg.standby_wal_timeout
							   : STANDBY_WAL_TIMEOUT_DEFAULT,
		.interrupted = backup_check_interrupted, .progress = b->progress,
	};
	int rc;

	rc = backup_standby_stop(bl, end_lsn, end_tli, hist);
	if (rc == 0)
		rc = backup_fill_wal_range(b, bl, hist, first, last);
	if (rc == 0)
		rc = backup_standby_wait(&w, *first, *last, bl->start_tli);
	b->m.from_standby = rc == 0;
	return rc;
}

/*
 * For tests only: PGKEEP_TEST_BASEBACKUP_PROGRAM names a program run with
 * pg_basebackup's arguments whose stdout (a tar with backup_label first)
 * replaces the server's stream, so that restore can be fed crafted tars.
 */
static int base_from_program(struct backup_run *b, const char *prog, const char *label,
			     const char *appname, struct pgk_buf *head)
{
	char *argv[] = { (char *)prog, "-D", "-", "-F", "t", "-X", "none", "-c", "fast", "-w",
			 "-l", (char *)label, NULL };
	char **envp = NULL;
	int rc;

	rc = pgconn_child_env(b->cfg.conninfo, NULL, appname, &envp);
	if (rc < 0)
		return rc;
	pgk_log_warning("backup %s: the archive comes from test program %s", b->m.id, prog);
	rc = backup_stream_child(b, argv, envp, "base.tar", head);
	pgconn_env_free(envp);
	return rc;
}

int backup_base(struct backup_run *b, struct pgconn *pc, const struct backup_opts *o)
{
	struct pgk_buf head = PGK_BUF_INIT;
	struct backup_label bl, hist;
	uint64_t first = 0, last = 0, end_lsn = 0;
	uint32_t end_tli = 0;
	char *label, appname[MANIFEST_ID_MAX + 16];
	int rc;

	/* The tar's first header is read only once the stream is done: a
	 * libarchive that cannot be loaded must stop us before it starts. */
	rc = libarchive_load();
	if (rc == 0)
		rc = backup_check_cluster(b);
	if (rc < 0)
		return rc;
	rc = backup_reference(b->repo, &b->m, &b->ref);
	if (rc < 0)
		return rc;
	b->have_ref = rc > 0;
	/* Named, so that the backup's walsender can be told apart on the server. */
	snprintf(appname, sizeof(appname), "pgkeep %s", b->m.id);
	b->m.wal_seg_size = b->info.wal_seg_size;
	label = xasprintf("pgkeep %s", o->label ? o->label : b->m.id);
	if (o->test_program && *o->test_program)
		rc = base_from_program(b, o->test_program, label, appname, &head);
	else
		rc = base_from_server(b, label, o->checksums ? o->checksums : b->cfg.checksums,
				      appname, &head, &end_lsn, &end_tli);
	if (rc < 0)
		goto out;
	backup_record_stop(b, pc);
	rc = backup_label_from_head(&head, &bl);
	if (rc < 0)
		goto out;
	if (b->info.in_recovery) {
		rc = wait_standby_wal(b, &bl, end_lsn, end_tli, &hist, &first, &last);
		goto out;
	}
	rc = backup_wait_history(b, &bl, &hist);
	if (rc == 0 && end_lsn && end_lsn != hist.stop_lsn)
		rc = pgk_error(PGKEEP_ECORRUPT, "the server ended backup %s at %" PRIX64 " but its "
			       "history file says %" PRIX64, b->m.id, end_lsn, hist.stop_lsn);
	if (rc == 0)
		backup_tighten_stop(b, &hist);
	if (rc == 0)
		rc = backup_fill_wal_range(b, &bl, &hist, &first, &last);
	if (rc == 0)
		rc = backup_wait_segments(b, first, last, bl.start_tli);
out:
	buf_free(&head);
	free(label);
	return rc;
}

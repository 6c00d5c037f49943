/*
 * The parts of backup, shared by its files: the command, signals, the
 * child's stream and dumps (backup.c), a base backup's WAL (backup_wal.c)
 * and a base backup's streams (backup_base.c).
 */
#ifndef PGK_CMD_BACKUP_H
#define PGK_CMD_BACKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/config.h"
#include "common/mem.h"
#include "common/progress.h"
#include "pg/backup_label.h"
#include "pg/pgconn.h"
#include "repo/manifest.h"

/* backup_label is the tar's first member and a few hundred bytes long. */
#define HEAD_BUF (64 * 1024)

struct backup_opts {
	enum backup_type type;
	const char *db;
	bool all;
	const char *label;
	enum progress_mode progress;
	int jobs;			/* --jobs, 0 when not given */
	const char *checksums;		/* --checksums: "SHA256", "CRC32C"; NULL: the config's */
	const char *test_program;	/* see base_from_program; NULL normally */
};

struct backup_run {
	struct pgk_config cfg;
	struct repo *repo;
	struct manifest m;
	struct manifest ref;		/* the previous backup, for deltas */
	bool have_ref;
	int jobs;
	struct pg_server_info info;
	struct timespec t0;
	struct progress *progress;	/* NULL: nothing shown */
};


/* ------------------------------------------------------------------ backup.c */

/* An error once SIGINT or SIGTERM came: the backup stops and leaves nothing. */
int backup_check_interrupted(void);
/*
 * Copy the child's stdout into a new stream of the manifest.  head, when
 * not NULL, receives the stream's first HEAD_BUF bytes.
 */
int backup_stream_child(struct backup_run *b, char *const argv[], char **envp,
			const char *stream_name, struct pgk_buf *head);

/* -------------------------------------------------------------- backup_wal.c */

/* The backup_label at the start of the base backup's tar. */
int backup_label_from_head(const struct pgk_buf *head, struct backup_label *bl);
/* The backup history file, once the archiver has pushed it. */
int backup_wait_history(struct backup_run *b, const struct backup_label *start,
			struct backup_label *hist);
/* Every segment from first through last on timeline tli, in the repository. */
int backup_wait_segments(struct backup_run *b, uint64_t first, uint64_t last, uint32_t tli);
/* The server's cluster must be the repository's. */
int backup_check_cluster(struct backup_run *b);
/* The manifest's WAL range from the labels; the segments it spans in first, last. */
int backup_fill_wal_range(struct backup_run *b, const struct backup_label *bl,
			  const struct backup_label *hist, uint64_t *first, uint64_t *last);
/* The stop by the server's clock, read once the server has sent the whole backup. */
void backup_record_stop(struct backup_run *b, struct pgconn *pc);
/* The history file's STOP TIME bounds the stop too. */
void backup_tighten_stop(struct backup_run *b, const struct backup_label *hist);

/* ------------------------------------------------------------- backup_base.c */

/* A base backup into b's manifest, from the server or o's program. */
int backup_base(struct backup_run *b, struct pgconn *pc, const struct backup_opts *o);

#endif

/*
 * The parts of restore, shared by its files: the command and the base
 * restore (restore.c), the recovery target (restore_target.c), extraction
 * (restore_extract.c) and dumps (restore_dump.c).
 */
#ifndef PGK_CMD_RESTORE_H
#define PGK_CMD_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cmd/context.h"
#include "cmd/restore_tblspc.h"
#include "common/config.h"
#include "common/progress.h"
#include "pg/recovery.h"
#include "pg/untar.h"
#include "repo/manifest.h"

#define CONTROL_FILE "global/pg_control"
#define CONTROL_PENDING "global/pg_control.pgkeep-restoring"

struct restore_opts {
	const char *id;
	/* base backups */
	const char *pgdata;
	bool force;
	enum recovery_target target;
	const char *target_value;
	char target_norm[64];		/* TARGET_TIME: normalised to UTC */
	int64_t target_sec;		/* TARGET_TIME */
	long target_usec;
	uint64_t target_lsn;		/* TARGET_LSN */
	const char *action;
	bool archive_off;
	struct tblspc_maps maps;	/* --tablespace-map */
	/* dumps */
	const char *dbname;
	bool create;
	const char *output;
	const char *stream;
	enum progress_mode progress;
	int jobs;			/* --jobs, 0 when not given */
};

struct restore_run {
	const struct pgk_globals *g;
	struct pgk_config cfg;
	struct repo *repo;
	struct manifest m;
	int jobs;
	struct timespec t0;
	struct progress *progress;	/* NULL: nothing shown */
};

/* ------------------------------------------------------- restore_target.c */

/* One --target-* option: at most one of them, its value checked (and a time normalised). */
int set_target(struct restore_opts *o, enum recovery_target t, const char *v);
/* Did backup m finish before the recovery target (true when there is none to check)? */
bool restore_target_reached(const struct manifest *m, const struct restore_opts *o);

/* ------------------------------------------------------ restore_extract.c */

/* A pipeline sink that writes to fd, counting towards a progress line. */
struct fd_sink {
	int fd;
	bool failed;	/* the reader went away: its own error explains why */
	struct progress *progress;
};

/* The stream being delivered is what the progress line counts towards. */
void restore_sink_progress(struct restore_run *rr, struct fd_sink *sk,
			   const struct manifest_stream *s);
int restore_sink_fd(void *payload, const void *buf, size_t len);
/*
 * Extract tar stream s into u (total: the bytes the progress line counts
 * to); data_dir: the data directory's tar, whose pg_control is withheld
 * under CONTROL_PENDING.
 */
int restore_extract_stream(struct restore_run *rr, const struct manifest_stream *s,
			   uint64_t total, struct untar *u, bool data_dir);

/* --------------------------------------------------------- restore_dump.c */

/* The dump's stream into o->output or database o->dbname. */
int restore_dump(struct restore_run *rr, const struct restore_opts *o);

/* -------------------------------------------------------------- restore.c */

const struct manifest_stream *restore_find_stream(const struct manifest *m, const char *name);

#endif

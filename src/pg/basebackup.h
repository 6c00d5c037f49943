/*
 * A base backup taken by pgkeep itself over a replication connection
 * (libpq, replication=true): IDENTIFY_SYSTEM, then BASE_BACKUP with the
 * option syntax of PostgreSQL 15 and later, whose copy stream is handed to
 * the caller message by message.  No pg_basebackup process is involved.
 */
#ifndef PGK_BASEBACKUP_H
#define PGK_BASEBACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct basebackup;

/* One row of the server's tablespace list (the main directory: oid 0). */
struct basebackup_tablespace {
	uint32_t oid;
	char *location;		/* "" for the main data directory */
	uint64_t size;		/* bytes, as estimated by the server */
};

struct basebackup_opts {
	const char *label;
	bool fast;		/* CHECKPOINT 'fast' rather than 'spread' */
	const char *manifest_checksums;	/* "CRC32C", "SHA256", ... */
};

/*
 * What the copy stream delivers, in order: for each archive, its name and
 * tablespace location, then its data; then, when the manifest begins, the
 * manifest's data.  The server's progress (bytes of archive sent so far)
 * comes in between.  idle runs each time the client waits for the server,
 * and at least every idle_ms while the server sends nothing (a checkpoint,
 * a slow disk): the place to look for signals.  A negative return from any
 * callback stops the backup with that error.
 */
struct basebackup_sink {
	int (*archive)(void *payload, const char *name, const char *location);
	int (*data)(void *payload, const void *buf, size_t len);
	int (*manifest)(void *payload);
	void (*progress)(void *payload, uint64_t done);
	int (*idle)(void *payload);
	int idle_ms;
	void *payload;
};

/*
 * The servers whose BASE_BACKUP this client speaks (server_version_num):
 * the option syntax and the copy stream's typed messages began with 15.
 */
#define BASEBACKUP_MIN_VERSION 150000
#define BASEBACKUP_END_VERSION 190000	/* the first not yet tested */
#define BASEBACKUP_VERSIONS_TEXT "15, 16, 17 and 18"
bool basebackup_server_supported(int version);

/*
 * One CopyData message of the stream, handed to sink: 'n' (new archive:
 * name and tablespace location, each NUL-terminated), 'd' (data), 'm'
 * (the manifest follows), 'p' (progress: big-endian int64).  Anything
 * else, or a malformed message, is an error.
 */
int basebackup_message(const struct basebackup_sink *sink, const char *msg, size_t len);

/* A replication connection to where conninfo points, named appname. */
int basebackup_connect(struct basebackup **out, const char *conninfo, const char *appname);
void basebackup_close(struct basebackup *bb);

/* IDENTIFY_SYSTEM: the cluster's system identifier and current timeline. */
int basebackup_identify(struct basebackup *bb, uint64_t *sysid, uint32_t *tli);

/*
 * TIMELINE_HISTORY: the history file of timeline tli (> 1) as the server
 * keeps it in pg_wal, its name ("0000000N.history") and its text.  Only
 * between commands, not during a backup's copy stream.  Free both.
 */
int basebackup_timeline_history(struct basebackup *bb, uint32_t tli, char **name,
				char **content, size_t *len);

/*
 * Send BASE_BACKUP (WAL false, WAIT false: the WAL comes from the archive
 * and pgkeep waits for it itself) and read the start position and the
 * tablespace list; sink->idle runs during the checkpoint.  The list stays
 * owned by bb.
 */
int basebackup_start(struct basebackup *bb, const struct basebackup_opts *o,
		     const struct basebackup_sink *sink, uint64_t *start_lsn, uint32_t *start_tli,
		     const struct basebackup_tablespace **spc, size_t *nspc);

/* The copy stream into sink, then the end position. */
int basebackup_stream(struct basebackup *bb, const struct basebackup_sink *sink,
		      uint64_t *end_lsn, uint32_t *end_tli);

#endif

/*
 * Backup manifests.  A backup exists exactly when its manifest object
 * backups/ID.manifest exists; it is written last, after every chunk and the
 * WAL the backup needs.  The body is JSON (json-c; 64-bit integers exact).
 */
#ifndef PGK_MANIFEST_H
#define PGK_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "repo/layout.h"
#include "repo/repo.h"
#include "repo/streamsum.h"

#define MANIFEST_ID_MAX 64

enum backup_type {
	BACKUP_BASE = 1,
	BACKUP_DUMP = 2,
};

struct manifest_chunk {
	char id[65];		/* keyed hash of the plaintext, hex */
	uint32_t size;		/* plaintext bytes */
	uint32_t stored;	/* bytes of the stored object (0 if unknown) */
	/*
	 * known: anchor is recorded (not in manifests from before deltas, nor
	 * in copies, whose keys differ).  anchor: a keyed fingerprint of the
	 * chunk's first bytes, by which the next backup finds where this
	 * stream's chunks went.
	 */
	bool known;
	uint64_t anchor;
};

/* One list object of a stream, as the manifest records it. */
struct manifest_list_ref {
	uint32_t count;		/* entries */
	char sha256[65];	/* of its plaintext */
};

#define MANIFEST_LIST_SET_LEN LAYOUT_LIST_SET_LEN	/* hex digits of a list set */

/*
 * One byte stream of a backup: base.tar, a tablespace's tar, a dump file.
 * Its chunk list is either held here (chunks: manifests of format 1, and
 * streams built in memory) or, when listed, kept in list objects that a
 * cursor reads one at a time (see repo/lists.h); a listed stream may also
 * have been expanded into chunks by manifest_load_full.
 */
struct manifest_stream {
	char *name;
	uint64_t size;		/* plaintext bytes */
	uint64_t stored;	/* bytes newly stored for this stream */
	/* checksum of the whole plaintext stream (repo/streamsum.h) */
	enum stream_sum_alg sum_alg;
	char sum[STREAM_SUM_HEX_MAX + 1];
	struct manifest_chunk *chunks;
	size_t nchunks;
	size_t cap;
	uint32_t max_chunk;	/* the largest chunk's size */
	/* Where the stream sits: for list object keys and messages. */
	char backup[MANIFEST_ID_MAX];
	char list_set[MANIFEST_LIST_SET_LEN + 1];
	size_t index;
	bool listed;
	struct manifest_list_ref *lists;
	size_t nlists;
	/*
	 * A tablespace's tar: its OID and the absolute directory it was backed
	 * up from (0 and NULL for every other stream, and in manifests from
	 * before tablespaces were backed up).
	 */
	uint32_t tblspc_oid;
	char *tblspc_location;
};

struct manifest {
	char id[MANIFEST_ID_MAX];	/* YYYYMMDDTHHMMSSZ-base|dump (sortable, unique) */
	enum backup_type type;
	uint64_t sysid;
	int pg_version;			/* server_version_num */
	uint32_t timeline;		/* base backups: the one its WAL is on */
	bool from_standby;		/* base backups taken from a hot standby */
	uint64_t start_lsn, stop_lsn;	/* base backups; 0 for dumps */
	char wal_start[25], wal_stop[25]; /* first and last WAL segment needed */
	uint32_t wal_seg_size;		/* base backups: bytes per WAL segment */
	int64_t start_time, stop_time;	/* seconds since the epoch, UTC; the stop rounded up */
	/*
	 * The same to the microsecond, exact; 0 in manifests written before
	 * they were recorded (manifest_start_us and manifest_stop_us then fall
	 * back to the seconds).  Set through manifest_set_start and _stop.
	 */
	int64_t start_us, stop_us;
	char *dbname;			/* dumps: the database (NULL for --all) */
	char *label;
	char *format;			/* dumps: "custom" or "sql" */
	struct manifest_stream *streams;
	size_t nstreams;
	/* Names this backup's list objects: lists/SET/STREAM-SEQ (random, see lists.h). */
	char list_set[MANIFEST_LIST_SET_LEN + 1];
	bool summary;			/* from manifest_list_summary: no chunk lists */
};

void manifest_free(struct manifest *m);
/*
 * to becomes from's header: id, type, cluster, timeline, LSNs, WAL range and
 * times; no streams, no strings (dbname, label, format) and no list_set,
 * which are the caller's to add.
 */
void manifest_copy_header(struct manifest *to, const struct manifest *from);
/*
 * The returned stream lives in m->streams, which grows by realloc: the
 * pointer is valid until the next manifest_add_stream on m (write streams one
 * after another, or look them up again by index).
 */
struct manifest_stream *manifest_add_stream(struct manifest *m, const char *name);
/* Mark s as the tar of tablespace oid, backed up from location. */
void manifest_stream_set_tablespace(struct manifest_stream *s, uint32_t oid,
				    const char *location);
/*
 * A tablespace location pgkeep may restore into: absolute, printable, no
 * '.', '..' or empty component (a trailing '/' excepted).
 */
bool manifest_tablespace_location_ok(const char *location);
/* The new entry (unknown base and anchor) is valid until the next add. */
struct manifest_chunk *manifest_stream_add_chunk(struct manifest_stream *s, const char *id,
						 uint32_t size, uint32_t stored);

/*
 * Record the start (its second rounded down) and the stop (rounded up, so
 * that a reader of the seconds alone never takes the backup as finished
 * before it was), both exact to the microsecond since the epoch.
 */
void manifest_set_start(struct manifest *m, int64_t us);
void manifest_set_stop(struct manifest *m, int64_t us);
/* Microseconds since the epoch: exact when recorded, else from the seconds. */
int64_t manifest_start_us(const struct manifest *m);
int64_t manifest_stop_us(const struct manifest *m);

/* Logical size (sum of stream sizes) and newly stored bytes. */
uint64_t manifest_size(const struct manifest *m);
uint64_t manifest_stored(const struct manifest *m);

int manifest_to_json(const struct manifest *m, struct pgk_buf *out);
int manifest_from_json(struct manifest *m, const char *json, size_t len, const char *what);

/*
 * backups/ID.manifest, written if absent.  A manifest whose streams are
 * listed is written in format 2 (chunk lists in list objects, written
 * before it); one whose streams hold their chunks, in format 1.
 */
int manifest_save(struct repo *r, const struct manifest *m);
/* A listed stream's chunk list is not read: use a cursor. */
int manifest_load(struct repo *r, const char *id, struct manifest *m);
/*
 * The same with every listed stream expanded into chunks: memory grows with
 * the backup, for callers not yet reading through a cursor.
 */
int manifest_load_full(struct repo *r, const char *id, struct manifest *m);
/* Read a listed stream's list objects into s->chunks (no-op when held). */
int manifest_stream_expand(struct repo *r, struct manifest_stream *s);

/*
 * Every manifest in the repository, sorted by recorded start time (then stop
 * LSN), oldest first.  The caller frees with manifest_list_free.
 */
int manifest_list(struct repo *r, struct manifest **out, size_t *n);
/*
 * The same list without chunk lists (streams keep name, size, stored, checksum
 * and nchunks; chunks is NULL; summary is set): for info, list and retention, whose
 * memory would otherwise grow with every chunk of every backup.
 */
int manifest_list_summary(struct repo *r, struct manifest **out, size_t *n);
void manifest_list_free(struct manifest *list, size_t n);

/*
 * The chunks of one stream, in order, one at a time: the way to read a chunk
 * list without holding every list of every backup.  m may be a summary (the
 * chunk list is then read from the repository); it must outlive the cursor.
 * manifest_cursor_next returns 1 with *out valid until the next call, 0 at
 * the end, or a negative error.
 */
struct manifest_cursor;
int manifest_cursor_open(struct repo *r, const struct manifest *m, size_t stream,
			 struct manifest_cursor **out);
/*
 * The same from a stream of a manifest read by manifest_load (or built
 * in memory), which must outlive the cursor.  A listed stream's list objects
 * are read one at a time and each is checked against the manifest (count,
 * SHA-256) before an entry of it is returned; the end checks the sizes.
 * Errors name the backup, the stream and the list object.
 */
int manifest_stream_cursor_open(struct repo *r, const struct manifest_stream *s,
				struct manifest_cursor **out);
int manifest_cursor_next(struct manifest_cursor *c, const struct manifest_chunk **out);
void manifest_cursor_close(struct manifest_cursor *c);

const char *backup_type_name(enum backup_type t);

#endif

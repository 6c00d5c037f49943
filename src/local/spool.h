/*
 * The local spool of the look-ahead WAL commands: empty records "NAME.SHA256"
 * saying that wal-push stored exactly those bytes in every archive
 * repository, and prefetched WAL files "NAME.SHA256" that wal-fetch serves
 * later.  A record is only a shortcut: losing one costs a round trip, never
 * data; so the spool is written without fsync, and whatever cannot be
 * trusted (a directory someone else could write) is not used at all.
 *
 * Where: [global] spool_dir, else /var/spool/pgkeep when it exists or can be
 * made, else /var/tmp/pgkeep-UID.  Inside, one directory per kind and
 * "scope" (a hash of the repositories, and for fetch the data directory), so
 * that changing archive_repos never lets an old record vouch for a new set.
 */
#ifndef PGK_SPOOL_H
#define PGK_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define SPOOL_DEFAULT_DIR "/var/spool/pgkeep"
#define SPOOL_HASH_HEX 64
/* Prefetched files of other recoveries older than this are removed: a
 * recovery that stopped at its target leaves its look-ahead behind. */
#define SPOOL_FETCH_MAX_AGE 3600

struct spool {
	char *dir;	/* the scope's directory */
	int dfd;	/* open on dir */
};

/*
 * Open (creating as needed) BASE/KIND-TAG, TAG a hash of scope.  base NULL
 * means the default described above.  Fails when the directory is not owned
 * by the running user or is writable by others: the caller then runs without
 * a spool.
 */
int spool_open(struct spool *sp, const char *base, const char *kind, const char *scope);
void spool_close(struct spool *sp);

/* SHA-256 of data as lowercase hex. */
void spool_hash(const void *data, size_t len, char out[SPOOL_HASH_HEX + 1]);
/* A SHA-256 digest already made, as lowercase hex. */
void spool_hash_hex(const uint8_t md[32], char out[SPOOL_HASH_HEX + 1]);

/* Push records. */
bool spool_has_record(const struct spool *sp, const char *name, const char *hash);
/* Is there a record (or file) for name, whatever its hash? */
bool spool_has_name(const struct spool *sp, const char *name);
/*
 * A record may carry a stamp: what stat said of the file that was pushed
 * (see spool_stamp), so that a later call for the same, unchanged file can
 * trust the record without hashing it again.
 */
int spool_add_record(const struct spool *sp, const char *name, const char *hash,
		     const char *stamp);
/* The stamp in the record name.hash into out ("" when it has none). */
void spool_record_stamp(const struct spool *sp, const char *name, const char *hash,
			char *out, size_t len);

#define SPOOL_STAMP_MAX 128
/* Device, inode, size and both times to the nanosecond of the file st describes. */
void spool_stamp(const struct stat *st, char out[SPOOL_STAMP_MAX]);
void spool_remove(const struct spool *sp, const char *name, const char *hash);
/* How many records (and files) the spool holds. */
size_t spool_count_records(const struct spool *sp);

/*
 * Drop entries for WAL older than `current` (by name, as PostgreSQL archives
 * and replays in name order), temporary files of killed calls, and then the
 * oldest names until at most max entries remain.
 */
void spool_prune(const struct spool *sp, const char *current, size_t max);

/*
 * Prefetched files.  spool_put_file writes data under NAME.HASH (temporary
 * name, then rename: a reader never sees a partial file).  spool_find_file
 * gives the hash part of the entry for name, if one exists.
 */
int spool_put_file(const struct spool *sp, const char *name, const void *data, size_t len);
bool spool_find_file(const struct spool *sp, const char *name, char hash[SPOOL_HASH_HEX + 1]);

#endif

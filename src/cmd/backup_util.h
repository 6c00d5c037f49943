/*
 * Small pieces the backup, restore, list and info commands share: sizes and
 * times for people, and the clock rounding that keeps recorded backup times
 * on the safe side.
 */
#ifndef PGK_BACKUP_UTIL_H
#define PGK_BACKUP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The most parallel workers of the pipeline chosen when neither the config
 * nor --jobs says: each costs a chunk slot or two and a sealing buffer (up
 * to 4 MiB each), and the default must stay within 64 MiB of memory.
 */
#define BACKUP_DEFAULT_JOBS 4

/* Workers when the config sets no `jobs`: the online cores, at most
 * BACKUP_DEFAULT_JOBS. */
int backup_default_jobs(void);

/* "1.5 GiB", "512 B". */
void human_size(uint64_t bytes, char *out, size_t outlen);
/* "1h02m", "3m05s", "4.2s"-style, from whole seconds. */
void human_duration(int64_t secs, char *out, size_t outlen);
/* "2026-02-20 15:30:00" in local time. */
void local_time_text(int64_t t, char *out, size_t outlen);
/* "2026-02-20T14:30:00Z". */
void iso_utc_text(int64_t t, char *out, size_t outlen);

/* Now, in microseconds since the epoch (this host's clock). */
int64_t backup_now_us(void);

struct manifest;
struct manifest_stream;
struct repo;
/*
 * The newest backup of m's type, cluster and database (dumps): the
 * reference whose chunks a new backup stores its changed chunks as deltas
 * of.  Loads it into *ref and returns 1; 0 when there is none, deltas are
 * off, or it is damaged (logged: the backup then stores whole chunks); a
 * store that fails is an error.
 */
int backup_reference(struct repo *r, const struct manifest *m, struct manifest *ref);
/* ref's stream called name, or NULL (also when ref is NULL). */
const struct manifest_stream *backup_ref_stream(const struct manifest *ref, const char *name);

#endif

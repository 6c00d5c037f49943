/*
 * List objects: a backup stream's chunk list in pieces of at most
 * LIST_CHUNKS_MAX entries, so that no command holds a whole list.  A backup
 * writes them as it goes, before its manifest, under
 *
 *   lists/SET/STREAM-SEQ
 *
 * where SET is random per backup (chosen when its first stream starts, so
 * before the backup's id, which is only settled when the manifest is
 * written), STREAM the stream's index and SEQ the list's, both decimal.  The
 * manifest records, per stream, SET and each list's entry count and the
 * SHA-256 of its plaintext, so a list that is missing, damaged, truncated,
 * reordered, or taken from another backup is refused.
 *
 * Plaintext (sealed as OBJ_LIST with the repository key), little-endian:
 *
 *   offset  size  field
 *   0       8     magic "PGKLIST\0"
 *   8       4     version (1)
 *   12      4     entry count n
 *   16      49*n  entries: 32-byte chunk id, u32 size, u32 stored,
 *                 u64 anchor, u8 flags (bit 0: anchor known)
 */
#ifndef PGK_LISTS_H
#define PGK_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "repo/gc.h"
#include "repo/layout.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#define LIST_CHUNKS_MAX 16384
#define LIST_HEADER_LEN 16
#define LIST_ENTRY_LEN 49
#define LIST_KEY_MAX LAYOUT_LIST_KEY_MAX

/*
 * Entries per list object written (1 to LIST_CHUNKS_MAX): lowered by tests
 * to cross list boundaries with few chunks.  Readers take any count up to
 * LIST_CHUNKS_MAX.
 */
extern uint32_t list_chunks_cap;

void list_key(const char *set, size_t stream, size_t seq, char *key, size_t keylen);
/* A fresh random list set name. */
void list_set_new(char out[MANIFEST_LIST_SET_LEN + 1]);

/*
 * Writing one stream's lists: entries are added in stream order; a full
 * list is sealed and stored by list_out_flush, which records it in the
 * stream.  init marks s listed and empties its chunk list.
 */
struct list_out {
	struct repo *r;
	struct manifest_stream *s;
	struct pgk_buf plain;
	uint32_t n;
};

void list_out_init(struct list_out *lo, struct repo *r, struct manifest_stream *s);
bool list_out_full(const struct list_out *lo);
/* Append one entry; the list must not be full. */
void list_out_add(struct list_out *lo, const struct manifest_chunk *c);
/* Store the entries held (none: nothing to do). */
int list_out_flush(struct list_out *lo);
/* Add, storing the list first when it is full. */
int list_out_append(struct list_out *lo, const struct manifest_chunk *c);
void list_out_free(struct list_out *lo);

/*
 * Fetch list seq of s into plain (reset first) and check it against the
 * manifest; *n gets its entry count.  Errors name backup, stream and key.
 */
int list_fetch(struct repo *r, const struct manifest_stream *s, size_t seq,
	       struct pgk_buf *plain, uint32_t *n);
/* The checks of list_fetch on a plaintext in hand (seq < s->nlists). */
int list_check(const struct manifest_stream *s, size_t seq, const struct pgk_buf *plain,
	       uint32_t *n);
/* Entry i of a fetched list; PGKEEP_ECORRUPT when it is impossible. */
int list_entry(const struct manifest_stream *s, size_t seq, const struct pgk_buf *plain,
	       uint32_t i, struct manifest_chunk *out);

/*
 * Remove the list objects of the backups marked gone (their manifests
 * removed) and those of no backup in list (an interrupted backup's) older
 * than grace seconds.  res counts objects; dry_run removes nothing.
 */
int lists_sweep(struct repo *r, const struct manifest *list, size_t n, const bool *gone,
		int64_t grace, bool dry_run, struct gc_result *res);
/* How many list objects belong to no backup in list. */
int lists_unreferenced(struct repo *r, const struct manifest *list, size_t n, size_t *count);

#endif

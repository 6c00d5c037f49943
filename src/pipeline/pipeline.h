/*
 * The data path of a backup stream and back:
 *
 *   write:  bytes -> chunker -> [workers: chunk id (HMAC), dedup check,
 *           compress, encrypt, store] -> chunk list in order
 *   read:   chunk list -> [workers: fetch, verify, decrypt, decompress,
 *           check id] -> bytes in order -> sink
 *
 * Work runs on `jobs` threads plus one that computes the whole-stream
 * checksum, with bounded queues, so memory stays flat (about jobs * 2 * max
 * chunk size, capped) and a slow store applies back-pressure.
 */
#ifndef PGK_PIPELINE_H
#define PGK_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <pgkeep/storage.h>

#include "pipeline/chunker.h"
#include "repo/chunks.h"
#include "repo/manifest.h"
#include "repo/repo.h"

struct stream_writer;

/*
 * Chunks go to repo/chunks.h; a chunk the repository has is not stored
 * again.  dest (from manifest_add_stream) becomes listed: its chunk list
 * goes to list objects, never held whole.  ref, when not NULL, is the same stream in the previous backup
 * (kept unchanged until the writer is freed): with r->delta, a new chunk
 * is stored as a delta of the chunk it most likely replaces there.
 */
int stream_writer_open(struct stream_writer **out, struct repo *r,
		       struct manifest_stream *dest, const struct manifest_stream *ref, int jobs);
int stream_writer_write(struct stream_writer *w, const void *buf, size_t len);
/*
 * The same without a copy: stream_writer_buffer gives the free space of the
 * chunk being filled (never empty); read into it, then commit the bytes
 * read.  The buffer is valid until the commit; nothing else may come between.
 */
int stream_writer_buffer(struct stream_writer *w, void **buf, size_t *space);
int stream_writer_commit(struct stream_writer *w, size_t len);
/*
 * Drain the pipeline; fills dest's size, stored and sha256, and its chunk
 * list: dest is listed, its list objects are stored (repo/lists.h), written
 * one at a time as the stream went.
 */
int stream_writer_finish(struct stream_writer *w);
/* Always call; safe after finish or after an error. */
void stream_writer_free(struct stream_writer *w);

/*

 * How many chunks of the reference a writer holds at most (a window that
 * follows the stream); settable for tests.
 */
extern size_t pipeline_ref_window;

/*
 * Restore one stream, its chunk list read through a cursor: every chunk
 * verified (tag, then keyed id of the plaintext) before its bytes reach
 * sink; the whole-stream checksum is checked
 * at the end.  A missing or damaged chunk fails naming the chunk; the caller
 * adds the backup.
 */
int stream_read(struct repo *r, const struct manifest_stream *s, int jobs,
		pgkeep_sink_fn sink, void *payload);

#endif

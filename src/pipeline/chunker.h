/*
 * Content-defined chunking (FastCDC-style gear hash with normalised chunking):
 * cut points depend only on nearby content, so data that did not change
 * between two backups yields the same chunks and is stored once.
 */
#ifndef PGK_CHUNKER_H
#define PGK_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct chunker_params {
	size_t min;	/* no cut before min bytes */
	size_t avg;	/* target average, a power of two */
	size_t max;	/* always cut at max bytes */
};

/* 256 KiB / 1 MiB / 4 MiB; a chunk object holds at most CHUNKER_MAX_SIZE. */
#define CHUNKER_MAX_SIZE (4 * 1024 * 1024)
#define CHUNKER_DEFAULT_PARAMS { 256 * 1024, 1024 * 1024, CHUNKER_MAX_SIZE }

/*
 * Length of the first chunk of data[0..len): a cut point, or len when no cut
 * point lies within it and len < max (the caller then needs more data unless
 * the stream has ended).  Stateless: the caller keeps unconsumed bytes and
 * calls again from the start of the next chunk.
 */
size_t chunker_next(const struct chunker_params *p, const uint8_t *data, size_t len);

/*
 * The same cut points found incrementally, for a caller that reads a chunk
 * into its buffer piece by piece: the bytes already looked at are not hashed
 * again.  data[0..len) is the chunk so far (len only grows between calls on
 * one state).  Returns the chunk's length once a cut point (or max) lies
 * within it, else 0: more data, or at the end of the stream all of it.
 */
struct chunker_scan {
	size_t pos;	/* next byte to hash */
	uint64_t h;	/* gear hash of the bytes from min to pos */
};

static inline void chunker_scan_reset(struct chunker_scan *st)
{
	st->pos = 0;
	st->h = 0;
}

size_t chunker_scan(const struct chunker_params *p, struct chunker_scan *st,
		    const uint8_t *data, size_t len);

#endif

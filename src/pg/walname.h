/*
 * WAL file names as PostgreSQL writes them (their repository keys are in
 * repo/layout.h), segment arithmetic on LSNs, and the few fields of a
 * segment's first page that tell which cluster wrote it.
 */
#ifndef PGK_WALNAME_H
#define PGK_WALNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_SEG_NAME_LEN 24
#define WAL_SEG_SIZE_DEFAULT (16u * 1024 * 1024)
#define WAL_SEG_SIZE_MIN (1u * 1024 * 1024)
#define WAL_SEG_SIZE_MAX (1u * 1024 * 1024 * 1024)
enum wal_file_type {
	WAL_SEGMENT,	/* 000000010000000A00000042 */
	WAL_PARTIAL,	/* 000000010000000A00000042.partial */
	WAL_BACKUP,	/* 000000010000000A00000042.00000028.backup */
	WAL_HISTORY,	/* 00000002.history */
};

struct wal_name {
	enum wal_file_type type;
	uint32_t tli;
	uint32_t log;		/* segment-based types only */
	uint32_t seg;		/* segment-based types only */
	uint32_t offset;	/* WAL_BACKUP: the start offset in the segment */
};

/* Classify `name` (a bare file name, no directory).  Anything PostgreSQL does
 * not archive is refused with PGKEEP_EINVAL. */
int walname_parse(const char *name, struct wal_name *out);
bool walname_is_segment(const char *name);

bool wal_seg_size_valid(uint64_t seg_size);
uint64_t wal_segs_per_xlogid(uint32_t seg_size);
/* Segment number of the segment holding lsn. */
uint64_t wal_lsn_to_segno(uint64_t lsn, uint32_t seg_size);
/* Segment name (24 hex + NUL) of segment segno on timeline tli. */
void wal_segno_to_name(char out[WAL_SEG_NAME_LEN + 1], uint32_t tli, uint64_t segno,
		       uint32_t seg_size);
void wal_lsn_to_name(char out[WAL_SEG_NAME_LEN + 1], uint32_t tli, uint64_t lsn,
		     uint32_t seg_size);
/* Segment number of a parsed segment-based name; PGKEEP_EINVAL when the
 * segment field is out of range for seg_size. */
int wal_name_to_segno(const struct wal_name *wn, uint32_t seg_size, uint64_t *segno);
/* The name of the segment after `name` on the same timeline. */
int wal_next_segment(const char *name, uint32_t seg_size, char out[WAL_SEG_NAME_LEN + 1]);

/* What a segment's first page (XLogLongPageHeaderData) says. */
struct wal_page_info {
	uint16_t magic;
	uint32_t tli;
	uint64_t pageaddr;
	uint64_t sysid;
	uint32_t seg_size;
	uint32_t blcksz;
};

#define WAL_LONG_HEADER_LEN 40

/*
 * Read the long page header at the start of a segment of file_size bytes
 * (only the first WAL_LONG_HEADER_LEN bytes of buf are looked at).  The long
 * header flag must be set, the segment size valid and equal to file_size.
 * `what` names the file in messages.
 */
int wal_read_first_page(const void *buf, size_t file_size, const char *what,
			struct wal_page_info *out);

#endif

/*
 * WAL file names and segment arithmetic, following PostgreSQL's
 * xlog_internal.h: a segment name is %08X%08X%08X of timeline, segno / (2^32 /
 * segment size) and segno % (2^32 / segment size).
 */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "pg/walname.h"

/* XLP_LONG_HEADER in xlp_info: this page starts a segment. */
#define XLP_LONG_HEADER 0x0002

/* PostgreSQL writes upper-case hex only, so that is all we accept. */
static bool is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static uint32_t hex32(const char *s)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 4) | (uint32_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
	return v;
}

static void parse_segment_part(const char *name, struct wal_name *out)
{
	out->tli = hex32(name);
	out->log = hex32(name + 8);
	out->seg = hex32(name + 16);
}

int walname_parse(const char *name, struct wal_name *out)
{
	size_t len = strlen(name);
	struct wal_name wn;

	memset(&wn, 0, sizeof(wn));
	if (len == 8 + strlen(".history") && is_hex(name, 8) &&
	    strcmp(name + 8, ".history") == 0) {
		wn.type = WAL_HISTORY;
		wn.tli = hex32(name);
	} else if (len >= WAL_SEG_NAME_LEN && is_hex(name, WAL_SEG_NAME_LEN)) {
		const char *rest = name + WAL_SEG_NAME_LEN;

		parse_segment_part(name, &wn);
		if (*rest == '\0') {
			wn.type = WAL_SEGMENT;
		} else if (strcmp(rest, ".partial") == 0) {
			wn.type = WAL_PARTIAL;
		} else if (strlen(rest) == 1 + 8 + strlen(".backup") && rest[0] == '.' &&
			   is_hex(rest + 1, 8) && strcmp(rest + 9, ".backup") == 0) {
			wn.type = WAL_BACKUP;
			wn.offset = hex32(rest + 1);
		} else {
			goto refuse;
		}
	} else {
		goto refuse;
	}
	/* Timeline 0 does not exist; such a name is not PostgreSQL's. */
	if (wn.tli == 0)
		goto refuse;
	if (out)
		*out = wn;
	return 0;
refuse:
	return pgk_error(PGKEEP_EINVAL,
			 "'%.80s' is not a WAL segment, .partial, .backup or .history file name",
			 name);
}

bool walname_is_segment(const char *name)
{
	struct wal_name wn;

	return walname_parse(name, &wn) == 0 && wn.type == WAL_SEGMENT;
}

bool wal_seg_size_valid(uint64_t seg_size)
{
	return seg_size >= WAL_SEG_SIZE_MIN && seg_size <= WAL_SEG_SIZE_MAX &&
	       (seg_size & (seg_size - 1)) == 0;
}

uint64_t wal_segs_per_xlogid(uint32_t seg_size)
{
	return UINT64_C(0x100000000) / seg_size;
}

uint64_t wal_lsn_to_segno(uint64_t lsn, uint32_t seg_size)
{
	return lsn / seg_size;
}

void wal_segno_to_name(char out[WAL_SEG_NAME_LEN + 1], uint32_t tli, uint64_t segno,
		       uint32_t seg_size)
{
	uint64_t per = wal_segs_per_xlogid(seg_size);

	snprintf(out, WAL_SEG_NAME_LEN + 1, "%08X%08X%08X", tli, (uint32_t)(segno / per),
		 (uint32_t)(segno % per));
}

void wal_lsn_to_name(char out[WAL_SEG_NAME_LEN + 1], uint32_t tli, uint64_t lsn,
		     uint32_t seg_size)
{
	wal_segno_to_name(out, tli, wal_lsn_to_segno(lsn, seg_size), seg_size);
}

int wal_name_to_segno(const struct wal_name *wn, uint32_t seg_size, uint64_t *segno)
{
	uint64_t per = wal_segs_per_xlogid(seg_size);

	if (wn->type == WAL_HISTORY)
		return pgk_error(PGKEEP_EINVAL, "a history file has no segment number");
	if (wn->seg >= per)
		return pgk_error(PGKEEP_EINVAL,
				 "segment field %08X is out of range for %u-byte segments",
				 wn->seg, seg_size);
	*segno = (uint64_t)wn->log * per + wn->seg;
	return 0;
}

int wal_next_segment(const char *name, uint32_t seg_size, char out[WAL_SEG_NAME_LEN + 1])
{
	struct wal_name wn;
	uint64_t segno;
	int rc;

	rc = walname_parse(name, &wn);
	if (rc < 0)
		return rc;
	if (wn.type != WAL_SEGMENT)
		return pgk_error(PGKEEP_EINVAL, "'%s' is not a WAL segment name", name);
	rc = wal_name_to_segno(&wn, seg_size, &segno);
	if (rc < 0)
		return rc;
	wal_segno_to_name(out, wn.tli, segno + 1, seg_size);
	return 0;
}

int wal_read_first_page(const void *buf, size_t file_size, const char *what,
			struct wal_page_info *out)
{
	const uint8_t *p = buf;
	uint16_t info;

	if (file_size < WAL_LONG_HEADER_LEN)
		return pgk_error(PGKEEP_EINVAL, "%s: %zu bytes is too short for a WAL segment",
				 what, file_size);
	/* The header is written in the server's byte order, which is ours. */
	memcpy(&out->magic, p + 0, 2);
	memcpy(&info, p + 2, 2);
	memcpy(&out->tli, p + 4, 4);
	memcpy(&out->pageaddr, p + 8, 8);
	memcpy(&out->sysid, p + 24, 8);
	memcpy(&out->seg_size, p + 32, 4);
	memcpy(&out->blcksz, p + 36, 4);
	if (!(info & XLP_LONG_HEADER))
		return pgk_error(PGKEEP_EINVAL,
				 "%s: first page has no long header; not the start of a WAL segment",
				 what);
	if (!wal_seg_size_valid(out->seg_size))
		return pgk_error(PGKEEP_EINVAL, "%s: page header gives invalid segment size %u",
				 what, out->seg_size);
	if (out->seg_size != file_size)
		return pgk_error(PGKEEP_EINVAL,
				 "%s: file is %zu bytes but its page header says segments are %u bytes",
				 what, file_size, out->seg_size);
	if (out->sysid == 0)
		return pgk_error(PGKEEP_EINVAL, "%s: page header has no system identifier", what);
	return 0;
}

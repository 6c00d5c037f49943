/*
 * The backup_label file pg_basebackup puts first in its tar, and the backup
 * history file (<seg>.<offset>.backup) PostgreSQL archives when a backup
 * ends: where a base backup's WAL starts and stops.
 */
#ifndef PGK_BACKUP_LABEL_H
#define PGK_BACKUP_LABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/walname.h"

#define PG_LSN_TEXT_MAX 20	/* "FFFFFFFF/FFFFFFFF" + NUL */

struct backup_label {
	uint64_t start_lsn;
	char start_wal[WAL_SEG_NAME_LEN + 1];
	uint64_t checkpoint_lsn;
	uint32_t start_tli;
	int64_t start_time;	/* 0 when the zone could not be read */
	char label[256];
	bool from_standby;
	/* History files only. */
	bool has_stop;
	uint64_t stop_lsn;
	char stop_wal[WAL_SEG_NAME_LEN + 1];
	uint32_t stop_tli;
	int64_t stop_time;
};

/*
 * Parse either file.  START WAL LOCATION and START TIMELINE are required;
 * a history file must carry STOP WAL LOCATION too (want_stop).  `what`
 * names the file in messages.
 */
int backup_label_parse(struct backup_label *out, const char *text, size_t len,
		       bool want_stop, const char *what);

/* "16/B374D848" -> LSN; PGKEEP_EINVAL when malformed. */
int pg_lsn_parse(const char *s, uint64_t *lsn);
void pg_lsn_format(uint64_t lsn, char out[PG_LSN_TEXT_MAX]);

/* Name of the history file PostgreSQL archives for a backup starting at
 * start_lsn on tli: 000000010000000000000002.00000028.backup */
void backup_history_name(char *out, size_t outlen, uint32_t tli, uint64_t start_lsn,
			 uint32_t seg_size);

#endif

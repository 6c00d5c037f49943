/*
 * Reading backup_label and backup history files.  Both are "KEY: value"
 * lines written by PostgreSQL (xlogbackup.c); unknown lines are ignored so
 * that a newer server's additions do not break us.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/backup_label.h"

int pg_lsn_parse(const char *s, uint64_t *lsn)
{
	unsigned long hi, lo;
	char *end;

	if (!isxdigit((unsigned char)*s))
		return PGKEEP_EINVAL;
	hi = strtoul(s, &end, 16);
	if (*end != '/' || end - s > 8 || !isxdigit((unsigned char)end[1]))
		return PGKEEP_EINVAL;
	s = end + 1;
	lo = strtoul(s, &end, 16);
	if (end - s > 8 || (*end && !isspace((unsigned char)*end)))
		return PGKEEP_EINVAL;
	*lsn = ((uint64_t)hi << 32) | (uint64_t)lo;
	return 0;
}

void pg_lsn_format(uint64_t lsn, char out[PG_LSN_TEXT_MAX])
{
	snprintf(out, PG_LSN_TEXT_MAX, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

void backup_history_name(char *out, size_t outlen, uint32_t tli, uint64_t start_lsn,
			 uint32_t seg_size)
{
	char seg[WAL_SEG_NAME_LEN + 1];

	wal_lsn_to_name(seg, tli, start_lsn, seg_size);
	snprintf(out, outlen, "%s.%08X.backup", seg, (unsigned)(start_lsn % seg_size));
}

/*
 * "2026-02-20 14:30:00 UTC": the server writes its log_timezone's
 * abbreviation, which only UTC/GMT or a numeric offset make unambiguous.
 */
static int64_t parse_time(const char *v)
{
	struct tm tm;
	const char *rest;
	int sign, hh, mm = 0;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(v, "%Y-%m-%d %H:%M:%S", &tm);
	if (!rest)
		return 0;
	while (*rest == ' ')
		rest++;
	if (strcmp(rest, "UTC") == 0 || strcmp(rest, "GMT") == 0 || strcmp(rest, "Z") == 0)
		return (int64_t)timegm(&tm);
	if ((*rest == '+' || *rest == '-') && sscanf(rest + 1, "%2d%2d", &hh, &mm) >= 1) {
		sign = *rest == '-' ? -1 : 1;
		return (int64_t)timegm(&tm) - sign * (hh * 3600 + mm * 60);
	}
	return 0;
}

/* "0/2000028 (file 000000010000000000000002)" */
static int parse_location(const char *v, uint64_t *lsn, char seg[WAL_SEG_NAME_LEN + 1])
{
	const char *f;

	if (pg_lsn_parse(v, lsn) < 0)
		return PGKEEP_EINVAL;
	f = strstr(v, "(file ");
	if (!f)
		return PGKEEP_EINVAL;
	f += 6;
	if (strlen(f) < WAL_SEG_NAME_LEN + 1 || f[WAL_SEG_NAME_LEN] != ')')
		return PGKEEP_EINVAL;
	memcpy(seg, f, WAL_SEG_NAME_LEN);
	seg[WAL_SEG_NAME_LEN] = '\0';
	return walname_is_segment(seg) ? 0 : PGKEEP_EINVAL;
}

static int parse_tli(const char *v, uint32_t *tli)
{
	char *end;
	unsigned long t = strtoul(v, &end, 10);

	if (end == v || *end || t == 0 || t > UINT32_MAX)
		return PGKEEP_EINVAL;
	*tli = (uint32_t)t;
	return 0;
}

/* Apply one "KEY: value" line; unknown keys are fine. */
static int parse_line(struct backup_label *b, const char *key, const char *v, unsigned *seen)
{
	if (strcmp(key, "START WAL LOCATION") == 0) {
		*seen |= 1;
		return parse_location(v, &b->start_lsn, b->start_wal);
	}
	if (strcmp(key, "STOP WAL LOCATION") == 0) {
		*seen |= 2;
		b->has_stop = true;
		return parse_location(v, &b->stop_lsn, b->stop_wal);
	}
	if (strcmp(key, "START TIMELINE") == 0) {
		*seen |= 4;
		return parse_tli(v, &b->start_tli);
	}
	if (strcmp(key, "STOP TIMELINE") == 0)
		return parse_tli(v, &b->stop_tli);
	if (strcmp(key, "CHECKPOINT LOCATION") == 0)
		return pg_lsn_parse(v, &b->checkpoint_lsn);
	if (strcmp(key, "START TIME") == 0)
		b->start_time = parse_time(v);
	else if (strcmp(key, "STOP TIME") == 0)
		b->stop_time = parse_time(v);
	else if (strcmp(key, "LABEL") == 0)
		snprintf(b->label, sizeof(b->label), "%s", v);
	else if (strcmp(key, "BACKUP FROM") == 0)
		b->from_standby = strcmp(v, "standby") == 0;
	return 0;
}

int backup_label_parse(struct backup_label *out, const char *text, size_t len,
		       bool want_stop, const char *what)
{
	char *copy, *line, *save = NULL, *colon, *v;
	unsigned seen = 0;
	int lineno = 0, rc = 0;

	memset(out, 0, sizeof(*out));
	copy = xstrndup(text, len);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		line[strcspn(line, "\r")] = '\0';
		colon = strstr(line, ": ");
		if (!colon)
			continue;
		*colon = '\0';
		v = colon + 2;
		if (parse_line(out, line, v, &seen) < 0) {
			rc = pgk_error(PGKEEP_ECORRUPT, "%s: line %d: bad %s '%.80s'", what, lineno,
				       line, v);
			goto out_free;
		}
	}
	if (!(seen & 1))
		rc = pgk_error(PGKEEP_ECORRUPT, "%s: no START WAL LOCATION line", what);
	else if (!(seen & 4))
		rc = pgk_error(PGKEEP_ECORRUPT, "%s: no START TIMELINE line", what);
	else if (want_stop && !(seen & 2))
		rc = pgk_error(PGKEEP_ECORRUPT, "%s: no STOP WAL LOCATION line", what);
	if (rc == 0 && out->has_stop && !out->stop_tli)
		out->stop_tli = out->start_tli;
out_free:
	free(copy);
	return rc;
}

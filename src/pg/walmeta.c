/*
 * Checks of timeline history and backup history files before they are
 * archived, after PostgreSQL's own readers (timeline.c, xlogbackup.c): an
 * empty or garbled one, once stored, would stand in for the real one.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "pg/walmeta.h"

/* One line of buf: [*p, *end), advancing past its newline. */
struct lines {
	const char *p;
	const char *end;
	size_t no;
};

static bool line_next(struct lines *l, const char **s, size_t *n)
{
	const char *nl;

	if (l->p >= l->end)
		return false;
	nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	*s = l->p;
	*n = nl ? (size_t)(nl - l->p) : (size_t)(l->end - l->p);
	l->p = nl ? nl + 1 : l->end;
	l->no++;
	if (*n && (*s)[*n - 1] == '\r')
		(*n)--;
	return true;
}

/* Text only: a NUL byte means this is not the file its name says. */
static int check_text(const void *buf, size_t len, const char *what)
{
	if (len == 0)
		return pgk_error(PGKEEP_EINVAL, "%s is empty", what);
	if (len > WAL_META_MAX)
		return pgk_error(PGKEEP_EINVAL, "%s is %zu bytes, larger than any such file", what,
				 len);
	if (memchr(buf, '\0', len))
		return pgk_error(PGKEEP_EINVAL, "%s is not text", what);
	return 0;
}

static size_t skip_space(const char *s, size_t i, size_t n)
{
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	return i;
}

/* Up to 8 hex digits at s[*i]; false when there are none or too many. */
static bool parse_hex32(const char *s, size_t *i, size_t n, uint32_t *out)
{
	size_t start = *i;
	uint32_t v = 0;

	while (*i < n && isxdigit((unsigned char)s[*i]) && *i - start < 9) {
		char c = (char)toupper((unsigned char)s[*i]);

		v = (v << 4) | (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10);
		(*i)++;
	}
	*out = v;
	return *i > start && *i - start <= 8;
}

/* An LSN as PostgreSQL prints it: X/X. */
static bool parse_lsn(const char *s, size_t *i, size_t n, uint64_t *lsn)
{
	uint32_t hi, lo;

	if (!parse_hex32(s, i, n, &hi) || *i >= n || s[*i] != '/')
		return false;
	(*i)++;
	if (!parse_hex32(s, i, n, &lo))
		return false;
	*lsn = (uint64_t)hi << 32 | lo;
	return true;
}

static bool parse_tli(const char *s, size_t *i, size_t n, uint32_t *tli)
{
	uint64_t v = 0;
	size_t start = *i;

	while (*i < n && s[*i] >= '0' && s[*i] <= '9' && v <= UINT32_MAX) {
		v = v * 10 + (uint64_t)(s[*i] - '0');
		(*i)++;
	}
	*tli = (uint32_t)v;
	return *i > start && v >= 1 && v <= UINT32_MAX;
}

/* ---- timeline history ---- */

/* One entry line (not blank, not a comment): its timeline in *tli. */
static int history_entry(const char *s, size_t n, size_t i, uint32_t *tli, const char *what,
			 size_t no)
{
	uint64_t lsn;
	size_t j;

	if (!parse_tli(s, &i, n, tli))
		return pgk_error(PGKEEP_EINVAL, "%s line %zu: expected a timeline number", what, no);
	j = skip_space(s, i, n);
	if (j == i || !parse_lsn(s, &j, n, &lsn))
		return pgk_error(PGKEEP_EINVAL, "%s line %zu: expected a switch point X/X after the timeline",
				 what, no);
	if (j < n && !isspace((unsigned char)s[j]))
		return pgk_error(PGKEEP_EINVAL, "%s line %zu: expected a switch point X/X after the timeline",
				 what, no);
	return 0;
}

int walmeta_check_history(const void *buf, size_t len, const struct wal_name *wn,
			  const char *what)
{
	struct lines l = { buf, (const char *)buf + len, 0 };
	uint32_t tli, last = 0;
	const char *s;
	size_t n, i;
	int rc;

	rc = check_text(buf, len, what);
	if (rc < 0)
		return rc;
	while (line_next(&l, &s, &n)) {
		i = skip_space(s, 0, n);
		if (i == n || s[i] == '#')
			continue;
		rc = history_entry(s, n, i, &tli, what, l.no);
		if (rc < 0)
			return rc;
		if (tli <= last)
			return pgk_error(PGKEEP_EINVAL, "%s line %zu: timeline %" PRIu32 " does not follow %" PRIu32,
					 what, l.no, tli, last);
		if (tli >= wn->tli)
			return pgk_error(PGKEEP_EINVAL, "%s line %zu: timeline %" PRIu32 " is not an ancestor of timeline %" PRIu32,
					 what, l.no, tli, wn->tli);
		last = tli;
	}
	if (!last)
		return pgk_error(PGKEEP_EINVAL, "%s lists no parent timeline", what);
	return 0;
}

/* ---- backup history ---- */

/* "KEY: X/X (file NAME)" after the key; NAME is a segment name. */
static bool parse_location(const char *s, size_t n, size_t i, uint64_t *lsn, char seg[25])
{
	static const char file[] = " (file ";

	if (!parse_lsn(s, &i, n, lsn) || n - i != strlen(file) + WAL_SEG_NAME_LEN + 1 ||
	    memcmp(s + i, file, strlen(file)) != 0 || s[n - 1] != ')')
		return false;
	memcpy(seg, s + i + strlen(file), WAL_SEG_NAME_LEN);
	seg[WAL_SEG_NAME_LEN] = '\0';
	return walname_is_segment(seg);
}

static bool has_key(const char *s, size_t n, const char *key)
{
	size_t k = strlen(key);

	return n > k && memcmp(s, key, k) == 0;
}

/* "KEY: value": a key of capitals and spaces. */
static bool key_value_line(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == ' '))
		i++;
	return i > 0 && i < n && s[i] == ':';
}

/* The start location is the one the file is named after, for some valid
 * segment size: segment name and offset in the segment. */
static bool start_matches_name(uint64_t lsn, const char seg[25], const struct wal_name *wn)
{
	char want[WAL_SEG_NAME_LEN + 1], name[WAL_SEG_NAME_LEN + 1];
	uint64_t size;

	snprintf(name, sizeof(name), "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, wn->tli, wn->log,
		 wn->seg);
	if (strcmp(seg, name) != 0)
		return false;
	for (size = WAL_SEG_SIZE_MIN; size <= WAL_SEG_SIZE_MAX; size <<= 1) {
		if (lsn % size != wn->offset)
			continue;
		wal_lsn_to_name(want, wn->tli, lsn, (uint32_t)size);
		if (strcmp(want, name) == 0)
			return true;
	}
	return false;
}

int walmeta_check_backup(const void *buf, size_t len, const struct wal_name *wn,
			 const char *what)
{
	struct lines l = { buf, (const char *)buf + len, 0 };
	static const char start_key[] = "START WAL LOCATION: ", stop_key[] = "STOP WAL LOCATION: ";
	char seg[WAL_SEG_NAME_LEN + 1];
	uint64_t start = 0, stop = 0;
	bool have_start = false, have_stop = false;
	const char *s;
	size_t n;
	int rc;

	rc = check_text(buf, len, what);
	if (rc < 0)
		return rc;
	while (line_next(&l, &s, &n)) {
		if (n == 0)
			continue;
		if (!key_value_line(s, n))
			return pgk_error(PGKEEP_EINVAL, "%s line %zu: expected 'KEY: value'", what, l.no);
		if (l.no == 1 && !has_key(s, n, start_key))
			return pgk_error(PGKEEP_EINVAL, "%s does not start with START WAL LOCATION", what);
		if (has_key(s, n, start_key) && l.no == 1) {
			if (!parse_location(s, n, strlen(start_key), &start, seg))
				return pgk_error(PGKEEP_EINVAL, "%s line 1: bad START WAL LOCATION", what);
			if (!start_matches_name(start, seg, wn))
				return pgk_error(PGKEEP_EINVAL, "%s: START WAL LOCATION is not the one its name says",
						 what);
			have_start = true;
		} else if (has_key(s, n, stop_key) && !have_stop) {
			if (!parse_location(s, n, strlen(stop_key), &stop, seg))
				return pgk_error(PGKEEP_EINVAL, "%s line %zu: bad STOP WAL LOCATION", what,
						 l.no);
			have_stop = true;
		}
	}
	if (!have_start)
		return pgk_error(PGKEEP_EINVAL, "%s does not start with START WAL LOCATION", what);
	if (!have_stop)
		return pgk_error(PGKEEP_EINVAL, "%s has no STOP WAL LOCATION", what);
	if (stop < start)
		return pgk_error(PGKEEP_EINVAL, "%s: STOP WAL LOCATION is before START WAL LOCATION",
				 what);
	return 0;
}

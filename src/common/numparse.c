/*
 * Checked parsers for what people type: integers in a range, durations with
 * one unit syntax for options and config alike, and recovery target times
 * read strictly within their own string.  Nothing of the agent is used, so
 * a plugin compiles this file in; messages go to the caller's buffer.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/numparse.h"

#define DURATION_HINT "a number and a unit: s, min, h, d, w, mon or y, e.g. 90s, 5min, 1h30min"

struct msg {
	char *buf;
	size_t len;
};

static int fail(struct msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct msg *m, const char *fmt, ...)
{
	va_list ap;

	if (m->len) {
		va_start(ap, fmt);
		vsnprintf(m->buf, m->len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* strtoll over a run of digits known to be there; false on overflow. */
static bool digits_value(const char *s, const char **end, int64_t *out)
{
	char *e;
	long long v;

	errno = 0;
	v = strtoll(s, &e, 10);
	*end = e;
	if (errno == ERANGE)
		return false;
	*out = v;
	return true;
}

int numparse_int64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out,
		   char *msg, size_t msglen)
{
	struct msg mm = { msg, msglen }, *m = &mm;
	const char *p = s, *end;
	int64_t v;

	if (*p == '-' && min < 0)
		p++;
	if (!is_digit(*p))
		goto bad;
	if (!digits_value(s, &end, &v))
		goto range;
	if (*end)
		goto bad;
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
bad:
	return fail(m, "%s: bad value '%s' (a whole number from %lld to %lld)",
			 what, s, (long long)min, (long long)max);
range:
	return fail(m, "%s: bad value '%s' (out of range: %lld to %lld)", what, s,
			 (long long)min, (long long)max);
}

/* Seconds per unit, the unit's length in *len; 0 when p starts no unit. */
static int64_t unit_seconds(const char *p, size_t *len)
{
	static const struct {
		const char *name;
		int64_t secs;
	} units[] = {
		{ "month", 30 * 86400LL }, { "mon", 30 * 86400LL }, { "min", 60 },
		{ "s", 1 }, { "h", 3600 }, { "d", 86400 }, { "w", 7 * 86400LL },
		{ "y", 365 * 86400LL },
	};
	size_t i, n;

	/* A unit runs to the last letter: "mins" is not "min" and junk. */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		n = strlen(units[i].name);
		if (strncmp(p, units[i].name, n) == 0 && !is_letter(p[n])) {
			*len = n;
			return units[i].secs;
		}
	}
	return 0;
}

static int duration_unit_error(struct msg *m, const char *what, const char *s, const char *unit)
{
	size_t n = strcspn(unit, "0123456789");

	if (n == 1 && unit[0] == 'm')
		return fail(m, "%s: bad value '%s' ('m' is ambiguous: write min "
				 "for minutes or mon for months)", what, s);
	if (n == 0)
		return fail(m, "%s: bad value '%s' (a number without a unit; %s)",
				 what, s, DURATION_HINT);
	return fail(m, "%s: bad value '%s' (unknown unit '%.*s'; %s)", what, s,
			 (int)n, unit, DURATION_HINT);
}

static int duration_range_error(struct msg *m, const char *what, const char *s, int64_t max)
{
	return fail(m, "%s: bad value '%s' (too long: at most %lld seconds)", what,
			 s, (long long)max);
}

int numparse_duration(const char *what, const char *s, int flags, int64_t max, int64_t *out,
		      char *msg, size_t msglen)
{
	struct msg mm = { msg, msglen }, *m = &mm;
	const char *p = s, *end;
	int64_t total = 0, v, unit;
	size_t len;

	if (strspn(s, "0123456789") == strlen(s) && *s &&
	    ((flags & PARSE_BARE_SECONDS) || strspn(s, "0") == strlen(s))) {
		if (!digits_value(s, &end, &v) || v > max)
			return duration_range_error(m, what, s, max);
		*out = v;
		return 0;
	}
	if (!is_digit(*p))
		return fail(m, "%s: bad value '%s' (%s%s)", what, s,
				 flags & PARSE_BARE_SECONDS ? "seconds, or " : "", DURATION_HINT);
	while (*p) {
		if (!is_digit(*p))
			return fail(m, "%s: bad value '%s' (%s)", what, s,
					 DURATION_HINT);
		if (!digits_value(p, &end, &v))
			return duration_range_error(m, what, s, max);
		unit = unit_seconds(end, &len);
		if (!unit)
			return duration_unit_error(m, what, s, end);
		if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
			return duration_range_error(m, what, s, max);
		total += v * unit;
		p = end + len;
	}
	if (total > max)
		return duration_range_error(m, what, s, max);
	*out = total;
	return 0;
}

/* ---------------------------------------------------------------- time */

/* Exactly n digits at *p, advanced past them. */
static bool fixed_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date(int y, int mon, int d)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (y < 1970 || mon < 1 || mon > 12 || d < 1)
		return false;
	return d <= days[mon - 1] + (mon == 2 && leap_year(y));
}

/* Date and clock time into tm, the fraction into *usec; p left after them. */
static bool parse_clock(const char **pp, struct tm *tm, int32_t *usec)
{
	const char *p = *pp;
	int y, mon, d, h, mi, sec = 0, digits = 0;

	*usec = 0;
	if (!fixed_digits(&p, 4, &y) || *p++ != '-' || !fixed_digits(&p, 2, &mon) ||
	    *p++ != '-' || !fixed_digits(&p, 2, &d) || (*p != ' ' && *p != 'T'))
		return false;
	p++;
	if (!fixed_digits(&p, 2, &h) || *p++ != ':' || !fixed_digits(&p, 2, &mi))
		return false;
	if (*p == ':') {
		p++;
		if (!fixed_digits(&p, 2, &sec))
			return false;
		if (*p == '.') {
			for (p++; is_digit(*p) && digits < 6; p++, digits++)
				*usec = *usec * 10 + (*p - '0');
			if (!digits || is_digit(*p))
				return false;
			for (; digits < 6; digits++)
				*usec *= 10;
		}
	}
	if (!valid_date(y, mon, d) || h > 23 || mi > 59 || sec > 59)
		return false;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = y - 1900;
	tm->tm_mon = mon - 1;
	tm->tm_mday = d;
	tm->tm_hour = h;
	tm->tm_min = mi;
	tm->tm_sec = sec;
	*pp = p;
	return true;
}

/* The zone's offset east of UTC in seconds; *local when there is none. */
static bool parse_zone(const char *p, long *offset, bool *local)
{
	int hh = 0, mm = 0, sign;

	*local = false;
	*offset = 0;
	if (*p == ' ')
		p++;
	if (!*p) {
		*local = p[-1] != ' ';
		return *local;
	}
	if (strcmp(p, "Z") == 0 || strcmp(p, "UTC") == 0)
		return true;
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	if (!fixed_digits(&p, 2, &hh))
		return false;
	if (*p == ':')
		p++;
	if (*p && !fixed_digits(&p, 2, &mm))
		return false;
	if (*p || hh > 15 || mm > 59)
		return false;
	*offset = sign * (hh * 3600L + mm * 60L);
	return true;
}

int numparse_timestamp(const char *what, const char *s, struct parse_time *out, char *msg,
		       size_t msglen)
{
	struct msg mm = { msg, msglen }, *m = &mm;
	const char *p = s;
	struct tm tm;
	int32_t usec;
	long offset;
	bool local;
	time_t t;

	if (!parse_clock(&p, &tm, &usec) || !parse_zone(p, &offset, &local))
		return fail(m, "%s: bad value '%s' (a time like "
				 "'2026-02-20 14:30:00+01': YYYY-MM-DD HH:MM[:SS[.ffffff]], then "
				 "nothing for local time, or Z, +HH or +HH:MM)", what, s);
	if (local) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
		if (t == (time_t)-1)
			return fail(m, "%s: bad value '%s' (not a local time here)",
					 what, s);
	} else {
		t = timegm(&tm) - offset;
	}
	out->sec = (int64_t)t;
	out->usec = usec;
	return 0;
}

/*
 * Cron expressions: parsed into bit sets, matched minute by minute in local
 * time (skipping whole days and hours that cannot match, so finding the next
 * run is cheap).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cron.h"
#include "common/error.h"

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

struct field {
	const char *name;
	int lo, hi;
	const char *const *names;	/* value lo + index */
	int nnames;
};

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL, 0 },
	{ "hour", 0, 23, NULL, 0 },
	{ "day of month", 1, 31, NULL, 0 },
	{ "month", 1, 12, month_names, 12 },
	{ "day of week", 0, 7, dow_names, 7 },
};

static int parse_value(const struct field *f, const char **p, int *v)
{
	const char *s = *p;
	int i;

	if (isdigit((unsigned char)*s)) {
		long n = strtol(s, (char **)p, 10);

		if (n < f->lo || n > f->hi)
			return pgk_error(PGKEEP_EINVAL, "%s %ld out of range %d-%d", f->name, n, f->lo, f->hi);
		*v = (int)n;
		return 0;
	}
	for (i = 0; i < f->nnames; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*v = (f->names == dow_names ? 0 : f->lo) + i;
			*p = s + 3;
			return 0;
		}
	return pgk_error(PGKEEP_EINVAL, "bad %s '%.12s'", f->name, s);
}

/* One field: a comma list of *, N, N-M, with optional /STEP. */
static int parse_field(const struct field *f, const char *text, uint64_t *bits, bool *any)
{
	const char *p = text;

	*bits = 0;
	*any = strcmp(text, "*") == 0;
	for (;;) {
		int lo, hi, step = 1, v;

		if (*p == '*') {
			lo = f->lo;
			hi = f->hi;
			p++;
		} else {
			if (parse_value(f, &p, &lo) < 0)
				return -1;
			hi = lo;
			if (*p == '-') {
				p++;
				if (parse_value(f, &p, &hi) < 0)
					return -1;
				if (hi < lo)
					return pgk_error(PGKEEP_EINVAL, "%s range %d-%d runs backwards", f->name, lo, hi);
			}
		}
		if (*p == '/') {
			char *end;

			step = (int)strtol(p + 1, &end, 10);
			if (end == p + 1 || step < 1 || step > f->hi)
				return pgk_error(PGKEEP_EINVAL, "bad %s step in '%s'", f->name, text);
			p = end;
			if (hi == lo && text[0] != '*')
				hi = f->hi; /* "5/15" means from 5 on */
		}
		for (v = lo; v <= hi; v += step)
			*bits |= 1ULL << v;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return pgk_error(PGKEEP_EINVAL, "bad %s '%s'", f->name, text);
		p++;
	}
}

int cron_parse(const char *text, struct cron_spec *out)
{
	static const struct {
		const char *name;
		const char *expr;
	} macros[] = {
		{ "@hourly", "0 * * * *" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
		{ "@weekly", "0 0 * * 0" }, { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
		{ "@annually", "0 0 1 1 *" },
	};
	char buf[256], *tok[5], *save = NULL, *t;
	uint64_t bits[5];
	bool any[5];
	size_t i;
	int n = 0;

	while (isspace((unsigned char)*text))
		text++;
	for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
		if (strcasecmp(text, macros[i].name) == 0)
			text = macros[i].expr;
	if (strlen(text) >= sizeof(buf))
		return pgk_error(PGKEEP_EINVAL, "schedule too long");
	snprintf(buf, sizeof(buf), "%s", text);
	for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == 5)
			return pgk_error(PGKEEP_EINVAL, "schedule '%s' has more than five fields", text);
		tok[n++] = t;
	}
	if (n != 5)
		return pgk_error(PGKEEP_EINVAL,
				 "schedule '%s' needs five fields: minute hour day-of-month month day-of-week",
				 text);
	for (i = 0; i < 5; i++)
		if (parse_field(&fields[i], tok[i], &bits[i], &any[i]) < 0)
			return pgk_error_wrap(PGKEEP_EINVAL, "schedule '%s'", text);
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	/* 7 is Sunday too. */
	out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	out->dom_any = any[2];
	out->dow_any = any[4];
	return 0;
}

static bool day_matches(const struct cron_spec *c, const struct tm *tm)
{
	bool dom = c->dom & (1u << tm->tm_mday);
	bool dow = c->dow & (1u << tm->tm_wday);

	if (!(c->month & (1u << (tm->tm_mon + 1))))
		return false;
	/* Classic cron: when both are restricted, either one matching is enough. */
	if (!c->dom_any && !c->dow_any)
		return dom || dow;
	return dom && dow;
}

time_t cron_next(const struct cron_spec *c, time_t after)
{
	time_t limit = after + 5 * 366 * 86400LL;
	struct tm tm;
	time_t t;

	/* Start at the next whole minute. */
	t = after - (after % 60) + 60;
	while (t <= limit) {
		localtime_r(&t, &tm);
		if (!day_matches(c, &tm)) {
			/* To the start of the next day (mktime normalises; DST-safe). */
			tm.tm_mday++;
			tm.tm_hour = 0;
			tm.tm_min = 0;
			tm.tm_sec = 0;
			tm.tm_isdst = -1;
			t = mktime(&tm);
			continue;
		}
		if (!(c->hour & (1u << tm.tm_hour))) {
			t += 3600 - tm.tm_min * 60 - tm.tm_sec;
			continue;
		}
		if (!(c->minute & (1ULL << tm.tm_min))) {
			t += 60 - tm.tm_sec;
			continue;
		}
		return t;
	}
	return (time_t)-1;
}

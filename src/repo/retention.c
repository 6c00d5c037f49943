/*
 * Retention decisions.  Pure functions of the backup list and the policy, so
 * the calendar logic is unit-tested apart from any repository.
 */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/retention.h"

bool retention_has_rules(const struct retention_policy *p)
{
	return p->keep_last > 0 || p->keep_hourly > 0 || p->keep_daily > 0 ||
	       p->keep_weekly > 0 || p->keep_monthly > 0 || p->keep_yearly > 0 ||
	       p->keep_within > 0;
}

enum bucket_kind { B_HOUR, B_DAY, B_WEEK, B_MONTH, B_YEAR };

/* The calendar bucket of t in local time; equal keys = same bucket. */
static long bucket_of(int64_t t, enum bucket_kind kind)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char iso[16];

	localtime_r(&tt, &tm);
	switch (kind) {
	case B_HOUR:
		return ((long)(tm.tm_year + 1900) * 1000 + tm.tm_yday) * 100 + tm.tm_hour;
	case B_DAY:
		return (long)(tm.tm_year + 1900) * 1000 + tm.tm_yday;
	case B_WEEK:
		/* ISO 8601 week-numbering year and week: a week never splits
		 * across a year boundary. */
		strftime(iso, sizeof(iso), "%G%V", &tm);
		return strtol(iso, NULL, 10);
	case B_MONTH:
		return (long)(tm.tm_year + 1900) * 100 + tm.tm_mon;
	case B_YEAR:
		return tm.tm_year + 1900;
	}
	return 0;
}

static void add_reason(struct retention_item *it, const char *why)
{
	size_t n = strlen(it->reason);

	if (!it->keep)
		it->reason[0] = '\0', n = 0;
	it->keep = true;
	snprintf(it->reason + n, sizeof(it->reason) - n, "%s%s", n ? ", " : "", why);
}

/* Order: newest first; ties broken by position, later = newer. */
static const struct retention_item *sort_base;

static int newest_first(const void *a, const void *b)
{
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int64_t ta = sort_base[ia].start_time, tb = sort_base[ib].start_time;

	if (ta != tb)
		return ta > tb ? -1 : 1;
	return ia > ib ? -1 : (ia < ib ? 1 : 0);
}

/* Keep the newest item of each of the `count` most recent buckets. */
static void keep_buckets(struct retention_item *items, const size_t *order, size_t n,
			 enum bucket_kind kind, int count, const char *name)
{
	long last = 0;
	int kept = 0;
	size_t i;

	for (i = 0; i < n && kept < count; i++) {
		long b = bucket_of(items[order[i]].start_time, kind);

		if (kept > 0 && b == last)
			continue;
		last = b;
		kept++;
		add_reason(&items[order[i]], name);
	}
}

void retention_apply(const struct retention_policy *p, struct retention_item *items, size_t n)
{
	size_t *order;
	size_t i;
	bool rules = retention_has_rules(p);

	for (i = 0; i < n; i++) {
		items[i].keep = false;
		snprintf(items[i].reason, sizeof(items[i].reason), "%s",
			 "not kept by any rule");
	}
	if (n == 0)
		return;

	order = xmalloc(n * sizeof(*order));
	for (i = 0; i < n; i++)
		order[i] = i;
	sort_base = items;
	qsort(order, n, sizeof(*order), newest_first);
	sort_base = NULL;

	if (!rules) {
		for (i = 0; i < n; i++)
			add_reason(&items[i], "no retention rule set");
		free(order);
		return;
	}

	for (i = 0; i < n && i < (size_t)(p->keep_last > 0 ? p->keep_last : 0); i++)
		add_reason(&items[order[i]], "last");
	if (p->keep_hourly > 0)
		keep_buckets(items, order, n, B_HOUR, p->keep_hourly, "hourly");
	if (p->keep_daily > 0)
		keep_buckets(items, order, n, B_DAY, p->keep_daily, "daily");
	if (p->keep_weekly > 0)
		keep_buckets(items, order, n, B_WEEK, p->keep_weekly, "weekly");
	if (p->keep_monthly > 0)
		keep_buckets(items, order, n, B_MONTH, p->keep_monthly, "monthly");
	if (p->keep_yearly > 0)
		keep_buckets(items, order, n, B_YEAR, p->keep_yearly, "yearly");
	if (p->keep_within > 0) {
		int64_t newest = items[order[0]].start_time;

		for (i = 0; i < n; i++)
			if (items[order[i]].start_time >= newest - p->keep_within)
				add_reason(&items[order[i]], "within");
	}
	for (i = 0; i < n; i++)
		if (items[i].pinned)
			add_reason(&items[i], "pinned");
	/* Whatever the rules say, the newest backup stays. */
	if (!items[order[0]].keep)
		add_reason(&items[order[0]], "newest");
	free(order);
}

int retention_parse_duration(const char *s, int64_t *seconds)
{
	const char *p = s;
	int64_t total = 0;

	if (!*s)
		return pgk_error(PGKEEP_EINVAL, "empty duration");
	while (*p) {
		char *end;
		long long v;
		int64_t unit;

		errno = 0;
		v = strtoll(p, &end, 10);
		if (end == p || errno || v < 0)
			return pgk_error(PGKEEP_EINVAL,
					 "bad duration '%s': expected a number and a unit (y, m, w, d, h), e.g. 30d",
					 s);
		switch (*end) {
		case 'y': unit = 365 * 86400LL; break;
		case 'm': unit = 30 * 86400LL; break;
		case 'w': unit = 7 * 86400LL; break;
		case 'd': unit = 86400; break;
		case 'h': unit = 3600; break;
		default:
			return pgk_error(PGKEEP_EINVAL,
					 "bad duration '%s': unit must be one of y, m, w, d, h", s);
		}
		if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
			return pgk_error(PGKEEP_EINVAL, "duration '%s' is too long", s);
		total += v * unit;
		p = end + 1;
	}
	*seconds = total;
	return 0;
}

static int parse_count(const char *key, const char *value, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (end == value || *end || errno || v < 0 || v > INT_MAX)
		return pgk_error(PGKEEP_EINVAL, "%s must be a whole number >= 0, not '%s'", key, value);
	*out = (int)v;
	return 0;
}

int retention_set(struct retention_policy *p, const char *key, const char *value)
{
	static const struct {
		const char *name;
		size_t off;
	} counts[] = {
		{ "keep_last", offsetof(struct retention_policy, keep_last) },
		{ "keep_hourly", offsetof(struct retention_policy, keep_hourly) },
		{ "keep_daily", offsetof(struct retention_policy, keep_daily) },
		{ "keep_weekly", offsetof(struct retention_policy, keep_weekly) },
		{ "keep_monthly", offsetof(struct retention_policy, keep_monthly) },
		{ "keep_yearly", offsetof(struct retention_policy, keep_yearly) },
	};
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (strcmp(key, counts[i].name) == 0)
			return parse_count(key, value, (int *)((char *)p + counts[i].off));
	if (strcmp(key, "keep_within") == 0)
		return retention_parse_duration(value, &p->keep_within);
	return pgk_error(PGKEEP_EINVAL, "unknown retention setting '%s'", key);
}

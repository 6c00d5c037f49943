/*
 * Retention decisions.  Pure functions of the backup list and the policy, so
 * the calendar logic is unit-tested apart from any repository.
 */
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/mem.h"
#include "common/parse.h"
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
			return parse_int(key, value, 0, INT_MAX, (int *)((char *)p + counts[i].off));
	/* A bare number of seconds would be a surprise here: say the unit. */
	if (strcmp(key, "keep_within") == 0)
		return parse_duration(key, value, 0, INT64_MAX, &p->keep_within);
	return pgk_error(PGKEEP_EINVAL, "unknown retention setting '%s'", key);
}

/*
 * Retention policy on synthetic backup lists: counts, calendar buckets at
 * month and year ends, daylight-saving changes, backups in the same minute,
 * pins, and the newest backup that always stays.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "repo/retention.h"
#include "tap.h"

/* Local time -> epoch, in the current TZ. */
static int64_t at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* "1101" style: which items are kept, in input order. */
static char *kept(struct retention_item *it, size_t n)
{
	static char s[64];
	size_t i;

	for (i = 0; i < n; i++)
		s[i] = it[i].keep ? '1' : '0';
	s[n] = '\0';
	return s;
}

static void test_no_rules(void)
{
	struct retention_policy p = { 0 };
	struct retention_item it[3] = { { .start_time = 10 }, { .start_time = 20 }, { .start_time = 30 } };

	retention_apply(&p, it, 3);
	is_str(kept(it, 3), "111", "no rule keeps everything");
	ok(strstr(it[0].reason, "no retention rule") != NULL, "reason says no rule: %s", it[0].reason);
}

static void test_keep_last(void)
{
	struct retention_policy p = { .keep_last = 2 };
	/* Out of order on purpose: order comes from start times. */
	struct retention_item it[5] = {
		{ .start_time = 500 }, { .start_time = 100 }, { .start_time = 400 },
		{ .start_time = 200 }, { .start_time = 300 },
	};

	retention_apply(&p, it, 5);
	is_str(kept(it, 5), "10100", "keep_last=2 keeps the two newest by start time");
	is_str(it[0].reason, "last", "reason of a kept one");
	is_str(it[1].reason, "not kept by any rule", "reason of a removed one");
}

static void test_same_minute(void)
{
	struct retention_policy p = { .keep_last = 1 };
	struct retention_item it[3] = { { .start_time = 600 }, { .start_time = 600 }, { .start_time = 600 } };

	retention_apply(&p, it, 3);
	is_str(kept(it, 3), "001", "same start time: the later item counts as newer");

	p = (struct retention_policy){ .keep_daily = 1 };
	retention_apply(&p, it, 3);
	is_str(kept(it, 3), "001", "same minute, one daily bucket: one kept");
}

static void test_daily_month_end(void)
{
	struct retention_policy p = { .keep_daily = 3 };
	struct retention_item it[6];

	set_tz("UTC");
	it[0].start_time = at(2026, 1, 30, 23, 0);
	it[1].start_time = at(2026, 1, 31, 1, 0);
	it[2].start_time = at(2026, 1, 31, 23, 59);
	it[3].start_time = at(2026, 2, 1, 0, 0);
	it[4].start_time = at(2026, 2, 1, 12, 0);
	it[5].start_time = at(2026, 2, 28, 3, 0);
	for (int i = 0; i < 6; i++)
		it[i].pinned = false;
	retention_apply(&p, it, 6);
	/* Buckets newest first: Feb 28 (5), Feb 1 (4), Jan 31 (2). */
	is_str(kept(it, 6), "001011", "keep_daily=3 across a month end keeps the newest of each day");

	p = (struct retention_policy){ .keep_monthly = 2 };
	retention_apply(&p, it, 6);
	is_str(kept(it, 6), "001001", "keep_monthly=2: last of February and of January");
}

static void test_weekly_year_end(void)
{
	struct retention_policy p = { .keep_weekly = 2 };
	struct retention_item it[4] = { 0 };

	set_tz("UTC");
	/* 2026-12-28 (Mon) .. 2027-01-03 (Sun) are ISO week 2026-W53. */
	it[0].start_time = at(2026, 12, 27, 12, 0); /* Sunday, W52 */
	it[1].start_time = at(2026, 12, 28, 12, 0); /* W53 */
	it[2].start_time = at(2027, 1, 3, 12, 0);   /* still W53 */
	it[3].start_time = at(2027, 1, 4, 12, 0);   /* 2027-W01 */
	retention_apply(&p, it, 4);
	is_str(kept(it, 4), "0011", "ISO week spanning New Year is one bucket");

	p = (struct retention_policy){ .keep_yearly = 5 };
	retention_apply(&p, it, 4);
	is_str(kept(it, 4), "0101", "keep_yearly: newest of 2027 and of 2026 (Dec 28)");
}

static void test_dst(void)
{
	struct retention_policy p = { .keep_daily = 2 };
	struct retention_item it[4] = { 0 };

	set_tz("Europe/Berlin");
	/* Clocks go back on 2026-10-25 at 03:00 CEST -> 02:00 CET: that day has
	 * 25 hours; 00:30 and 23:30 are still the same local day. */
	it[0].start_time = at(2026, 10, 24, 23, 30);
	it[1].start_time = at(2026, 10, 25, 0, 30);
	it[2].start_time = at(2026, 10, 25, 23, 30);
	it[3].start_time = at(2026, 10, 26, 0, 30);
	ok(it[2].start_time - it[1].start_time == 24 * 3600, "the 25-hour day: 23 h apart on the clock is 24 h");
	retention_apply(&p, it, 4);
	is_str(kept(it, 4), "0011", "daily buckets follow the local calendar across the DST change");

	/* Spring forward: 2026-03-29 has 23 hours. */
	it[0].start_time = at(2026, 3, 28, 23, 30);
	it[1].start_time = at(2026, 3, 29, 0, 30);
	it[2].start_time = at(2026, 3, 29, 23, 30);
	it[3].start_time = at(2026, 3, 30, 0, 10);
	retention_apply(&p, it, 4);
	is_str(kept(it, 4), "0011", "and across the 23-hour day");

	p = (struct retention_policy){ .keep_hourly = 2 };
	it[0].start_time = at(2026, 10, 25, 1, 10);
	it[1].start_time = it[0].start_time + 3600;	/* 02:10 CEST */
	it[2].start_time = it[0].start_time + 2 * 3600; /* 02:10 CET, same clock hour */
	it[3].start_time = it[0].start_time + 2 * 3600 + 60;
	retention_apply(&p, it, 4);
	/* 02:10 CEST, 02:10 CET and 02:11 CET share the bucket; 01:10 is the next. */
	is_str(kept(it, 4), "1001", "the repeated 02:00 hour is one local-time bucket");
	set_tz("UTC");
}

static void test_within_and_pins(void)
{
	struct retention_policy p = { 0 };
	struct retention_item it[4] = { 0 };
	int64_t d = 86400;

	ok(retention_set(&p, "keep_within", "2d") == 0, "keep_within=2d parses");
	it[0].start_time = 0;
	it[1].start_time = 5 * d;
	it[2].start_time = 8 * d;
	it[3].start_time = 10 * d;
	it[0].pinned = true;
	retention_apply(&p, it, 4);
	is_str(kept(it, 4), "1011", "within 2 days of the newest, plus the pinned one");
	is_str(it[0].reason, "pinned", "reason: pinned");
	is_str(it[2].reason, "within", "reason: within");
}

static void test_newest_always(void)
{
	struct retention_policy p = { .keep_monthly = 1 };
	struct retention_item it[2] = { { .start_time = 1000 }, { .start_time = 2000 } };

	retention_apply(&p, it, 2);
	ok(it[1].keep, "the newest is kept");
	p = (struct retention_policy){ .keep_within = 1 };
	it[0].start_time = 5000; /* newest first in input */
	retention_apply(&p, it, 2);
	is_str(kept(it, 2), "10", "keep_within relative to the newest");
}

static void test_parse(void)
{
	struct retention_policy p = { 0 };

	/* keep_within goes through the one duration parser; a unit is required */
	ok(retention_set(&p, "keep_within", "30d") == 0 && p.keep_within == 30 * 86400, "30d");
	ok(retention_set(&p, "keep_within", "1y6mon") == 0 &&
	   p.keep_within == (365 + 180) * 86400LL, "1y6mon");
	ok(retention_set(&p, "keep_within", "12h") == 0 && p.keep_within == 12 * 3600, "12h");
	ok(retention_set(&p, "keep_within", "1y6m") < 0 && strstr(pgk_errmsg(), "keep_within") &&
	   strstr(pgk_errmsg(), "min") && strstr(pgk_errmsg(), "mon"),
	   "1y6m: 'm' is refused as ambiguous: %s", pgk_errmsg());
	ok(retention_set(&p, "keep_within", "30") < 0 && strstr(pgk_errmsg(), "unit"),
	   "a number without unit: %s", pgk_errmsg());
	ok(retention_set(&p, "keep_within", "d") < 0, "a unit without number");
	ok(retention_set(&p, "keep_within", "") < 0, "empty");
	ok(retention_set(&p, "keep_last", "99999999999999999999") < 0,
	   "keep_last beyond 64 bits refused: %s", pgk_errmsg());
	ok(retention_set(&p, "keep_last", "3") == 0 && p.keep_last == 3, "keep_last=3");
	ok(retention_set(&p, "keep_last", "-1") < 0 && strstr(pgk_errmsg(), "keep_last"), "negative refused: %s", pgk_errmsg());
	ok(retention_set(&p, "keep_daily", "x") < 0, "not a number refused");
	ok(retention_set(&p, "keep_forever", "1") < 0 && strstr(pgk_errmsg(), "keep_forever"), "unknown key named: %s", pgk_errmsg());
	ok(retention_has_rules(&p), "has rules");
}

int main(void)
{
	test_no_rules();
	test_keep_last();
	test_same_minute();
	test_daily_month_end();
	test_weekly_year_end();
	test_dst();
	test_within_and_pins();
	test_newest_always();
	test_parse();
	return done_testing();
}

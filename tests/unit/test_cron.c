/*
 * Cron schedules: parsing (fields, lists, ranges, steps, names, macros,
 * errors) and the next run, including month ends, leap days, the
 * day-of-month/day-of-week rule and a daylight-saving change.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cron.h"
#include "common/error.h"
#include "tap.h"

static time_t at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static const char *fmt(time_t t)
{
	static char s[32];
	struct tm tm;

	if (t == (time_t)-1)
		return "never";
	localtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M %a", &tm);
	return s;
}

static const char *next(const char *expr, time_t after)
{
	struct cron_spec c;

	if (cron_parse(expr, &c) < 0)
		return pgk_errmsg();
	return fmt(cron_next(&c, after));
}

int main(void)
{
	struct cron_spec c;
	time_t base;

	setenv("TZ", "UTC", 1);
	tzset();
	base = at(2026, 11, 27, 10, 17);

	is_str(next("* * * * *", base), "2026-11-27 10:18 Fri", "every minute: the next whole minute");
	is_str(next("* * * * *", base + 59), "2026-11-27 10:18 Fri", "strictly after, from mid-minute");
	is_str(next("30 1 * * *", base), "2026-11-28 01:30 Sat", "nightly at 01:30");
	is_str(next("30 2 * * 0", base), "2026-11-29 02:30 Sun", "weekly on Sunday");
	is_str(next("30 2 * * 7", base), "2026-11-29 02:30 Sun", "7 is Sunday too");
	is_str(next("0 4 * * sat", base), "2026-11-28 04:00 Sat", "day names");
	is_str(next("0 0 1 jan *", base), "2027-01-01 00:00 Fri", "month names");
	is_str(next("*/15 * * * *", base), "2026-11-27 10:30 Fri", "steps");
	is_str(next("5/20 * * * *", base), "2026-11-27 10:25 Fri", "a step from a start value");
	is_str(next("0 9-17/4 * * mon-fri", base), "2026-11-27 13:00 Fri", "range with step and weekday range");
	is_str(next("0 0 31 * *", base), "2026-12-31 00:00 Thu", "the 31st skips November");
	is_str(next("0 0 29 2 *", base), "2028-02-29 00:00 Tue", "a leap day");
	is_str(next("0 0 30 2 *", base), "never", "February 30th never comes");
	/* dom and dow both restricted: either matches. */
	is_str(next("0 0 1 * mon", base), "2026-11-30 00:00 Mon", "day of month OR day of week");
	is_str(next("@daily", base), "2026-11-28 00:00 Sat", "@daily");
	is_str(next("@weekly", base), "2026-11-29 00:00 Sun", "@weekly");
	is_str(next("@monthly", base), "2026-12-01 00:00 Tue", "@monthly");
	is_str(next("@hourly", base), "2026-11-27 11:00 Fri", "@hourly");
	is_str(next("0,30 8 * * *", base), "2026-11-28 08:00 Sat", "lists");

	ok(cron_parse("61 * * * *", &c) < 0 && strstr(pgk_errmsg(), "minute"), "minute out of range: %s", pgk_errmsg());
	ok(cron_parse("* * * *", &c) < 0 && strstr(pgk_errmsg(), "five fields"), "four fields: %s", pgk_errmsg());
	ok(cron_parse("* * * * * *", &c) < 0, "six fields");
	ok(cron_parse("5-1 * * * *", &c) < 0 && strstr(pgk_errmsg(), "backwards"), "backwards range: %s", pgk_errmsg());
	ok(cron_parse("* * * foo *", &c) < 0 && strstr(pgk_errmsg(), "month"), "bad month name: %s", pgk_errmsg());
	ok(cron_parse("*/0 * * * *", &c) < 0 && strstr(pgk_errmsg(), "step"), "zero step: %s", pgk_errmsg());
	ok(cron_parse("", &c) < 0, "empty");

	/* Spring forward in Berlin: 02:30 does not exist on 2026-03-29. */
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	base = at(2026, 3, 28, 12, 0);
	is_str(next("30 2 * * *", base), "2026-03-30 02:30 Mon", "a time the DST change skips runs the next day");
	is_str(next("30 3 * * *", base), "2026-03-29 03:30 Sun", "and the hour after it exists");
	return done_testing();
}

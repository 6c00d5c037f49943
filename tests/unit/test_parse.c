/*
 * The checked parsers behind every numeric option and config value: whole
 * strings only, overflow refused, one duration syntax, and target times read
 * strictly within their own string.  Cases are tables.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/parse.h"
#include "tap.h"

#define REFUSED INT64_MIN

static const struct {
	const char *text;
	int64_t min, max;
	int64_t want;		/* REFUSED: refused */
	const char *msg;	/* in the refusal */
} ints[] = {
	{ "1", 1, 64, 1, NULL },
	{ "64", 1, 64, 64, NULL },
	{ "0", 1, 64, REFUSED, "out of range: 1 to 64" },
	{ "65", 1, 64, REFUSED, "out of range" },
	{ "99999999999999999999", 1, 64, REFUSED, "out of range" },
	{ "99999999999999999999", 0, INT64_MAX, REFUSED, "out of range" },
	{ "9223372036854775807", 0, INT64_MAX, INT64_MAX, NULL },
	{ "-1", 1, 64, REFUSED, "whole number from 1 to 64" },
	{ "-5", -10, 10, -5, NULL },
	{ "-", -10, 10, REFUSED, "whole number" },
	{ "", 1, 64, REFUSED, "whole number" },
	{ " 4", 1, 64, REFUSED, "whole number" },
	{ "4 ", 1, 64, REFUSED, "whole number" },
	{ "+4", 1, 64, REFUSED, "whole number" },
	{ "4x", 1, 64, REFUSED, "whole number" },
	{ "0x10", 0, 64, REFUSED, "whole number" },
	{ "abc", 1, 64, REFUSED, "whole number" },
	{ "007", 1, 64, 7, NULL },
};

static void test_ints(void)
{
	size_t i;
	int64_t v;
	int n, rc;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		v = -42;
		rc = parse_int64("--jobs", ints[i].text, ints[i].min, ints[i].max, &v);
		if (ints[i].want == REFUSED)
			ok(rc == PGKEEP_EINVAL && v == -42 && strstr(pgk_errmsg(), ints[i].msg) &&
			   strstr(pgk_errmsg(), "--jobs: bad value"),
			   "'%s' in [%lld, %lld] refused: %s", ints[i].text, (long long)ints[i].min,
			   (long long)ints[i].max, pgk_errmsg());
		else
			ok(rc == 0 && v == ints[i].want, "'%s' is %lld", ints[i].text,
			   (long long)ints[i].want);
	}
	ok(parse_int("jobs", "2147483648", 0, INT_MAX, &n) < 0, "parse_int: INT_MAX + 1 refused");
	ok(parse_int("jobs", "12", 0, INT_MAX, &n) == 0 && n == 12, "parse_int: 12");
}

#define BARE PARSE_BARE_SECONDS
#define DAY 86400LL

static const struct {
	const char *text;
	int flags;
	int64_t max;
	int64_t want;
	const char *msg;
} durations[] = {
	{ "1h", BARE, INT64_MAX, 3600, NULL },
	{ "90", BARE, INT64_MAX, 90, NULL },
	{ "0", BARE, INT64_MAX, 0, NULL },
	{ "0", 0, INT64_MAX, 0, NULL },
	{ "90", 0, INT64_MAX, REFUSED, "number and a unit" },
	{ "45s", 0, INT64_MAX, 45, NULL },
	{ "5min", BARE, INT64_MAX, 300, NULL },
	{ "1h30min", BARE, INT64_MAX, 5400, NULL },
	{ "2d", 0, INT64_MAX, 2 * DAY, NULL },
	{ "3w", 0, INT64_MAX, 21 * DAY, NULL },
	{ "1mon", 0, INT64_MAX, 30 * DAY, NULL },
	{ "2month", 0, INT64_MAX, 60 * DAY, NULL },
	{ "1y", 0, INT64_MAX, 365 * DAY, NULL },
	{ "1y6mon", 0, INT64_MAX, (365 + 180) * DAY, NULL },
	{ "5m", BARE, INT64_MAX, REFUSED, "'m' is ambiguous: write min for minutes or mon for months" },
	{ "1y6m", 0, INT64_MAX, REFUSED, "'m' is ambiguous" },
	{ "5m3s", BARE, INT64_MAX, REFUSED, "'m' is ambiguous" },
	{ "5mins", BARE, INT64_MAX, REFUSED, "unknown unit 'mins'" },
	{ "2days", BARE, INT64_MAX, REFUSED, "unknown unit 'days'" },
	{ "5sec", BARE, INT64_MAX, REFUSED, "unknown unit 'sec'" },
	{ "5H", BARE, INT64_MAX, REFUSED, "unknown unit 'H'" },
	{ "5sX", BARE, INT64_MAX, REFUSED, "unknown unit 'sX'" },
	{ "5Min", BARE, INT64_MAX, REFUSED, "unknown unit 'Min'" },
	{ "1h30", BARE, INT64_MAX, REFUSED, "without a unit" },
	{ "abc", BARE, INT64_MAX, REFUSED, "seconds, or a number and a unit" },
	{ "", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "h", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "-1h", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "-5", BARE, INT64_MAX, REFUSED, "bad value" },
	{ " 5", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "5 ", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "5 min", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "1h ", BARE, INT64_MAX, REFUSED, "bad value" },
	{ "2h", BARE, 3600, REFUSED, "too long: at most 3600 seconds" },
	{ "3601", BARE, 3600, REFUSED, "too long" },
	{ "99999999999999999999", BARE, INT64_MAX, REFUSED, "too long" },
	{ "99999999999999999999s", BARE, INT64_MAX, REFUSED, "too long" },
	{ "300000000000y", BARE, INT64_MAX, REFUSED, "too long" },
	{ "9223372036854775807s1s", BARE, INT64_MAX, REFUSED, "too long" },
};

static void test_durations(void)
{
	size_t i;
	int64_t v;
	int n, rc;

	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		v = -42;
		rc = parse_duration("--grace", durations[i].text, durations[i].flags,
				    durations[i].max, &v);
		if (durations[i].want == REFUSED)
			ok(rc == PGKEEP_EINVAL && v == -42 && strstr(pgk_errmsg(), durations[i].msg) &&
			   strstr(pgk_errmsg(), "--grace: bad value"),
			   "'%s'%s refused: %s", durations[i].text,
			   durations[i].flags ? "" : " (unit required)", pgk_errmsg());
		else
			ok(rc == 0 && v == durations[i].want, "'%s'%s is %lld s (got %lld)",
			   durations[i].text, durations[i].flags ? "" : " (unit required)",
			   (long long)durations[i].want, (long long)v);
	}
	ok(parse_seconds("--timeout", "1h", INT_MAX, &n) == 0 && n == 3600,
	   "--timeout 1h is an hour, not a second");
	ok(parse_seconds("--timeout", "abc", INT_MAX, &n) < 0, "--timeout abc refused, not zero");
	ok(parse_seconds("--timeout", "100y", INT_MAX, &n) < 0 && strstr(pgk_errmsg(), "too long"),
	   "a duration beyond an int refused: %s", pgk_errmsg());
}

#define T0 1771597800LL		/* 2026-02-20 14:30:00Z */

static const struct {
	const char *text;
	int64_t sec;		/* REFUSED: refused */
	int32_t usec;
} times[] = {
	{ "2026-02-20 14:30:00Z", T0, 0 },
	{ "2026-02-20 14:30Z", T0, 0 },
	{ "2026-02-20T14:30:00Z", T0, 0 },
	{ "2026-02-20 14:30:00 UTC", T0, 0 },
	{ "2026-02-20 14:30:05+00", T0 + 5, 0 },
	{ "2026-02-20 15:30:05+01", T0 + 5, 0 },
	{ "2026-02-20 15:30:05 +01:00", T0 + 5, 0 },
	{ "2026-02-20 16:00:05+0130", T0 + 5, 0 },
	{ "2026-02-20 13:00:05-01:30", T0 + 5, 0 },
	{ "2026-02-20 14:30:05.5Z", T0 + 5, 500000 },
	{ "2026-02-20 14:30:05.000001Z", T0 + 5, 1 },
	{ "2026-02-20 14:30:05.123456+00:00", T0 + 5, 123456 },
	{ "2024-02-29 00:00:00Z", 1709164800LL, 0 },
	{ "2026-02-20 14:30:5", REFUSED, 0 },
	{ "2026-02-20 14:30:5Z", REFUSED, 0 },
	{ "2026-02-20 14:3", REFUSED, 0 },
	{ "2026-02-20 4:30", REFUSED, 0 },
	{ "2026-2-20 14:30", REFUSED, 0 },
	{ "2026-02-20", REFUSED, 0 },
	{ "2026-02-20 14:30:05.", REFUSED, 0 },
	{ "2026-02-20 14:30:05.1234567Z", REFUSED, 0 },
	{ "2026-02-30 14:30Z", REFUSED, 0 },
	{ "2025-02-29 14:30Z", REFUSED, 0 },
	{ "2026-13-01 14:30Z", REFUSED, 0 },
	{ "2026-00-01 14:30Z", REFUSED, 0 },
	{ "2026-02-20 24:00Z", REFUSED, 0 },
	{ "2026-02-20 14:60Z", REFUSED, 0 },
	{ "2026-02-20 14:30:60Z", REFUSED, 0 },
	{ "2026-02-20 14:30+16", REFUSED, 0 },
	{ "2026-02-20 14:30+01:60", REFUSED, 0 },
	{ "2026-02-20 14:30+1", REFUSED, 0 },
	{ "2026-02-20 14:30+01:3", REFUSED, 0 },
	{ "2026-02-20 14:30+01:00x", REFUSED, 0 },
	{ "2026-02-20 14:30 GMT", REFUSED, 0 },
	{ "2026-02-20 14:30Zx", REFUSED, 0 },
	{ "2026-02-20 14:30 ", REFUSED, 0 },
	{ "2026-02-20  14:30", REFUSED, 0 },
	{ "2026-02-20 14:30  Z", REFUSED, 0 },
	{ " 2026-02-20 14:30Z", REFUSED, 0 },
	{ "yesterday", REFUSED, 0 },
	{ "", REFUSED, 0 },
};

static void test_times(void)
{
	struct parse_time pt;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		memset(&pt, 0, sizeof(pt));
		rc = parse_timestamp("--target-time", times[i].text, &pt);
		if (times[i].sec == REFUSED)
			ok(rc == PGKEEP_EINVAL && strstr(pgk_errmsg(), "--target-time: bad value"),
			   "'%s' refused: %s", times[i].text, pgk_errmsg());
		else
			ok(rc == 0 && pt.sec == times[i].sec && pt.usec == times[i].usec,
			   "'%s' is %lld.%06d (got %lld.%06d%s%s)", times[i].text,
			   (long long)times[i].sec, (int)times[i].usec, (long long)pt.sec,
			   (int)pt.usec, rc ? ": " : "", rc ? pgk_errmsg() : "");
	}
}

/*
 * argv strings lie end to end: a one-digit second must not let the parser
 * step over the NUL and take the next argument as its zone.
 */
static void test_no_read_past_end(void)
{
	static const char args[] = "2026-02-20 14:30:5\0+05\0--pgdata";
	static const char frac[] = "2026-02-20 14:30:05.\0" "123Z";
	struct parse_time pt;

	ok(parse_timestamp("--target-time", args, &pt) == PGKEEP_EINVAL,
	   "a one-digit second with '+05' in the next argument is refused");
	ok(parse_timestamp("--target-time", frac, &pt) == PGKEEP_EINVAL,
	   "a bare '.' with digits in the next argument is refused");
}

static void test_local_time(void)
{
	struct parse_time pt;

	/* POSIX TZ: "CET-1" is one hour east of UTC, no daylight saving */
	setenv("TZ", "CET-1", 1);
	tzset();
	ok(parse_timestamp("--time", "2026-02-20 15:30:05", &pt) == 0 && pt.sec == T0 + 5,
	   "no zone: local time (%lld)", (long long)pt.sec);
	setenv("TZ", "UTC0", 1);
	tzset();
	ok(parse_timestamp("--time", "2026-02-20 14:30:05.25", &pt) == 0 && pt.sec == T0 + 5 &&
	   pt.usec == 250000, "no zone, UTC here, with a fraction");
}

int main(void)
{
	test_ints();
	test_durations();
	test_times();
	test_no_read_past_end();
	test_local_time();
	return done_testing();
}

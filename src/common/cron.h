/*
 * Cron-style schedules for `pgkeep daemon`: five fields (minute, hour, day of
 * month, month, day of week) with *, lists, ranges, steps and month/day
 * names, or one of @hourly @daily @weekly @monthly @yearly.  Times are local.
 */
#ifndef PGK_CRON_H
#define PGK_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct cron_spec {
	uint64_t minute;	/* bit n: minute n */
	uint32_t hour;
	uint32_t dom;		/* bits 1..31 */
	uint16_t month;		/* bits 1..12 */
	uint8_t dow;		/* bits 0..6, Sunday = 0 */
	bool dom_any, dow_any;	/* "*" given: matters for the dom/dow rule */
};

/* Parse; on error pgk_error says which field and why. */
int cron_parse(const char *text, struct cron_spec *out);

/* The first matching minute strictly after `after`, or -1 if none within
 * five years (e.g. February 30th). */
time_t cron_next(const struct cron_spec *c, time_t after);

#endif

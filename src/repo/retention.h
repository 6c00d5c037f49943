/*
 * Retention policy: which backups to keep, decided on recorded start times,
 * in calendar buckets of local time the way restic's `forget` does.  A
 * policy with no rule keeps everything; the newest backup and pinned backups
 * are always kept.
 */
#ifndef PGK_RETENTION_H
#define PGK_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct retention_policy {
	int keep_last;
	int keep_hourly;
	int keep_daily;
	int keep_weekly;	/* ISO weeks */
	int keep_monthly;
	int keep_yearly;
	int64_t keep_within;	/* seconds before the newest backup; 0 = unset */
};

struct retention_item {
	int64_t start_time;	/* in: seconds since the epoch */
	bool pinned;		/* in */
	bool keep;		/* out */
	char reason[96];	/* out: the rules that keep it, or why it goes */
};

/* True when the policy has at least one rule. */
bool retention_has_rules(const struct retention_policy *p);

/*
 * Decide for every item; items may come in any order.  Ties in start time
 * are broken by position (a later item counts as newer).
 */
void retention_apply(const struct retention_policy *p, struct retention_item *items, size_t n);

/*
 * Parse one config setting into p ("keep_last", "3"); returns 0, or a
 * negative code with pgk_error set (the caller adds file and line).
 */
int retention_set(struct retention_policy *p, const char *key, const char *value);

#endif

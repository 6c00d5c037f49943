/*
 * Numbers, durations and points in time as the command line and the config
 * spell them: one checked parser each, so every option refuses the same bad
 * text the same way, with a message naming the option or key.
 */
#ifndef PGK_PARSE_H
#define PGK_PARSE_H

#include <stdint.h>

#include "common/numparse.h"

/*
 * A whole decimal integer within [min, max]: digits only (a '-' first when
 * min < 0), no spaces, no '+', nothing after.  what names the option or key
 * in the message ("--jobs", "jobs").  0, or PGKEEP_EINVAL with the message set.
 */
int parse_int64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out);
int parse_int(const char *what, const char *s, int min, int max, int *out);

/*
 * A duration in seconds: one or more NUMBER UNIT groups ("1h30min"), units
 *   s  min  h  d  w  mon|month (30 days)  y (365 days)
 * lower case, no plurals, no spaces.  A lone "m" is refused as ambiguous
 * (min or mon?).  With PARSE_BARE_SECONDS a plain number is seconds; without
 * it only "0" may go without a unit.  Anything above max is refused.
 */
int parse_duration(const char *what, const char *s, int flags, int64_t max, int64_t *out);
/* The same into an int, plain seconds allowed: timeouts, lock waits. */
int parse_seconds(const char *what, const char *s, int max, int *out);

/*
 * A point in time: 'YYYY-MM-DD HH:MM[:SS[.ffffff]][ ]ZONE' (or a 'T' for the
 * space), ZONE one of nothing (local time), Z, UTC, +HH, +HH:MM, +HHMM or
 * the same with '-'.  Every field is range-checked and nothing outside s is
 * read; up to six fraction digits.
 */
int parse_timestamp(const char *what, const char *s, struct parse_time *out);

#endif

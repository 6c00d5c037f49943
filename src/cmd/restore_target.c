/*
 * restore's recovery target: the --target-* values checked and normalised
 * (a time to UTC, so PostgreSQL's own timezone cannot shift it), and
 * whether a backup finished early enough to reach the target.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/restore.h"
#include "common/error.h"
#include "common/parse.h"
#include "pg/backup_label.h"

/*
 * Without a zone the time is local, as a person typing it means; we hand
 * PostgreSQL the same instant in UTC so its own timezone setting cannot
 * shift it.
 */
static int parse_target_time(struct restore_opts *o)
{
	struct parse_time pt;
	struct tm utc;
	time_t t;

	if (parse_timestamp("--target-time", o->target_value, &pt) < 0)
		return PGKEEP_EINVAL;
	o->target_sec = pt.sec;
	o->target_usec = pt.usec;
	t = (time_t)pt.sec;
	gmtime_r(&t, &utc);
	snprintf(o->target_norm, sizeof(o->target_norm),
		 "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", utc.tm_year + 1900, utc.tm_mon + 1,
		 utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, o->target_usec);
	return 0;
}

int set_target(struct restore_opts *o, enum recovery_target t, const char *v)
{
	if (o->target != TARGET_NONE)
		return pgk_error(PGKEEP_EINVAL, "give at most one of --target-time, --target-lsn, "
				 "--target-xid, --target-name and --target-immediate");
	o->target = t;
	o->target_value = v;
	if (t == TARGET_TIME)
		return parse_target_time(o);
	if (t == TARGET_LSN && pg_lsn_parse(v, &o->target_lsn) < 0)
		return pgk_error(PGKEEP_EINVAL, "--target-lsn '%s' is not an LSN like 0/3000028", v);
	if (t == TARGET_XID && (strspn(v, "0123456789") != strlen(v) || !*v))
		return pgk_error(PGKEEP_EINVAL, "--target-xid '%s' is not a transaction id", v);
	if (t == TARGET_NAME && !*v)
		return pgk_error(PGKEEP_EINVAL, "--target-name is empty");
	return 0;
}

bool restore_target_reached(const struct manifest *m, const struct restore_opts *o)
{
	if (o->target == TARGET_TIME)
		return manifest_stop_us(m) <= o->target_sec * 1000000 + o->target_usec;
	if (o->target == TARGET_LSN)
		return m->stop_lsn <= o->target_lsn;
	return true;
}

/*
 * Formatting shared by backup, restore, list and info.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_util.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/lock.h"
#include "repo/manifest.h"

void human_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024.0 && u < sizeof(units) / sizeof(units[0]) - 1) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%" PRIu64 " B", bytes);
	else
		snprintf(out, outlen, "%.1f %s", v, units[u]);
}

void human_duration(int64_t secs, char *out, size_t outlen)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(out, outlen, "%" PRId64 "s", secs);
	else if (secs < 3600)
		snprintf(out, outlen, "%" PRId64 "m%02" PRId64 "s", secs / 60, secs % 60);
	else
		snprintf(out, outlen, "%" PRId64 "h%02" PRId64 "m", secs / 3600, secs / 60 % 60);
}

void local_time_text(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm);
}

void iso_utc_text(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t backup_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int backup_default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n < BACKUP_DEFAULT_JOBS ? (int)n : BACKUP_DEFAULT_JOBS;
}

static bool same_source(const struct manifest *a, const struct manifest *b)
{
	if (a->type != b->type || a->sysid != b->sysid)
		return false;
	if (a->type != BACKUP_DUMP)
		return true;
	return a->dbname && b->dbname ? strcmp(a->dbname, b->dbname) == 0 : a->dbname == b->dbname;
}

int backup_reference(struct repo *r, const struct manifest *m, struct manifest *ref)
{
	struct manifest *list = NULL;
	size_t n = 0, i;
	int ret;

	memset(ref, 0, sizeof(*ref));
	if (!r->delta)
		return 0;
	ret = manifest_list_summary(r, &list, &n);
	if (ret == 0) {
		for (i = n; i-- > 0;)
			if (same_source(&list[i], m))
				break;
		ret = i < n ? manifest_load(r, list[i].id, ref) : 0;
		if (ret == 0 && i < n)
			ret = 1;
	}
	if (ret == PGKEEP_ECORRUPT || ret == PGKEEP_EAUTH) {
		/* Damage is verify's to report; this backup stores whole chunks. */
		pgk_log_warning("no deltas in this backup: %s", pgk_errmsg());
		pgk_error_clear();
		ret = 0;
	}
	if (ret <= 0) {
		manifest_free(ref);
		memset(ref, 0, sizeof(*ref));
	}
	manifest_list_free(list, n);
	return ret;
}

const struct manifest_stream *backup_ref_stream(const struct manifest *ref, const char *name)
{
	size_t i;

	for (i = 0; ref && i < ref->nstreams; i++)
		if (ref->streams[i].name && strcmp(ref->streams[i].name, name) == 0)
			return &ref->streams[i];
	return NULL;
}

/*
 * The B2 plugin's settings: each repository option checked and stored as it
 * comes, then the whole checked together (endpoint transport, key file,
 * prefix, lock mode) once all are in.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b2.h"
#include "b2name.h"
#include "common/numparse.h"

static int b2_set_str(char **dst, const char *key, const char *v, char *err)
{
	if (*dst)
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: option %s given twice", key);
	*dst = strdup(v);
	return *dst ? 0 : pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
}

static int b2_set_num(long long *dst, const char *key, const char *v,
		      long long lo, long long hi, char *err)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: option %s: '%s' is not a number from %lld to %lld",
				   key, v, lo, hi);
	*dst = n;
	return 0;
}

static int b2_set_bool(bool *dst, const char *key, const char *v, char *err)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcasecmp(v, "true") ||
	    !strcmp(v, "1"))
		*dst = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcasecmp(v, "false") ||
		 !strcmp(v, "0"))
		*dst = false;
	else
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: option %s must be yes or no, not '%s'",
				   key, v);
	return 0;
}

/* A duration as the agent reads one (common/numparse.h): "90", "30s", "2min". */
static int b2_set_secs(long long *dst, const char *key, const char *v, long long lo,
		       long long hi, char *err)
{
	char msg[256];
	int64_t n;

	if (numparse_duration(key, v, PARSE_BARE_SECONDS, hi, &n, msg, sizeof(msg)) < 0)
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: option %s", msg);
	if (n < lo)
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: option %s: at least %lld s, not '%s'",
				   key, lo, v);
	*dst = n;
	return 0;
}

static int b2_read_key_file(struct b2 *b, const char *path, char *err)
{
	char line[512];
	size_t n;
	FILE *f;

	if (b->app_key)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: give application_key or application_key_file, not both");
	f = fopen(path, "re");
	if (!f)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: application_key_file %s: %s", path,
				   strerror(errno));
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (!n)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: application_key_file %s is empty", path);
	b->app_key = strdup(line);
	explicit_bzero(line, sizeof(line));
	return b->app_key ? 0 : pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
}

int b2_option(struct b2 *b, const char *k, const char *v, char *err)
{
	long long n;
	int ret;

	if (!strcmp(k, "key_id"))
		return b2_set_str(&b->key_id, k, v, err);
	if (!strcmp(k, "application_key"))
		return b2_set_str(&b->app_key, k, v, err);
	if (!strcmp(k, "application_key_file"))
		return b2_read_key_file(b, v, err);
	if (!strcmp(k, "bucket"))
		return b2_set_str(&b->bucket, k, v, err);
	if (!strcmp(k, "prefix"))
		return b2_set_str(&b->prefix, k, v, err);
	if (!strcmp(k, "api_url"))
		return b2_set_str(&b->auth_url, k, v, err);
	if (!strcmp(k, "test_mode"))
		return b2_set_str(&b->test_mode, k, v, err);
	if (!strcmp(k, "lock_mode")) {
		if (strcmp(v, "governance") && strcmp(v, "compliance"))
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "b2: lock_mode must be governance or compliance, not '%s'", v);
		snprintf(b->lock_mode, sizeof(b->lock_mode), "%s", v);
		return 0;
	}
	if (!strcmp(k, "lock_days")) {
		ret = b2_set_num(&n, k, v, 0, 36500, err);
		b->lock_days = ret ? 0 : (int)n;
	} else if (!strcmp(k, "part_size")) {
		ret = b2_set_num(&n, k, v, 1, 5000000000LL, err);
		b->part_size = ret ? 0 : (uint64_t)n;
	} else if (!strcmp(k, "connect_timeout")) {
		ret = b2_set_secs(&n, k, v, 1, 3600, err);
		b->connect_timeout = ret ? 0 : (long)n;
	} else if (!strcmp(k, "timeout")) {
		ret = b2_set_secs(&n, k, v, 1, 86400, err);
		b->timeout = ret ? 0 : (long)n;
	} else if (!strcmp(k, "retry_max")) {
		ret = b2_set_num(&n, k, v, 1, 100, err);
		b->retry_max = ret ? 0 : (int)n;
	} else if (!strcmp(k, "allow_insecure")) {
		ret = b2_set_bool(&b->allow_insecure, k, v, err);
	} else if (!strcmp(k, "retry_base_ms")) {
		ret = b2_set_num(&n, k, v, 1, 60000, err);
		b->retry_base_ms = ret ? 0 : (long)n;
	} else {
		ret = pgkeep_fail(err, PGKEEP_EINVAL, "b2: unknown option '%s'", k);
	}
	return ret;
}

/* Refuse plain HTTP before the key is sent; announce it on every open when allowed. */
static int b2_check_transport(struct b2 *b, char *err)
{
	int ret = b2_url_check(b, b->auth_url, "api_url", err);

	if (ret)
		return ret;
	if (!strncasecmp(b->auth_url, "http://", 7))
		b2_log(PGKEEP_LOG_WARNING,
		       "b2: api_url %s (bucket %s) is plain HTTP: the application key, its tokens and the data cross the network unencrypted (allow_insecure = yes)",
		       b->auth_url, b->bucket);
	return 0;
}

/* Check what the options leave open and fill in defaults. */
int b2_settle(struct b2 *b, char *err)
{
	size_t n;
	char *p;

	if (!b->key_id || !b->app_key || !b->bucket)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: key_id, application_key (or application_key_file) and bucket are required");
	if (!b->auth_url && !(b->auth_url = strdup(B2_DEFAULT_API_URL)))
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	n = strlen(b->auth_url);
	while (n && b->auth_url[n - 1] == '/')
		b->auth_url[--n] = '\0';
	if (!b->prefix && !(b->prefix = strdup("")))
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	while (b->prefix[0] == '/')
		memmove(b->prefix, b->prefix + 1, strlen(b->prefix));
	n = strlen(b->prefix);
	if (n && b->prefix[n - 1] != '/') {
		if (asprintf(&p, "%s/", b->prefix) < 0)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		free(b->prefix);
		b->prefix = p;
	}
	if (n && !b2_name_valid(b->prefix))
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: prefix '%s' is not a valid B2 file name",
				   b->prefix);
	if (!b->lock_mode[0])
		snprintf(b->lock_mode, sizeof(b->lock_mode), "governance");
	return b2_check_transport(b, err);
}

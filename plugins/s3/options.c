/*
 * The S3 plugin's [repo:NAME] options: parsed and checked once at open, with
 * credentials from the options, from files named by them, or from the usual
 * AWS_* environment variables.  plugins/s3/README.md documents each option.
 */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "common/numparse.h"

enum opt_kind { OPT_STR, OPT_SECRET_FILE, OPT_BOOL, OPT_INT, OPT_LONG, OPT_SIZE, OPT_SECONDS };

struct opt_def {
	const char *key;
	enum opt_kind kind;
	size_t offset; /* into struct s3_store */
	long long min, max;
};

#define STR(k, f) { k, OPT_STR, offsetof(struct s3_store, f), 0, 0 }
#define SECRET_FILE(k, f) { k, OPT_SECRET_FILE, offsetof(struct s3_store, f), 0, 0 }
#define BOOL(k, f) { k, OPT_BOOL, offsetof(struct s3_store, f), 0, 1 }
#define INT(k, f, lo, hi) { k, OPT_INT, offsetof(struct s3_store, f), lo, hi }
#define LONG(k, f, lo, hi) { k, OPT_LONG, offsetof(struct s3_store, f), lo, hi }
/* A duration as the agent reads one (common/numparse.h), into a long. */
#define SECONDS(k, f, lo, hi) { k, OPT_SECONDS, offsetof(struct s3_store, f), lo, hi }

static const struct opt_def opt_defs[] = {
	STR("endpoint", endpoint),
	STR("region", region),
	STR("bucket", bucket),
	STR("prefix", prefix),
	{ "uri_style", OPT_STR, 0, 0, 0 }, /* handled by name */
	STR("access_key_id", access_key_id),
	SECRET_FILE("access_key_id_file", access_key_id),
	STR("secret_access_key", secret_access_key),
	SECRET_FILE("secret_access_key_file", secret_access_key),
	STR("session_token", session_token),
	SECRET_FILE("session_token_file", session_token),
	BOOL("tls_verify", tls_verify),
	BOOL("allow_insecure", allow_insecure),
	STR("ca_file", ca_file),
	STR("storage_class", storage_class),
	STR("sse", sse),
	STR("sse_kms_key_id", sse_kms_key_id),
	{ "part_size", OPT_SIZE, offsetof(struct s3_store, part_size), S3_MIN_PART,
	  S3_MAX_PART },
	INT("upload_threads", upload_threads, 1, 32),
	INT("lock_days", lock_days, 0, 36500),
	STR("lock_mode", lock_mode),
	BOOL("if_none_match", if_none_match),
	SECONDS("connect_timeout", connect_timeout, 1, 3600),
	SECONDS("timeout", timeout, 1, 86400),
	INT("retries", retries, 0, 100),
	LONG("retry_wait_ms", retry_wait_ms, 1, 600000),
	INT("list_max_keys", list_max_keys, 1, 1000),
};

static int parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* "16MiB", "8M", "5242880": binary units, as part sizes are always meant. */
static int parse_size(const char *v, unsigned long long *out)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	errno = 0;
	if (*v < '0' || *v > '9')
		return -1;
	n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -1;
	while (*end == ' ')
		end++;
	if (*end == 'k' || *end == 'K')
		shift = 10, end++;
	else if (*end == 'm' || *end == 'M')
		shift = 20, end++;
	else if (*end == 'g' || *end == 'G')
		shift = 30, end++;
	/* A shift that drops bits would wrap a huge size into range. */
	if (n > ULLONG_MAX >> shift)
		return -1;
	n <<= shift;
	if (!strcasecmp(end, "ib") || !strcasecmp(end, "b"))
		end += strlen(end);
	if (*end)
		return -1;
	*out = n;
	return 0;
}

/* Read a credential from a file: first line, surrounding blanks dropped. */
static int read_secret_file(const char *key, const char *path, char **out,
			    char *err)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	size_t n;
	char *p;

	if (!f)
		return pgkeep_fail(err, PGKEEP_EINVAL, "s3: %s: cannot open %s: %s",
				   key, path, strerror(errno));
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	for (p = line; isspace((unsigned char)*p); p++)
		;
	while (n && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	if (!*p) {
		OPENSSL_cleanse(line, sizeof(line));
		return pgkeep_fail(err, PGKEEP_EINVAL, "s3: %s: %s is empty", key, path);
	}
	*out = strdup(p);
	OPENSSL_cleanse(line, sizeof(line));
	return *out ? PGKEEP_OK : PGKEEP_ENOMEM;
}

static int set_option(struct s3_store *st, const struct opt_def *d,
		      const char *value, char *err)
{
	char *base = (char *)st + d->offset;
	unsigned long long size;
	char *end, msg[256];
	int64_t secs;
	long long n;
	int b;

	switch (d->kind) {
	case OPT_STR:
		free(*(char **)base);
		*(char **)base = strdup(value);
		return *(char **)base ? PGKEEP_OK : PGKEEP_ENOMEM;
	case OPT_SECRET_FILE:
		free(*(char **)base);
		*(char **)base = NULL;
		return read_secret_file(d->key, value, (char **)base, err);
	case OPT_BOOL:
		if (parse_bool(value, &b))
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: %s must be on or off, not '%s'", d->key, value);
		*(int *)base = b;
		return PGKEEP_OK;
	case OPT_INT:
	case OPT_LONG:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno || end == value || *end || n < d->min || n > d->max)
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: %s must be an integer from %lld to %lld, not '%s'",
					   d->key, d->min, d->max, value);
		if (d->kind == OPT_LONG)
			*(long *)base = (long)n;
		else
			*(int *)base = (int)n;
		return PGKEEP_OK;
	case OPT_SECONDS:
		if (numparse_duration(d->key, value, PARSE_BARE_SECONDS, d->max, &secs, msg,
				      sizeof(msg)) < 0)
			return pgkeep_fail(err, PGKEEP_EINVAL, "s3: %s", msg);
		if (secs < d->min)
			return pgkeep_fail(err, PGKEEP_EINVAL, "s3: %s: at least %lld s, not '%s'",
					   d->key, d->min, value);
		*(long *)base = (long)secs;
		return PGKEEP_OK;
	case OPT_SIZE:
		if (parse_size(value, &size) || size < (unsigned long long)d->min ||
		    size > (unsigned long long)d->max)
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: %s must be a size from 5MiB to 5GiB, not '%s'",
					   d->key, value);
		*(size_t *)base = (size_t)size;
		return PGKEEP_OK;
	}
	return PGKEEP_EINVAL;
}

static int set_defaults(struct s3_store *st)
{
	st->tls_verify = 1;
	st->part_size = 16 * S3_MIB;
	st->upload_threads = 4;
	st->connect_timeout = 10;
	st->timeout = 60;
	st->retries = PGKEEP_RETRY_ATTEMPTS - 1;
	st->retry_wait_ms = 250;
	st->list_max_keys = 1000;
	return PGKEEP_OK;
}

static int dup_env(char **dst, const char *name)
{
	const char *v = getenv(name);

	if (*dst || !v || !*v)
		return PGKEEP_OK;
	*dst = strdup(v);
	return *dst ? PGKEEP_OK : PGKEEP_ENOMEM;
}

/* Split endpoint into scheme and host; a bare host means https. */
static int parse_endpoint(struct s3_store *st, char *err)
{
	const char *e = st->endpoint, *sep, *host;
	size_t n;

	if (!e) {
		if (asprintf(&st->endpoint, "https://s3.%s.amazonaws.com", st->region) < 0)
			return PGKEEP_ENOMEM;
		e = st->endpoint;
	}
	sep = strstr(e, "://");
	if (sep) {
		if (strncasecmp(e, "https://", 8) && strncasecmp(e, "http://", 7))
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: endpoint '%s' must start with https:// or http://", e);
		st->scheme = strndup(e, (size_t)(sep - e));
		host = sep + 3;
	} else {
		st->scheme = strdup("https");
		host = e;
	}
	n = strcspn(host, "/");
	if (host[n] && strcmp(host + n, "/"))
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: endpoint '%s' must not have a path: put it in prefix", e);
	if (!n)
		return pgkeep_fail(err, PGKEEP_EINVAL, "s3: endpoint '%s' has no host", e);
	st->host = strndup(host, n);
	if (!st->scheme || !st->host)
		return PGKEEP_ENOMEM;
	for (char *p = st->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	free(st->endpoint);
	if (asprintf(&st->endpoint, "%s://%s", st->scheme, st->host) < 0) {
		st->endpoint = NULL;
		return PGKEEP_ENOMEM;
	}
	return PGKEEP_OK;
}

/* Keys become prefix + key: the prefix loses leading slashes, gains one at the end. */
static int normalise_prefix(struct s3_store *st)
{
	const char *p = st->prefix ? st->prefix : "";
	char *out;
	size_t n;

	while (*p == '/')
		p++;
	n = strlen(p);
	out = malloc(n + 2);
	if (!out)
		return PGKEEP_ENOMEM;
	memcpy(out, p, n);
	if (n && p[n - 1] != '/')
		out[n++] = '/';
	out[n] = '\0';
	free(st->prefix);
	st->prefix = out;
	return PGKEEP_OK;
}

static int check_choices(struct s3_store *st, char *err)
{
	if (st->sse && strcmp(st->sse, "AES256") && strcmp(st->sse, "aws:kms"))
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: sse must be AES256 or aws:kms, not '%s'", st->sse);
	if (st->sse_kms_key_id && (!st->sse || strcmp(st->sse, "aws:kms")))
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: sse_kms_key_id needs sse = aws:kms");
	if (st->lock_mode) {
		char *m = st->lock_mode;

		for (char *p = m; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		if (strcmp(m, "GOVERNANCE") && strcmp(m, "COMPLIANCE"))
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: lock_mode must be governance or compliance, not '%s'",
					   st->lock_mode);
	} else {
		st->lock_mode = strdup("GOVERNANCE");
		if (!st->lock_mode)
			return PGKEEP_ENOMEM;
	}
	if (!st->bucket || !*st->bucket)
		return pgkeep_fail(err, PGKEEP_EINVAL, "s3: option bucket is required");
	if (strchr(st->bucket, '/'))
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: bucket '%s' must not contain '/': use prefix", st->bucket);
	if (!st->access_key_id || !st->secret_access_key)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: bucket '%s': no credentials: set access_key_id and secret_access_key (or their _file variants, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
				   st->bucket);
	return PGKEEP_OK;
}

/*
 * Every request is signed, so plain HTTP would carry the access key id, a
 * replayable signature, any session token and the data in clear: refused
 * unless allow_insecure says the operator accepts it, and then announced on
 * every open, as is a certificate that goes unchecked.
 */
static int check_transport(struct s3_store *st, char *err)
{
	if (!strcmp(st->scheme, "http")) {
		if (!st->allow_insecure)
			return pgkeep_fail(err, PGKEEP_EINVAL,
					   "s3: endpoint %s is plain HTTP, which would send the access key id, request signatures and data unencrypted: use https://, or set allow_insecure = yes to accept that",
					   st->endpoint);
		s3_log(PGKEEP_LOG_WARNING,
		       "s3: endpoint %s (bucket '%s') is plain HTTP: credentials and data cross the network unencrypted (allow_insecure = yes)",
		       st->endpoint, st->bucket);
	} else if (!st->tls_verify) {
		s3_log(PGKEEP_LOG_WARNING,
		       "s3: endpoint %s (bucket '%s') with tls_verify = off: the server's certificate is not checked, so anyone on the path can pose as the store",
		       st->endpoint, st->bucket);
	}
	return PGKEEP_OK;
}

int s3_options_parse(struct s3_store *st, const struct pgkeep_option *opts,
		     size_t nopts, char *err)
{
	size_t i, j;
	int rc;

	set_defaults(st);
	for (i = 0; i < nopts; i++) {
		const struct opt_def *d = NULL;

		for (j = 0; j < sizeof(opt_defs) / sizeof(opt_defs[0]); j++)
			if (!strcmp(opts[i].key, opt_defs[j].key))
				d = &opt_defs[j];
		if (!d)
			return pgkeep_fail(err, PGKEEP_EINVAL, "s3: unknown option '%s'",
					   opts[i].key);
		if (!strcmp(d->key, "uri_style")) {
			if (!strcmp(opts[i].value, "path"))
				st->path_style = 1;
			else if (!strcmp(opts[i].value, "host"))
				st->path_style = 0;
			else
				return pgkeep_fail(err, PGKEEP_EINVAL,
						   "s3: uri_style must be path or host, not '%s'",
						   opts[i].value);
			continue;
		}
		rc = set_option(st, d, opts[i].value ? opts[i].value : "", err);
		if (rc)
			return rc;
	}
	if ((rc = dup_env(&st->access_key_id, "AWS_ACCESS_KEY_ID")) ||
	    (rc = dup_env(&st->secret_access_key, "AWS_SECRET_ACCESS_KEY")) ||
	    (rc = dup_env(&st->session_token, "AWS_SESSION_TOKEN")))
		return rc;
	if (!st->region && !(st->region = strdup("us-east-1")))
		return PGKEEP_ENOMEM;
	if ((rc = check_choices(st, err)) || (rc = parse_endpoint(st, err)) ||
	    (rc = normalise_prefix(st)) || (rc = check_transport(st, err)))
		return rc;
	/* A bucket with dots breaks the TLS wildcard in host style. */
	if (!st->path_style && strchr(st->bucket, '.') && !strcmp(st->scheme, "https"))
		s3_log(PGKEEP_LOG_WARNING,
		       "s3: bucket '%s' has dots, which fail TLS checks with uri_style = host; consider uri_style = path",
		       st->bucket);
	return PGKEEP_OK;
}

static void free_secret(char **s)
{
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void s3_options_free(struct s3_store *st)
{
	free(st->endpoint);
	free(st->scheme);
	free(st->host);
	free(st->region);
	free(st->bucket);
	free(st->prefix);
	free_secret(&st->access_key_id);
	free_secret(&st->secret_access_key);
	free_secret(&st->session_token);
	free(st->ca_file);
	free(st->storage_class);
	free(st->sse);
	free(st->sse_kms_key_id);
	free(st->lock_mode);
}

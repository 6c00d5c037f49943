/*
 * The s3 storage plugin: AWS S3 and S3-compatible stores (MinIO, Ceph,
 * Backblaze B2's S3 endpoint, R2 ...).  This file holds the ops table and the
 * read-side calls; put.c does uploads, http.c the transport, sigv4.c signing.
 *
 * "Only if absent": S3 makes a create atomic with `If-None-Match: *` (412
 * when the key exists), but stores that predate it, s3rver among them,
 * silently ignore the header.  So by default the plugin checks with HEAD
 * before the final PUT (a race between two writers of one key can slip
 * through), and sends If-None-Match only when the option if_none_match = on
 * says the store honours it.  Because the ABI's feature bits are per plugin,
 * not per handle, PGKEEP_FEAT_IF_ABSENT_ATOMIC is never advertised.
 *
 * A HEAD reply has no body, so stat cannot tell a missing bucket from a
 * missing key; get can, and reports a missing bucket as an error, never as
 * "not found".
 */
#include "s3.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "http.h"
#include "xml.h"

static const struct pgkeep_host *host;

void s3_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!host || !host->log)
		return;
	va_start(ap, fmt);
	host->log(level, fmt, ap);
	va_end(ap);
}

int s3_buf_add(struct s3_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return PGKEEP_ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return PGKEEP_OK;
}

int s3_buf_printf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return PGKEEP_ENOMEM;
	n = s3_buf_add(b, s, (size_t)n);
	free(s);
	return n;
}

void s3_buf_free(struct s3_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *s3_object_name(const struct s3_store *st, const char *key)
{
	char *s;

	if (asprintf(&s, "%s%s", st->prefix, key) < 0)
		return NULL;
	return s;
}

int s3_key_object(const struct s3_store *st, const char *key, bool prefix, char **obj,
		  char *err)
{
	if (!(prefix ? pgkeep_prefix_valid(key) : pgkeep_key_valid(key)))
		return pgkeep_fail(err, PGKEEP_EINVAL, "s3: invalid %s '%s'",
				   prefix ? "prefix" : "key", key);
	*obj = s3_object_name(st, key);
	if (!*obj)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	return PGKEEP_OK;
}

void s3_iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2026-02-20T14:30:00.000Z" and the like; 0 when unreadable. */
int64_t s3_parse_iso8601(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	if (!s)
		return 0;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	return (int64_t)timegm(&tm);
}

static int s3_open(void **handle, const struct pgkeep_option *opts, size_t nopts,
		   char *err)
{
	struct s3_store *st = calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	pthread_mutex_init(&st->pool_lock, NULL);
	rc = s3_options_parse(st, opts, nopts, err);
	if (rc) {
		if (rc == PGKEEP_ENOMEM)
			pgkeep_fail(err, rc, "s3: out of memory");
		s3_options_free(st);
		pthread_mutex_destroy(&st->pool_lock);
		free(st);
		return rc;
	}
	s3_http_global_init();
	*handle = st;
	return PGKEEP_OK;
}

static void s3_close(void *handle)
{
	struct s3_store *st = handle;

	if (!st)
		return;
	s3_http_pool_free(st);
	s3_options_free(st);
	pthread_mutex_destroy(&st->pool_lock);
	free(st);
}

/* A 404 that names the bucket is a broken configuration, not a missing key. */
static int not_found_or_fail(struct s3_store *st, const char *what, const char *obj,
			     const struct s3_response *resp, char *err)
{
	int rc = s3_fail_reply(st, what, obj, resp, err);

	if (rc == PGKEEP_ENOTFOUND && resp->body.data &&
	    strstr(resp->body.data, "<Code>NoSuchBucket<"))
		rc = PGKEEP_EIO;
	return rc;
}

/*
 * A HEAD reply has no body to tell NoSuchBucket from NoSuchKey, so a 404 is
 * confirmed with a HEAD of the bucket: a missing bucket must never pass for
 * a missing key (wal-fetch would take it for the end of the archive).
 */
static int check_bucket(struct s3_store *st, const char *obj, int rc, char *err)
{
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	int brc;

	rq.method = "HEAD";
	rq.object = NULL;
	rq.what = "stat (bucket check)";
	brc = s3_http(st, &rq, &resp, err);
	if (!brc && resp.status == 404)
		brc = pgkeep_fail(err, PGKEEP_EIO,
				  "s3: stat of '%s' in bucket '%s' failed: the bucket does not exist",
				  obj, st->bucket);
	else if (!brc && resp.status != 200)
		brc = s3_fail_reply(st, "stat (bucket check)", obj, &resp, err);
	else if (!brc)
		brc = rc;
	s3_response_free(&resp);
	return brc;
}

static int s3_stat(void *handle, const char *key, struct pgkeep_stat *out, char *err)
{
	struct s3_store *st = handle;
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	char *obj;
	int rc;

	rc = s3_key_object(st, key, false, &obj, err);
	if (rc)
		return rc;
	rq.method = "HEAD";
	rq.object = obj;
	rq.what = "stat";
	rc = s3_http(st, &rq, &resp, err);
	if (rc)
		goto out_free;
	if (resp.status == 200) {
		out->size = resp.have_length ? resp.content_length : 0;
		out->mtime = resp.mtime;
	} else {
		rc = not_found_or_fail(st, "stat", obj, &resp, err);
		if (rc == PGKEEP_ENOTFOUND)
			rc = check_bucket(st, obj, rc, err);
	}
out_free:
	s3_response_free(&resp);
	free(obj);
	return rc;
}

static int s3_get(void *handle, const char *key, uint64_t offset, uint64_t length,
		  pgkeep_sink_fn sink, void *payload, char *err)
{
	struct s3_store *st = handle;
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	struct pgkeep_stat sst;
	char *obj;
	int rc;

	if (length == 0)
		return s3_stat(handle, key, &sst, err);
	rc = s3_key_object(st, key, false, &obj, err);
	if (rc)
		return rc;
	rq.method = "GET";
	rq.object = obj;
	rq.what = "get";
	rq.sink = sink;
	rq.payload = payload;
	rq.ranged = offset > 0 || length != UINT64_MAX;
	rq.range_off = offset;
	rq.range_len = length;
	if (length != UINT64_MAX && offset + length < offset) {
		rc = pgkeep_fail(err, PGKEEP_EINVAL, "s3: get of '%s': range overflows", obj);
		goto out_free;
	}
	rc = s3_http(st, &rq, &resp, err);
	if (rc)
		goto out_free;
	if (resp.status == 416 && offset > 0) {
		/* Reading at or past the end: nothing to deliver. */
		rc = PGKEEP_OK;
	} else if (resp.status != 200 && resp.status != 206) {
		rc = not_found_or_fail(st, "get", obj, &resp, err);
	}
out_free:
	s3_response_free(&resp);
	free(obj);
	return rc;
}

static int list_page(struct s3_store *st, const struct s3_response *resp,
		     pgkeep_list_fn cb, void *payload, char *err)
{
	const char *body = resp->body.data ? resp->body.data : "", *inner;
	size_t plen = strlen(st->prefix), pos = 0, n;

	while (xml_next(body, resp->body.len, "Contents", &pos, &inner, &n)) {
		char *key = xml_text(inner, n, "Key");
		char *size = xml_text(inner, n, "Size");
		char *mtime = xml_text(inner, n, "LastModified");
		struct pgkeep_stat sst = { 0 };
		int rc = PGKEEP_OK;

		if (!key) {
			rc = pgkeep_fail(err, PGKEEP_EIO,
					 "s3: list of bucket '%s': an entry without a Key", st->bucket);
		} else if (strncmp(key, st->prefix, plen) == 0) {
			sst.size = size ? strtoull(size, NULL, 10) : 0;
			sst.mtime = s3_parse_iso8601(mtime);
			rc = cb(payload, key + plen, &sst);
		}
		free(key);
		free(size);
		free(mtime);
		if (rc)
			return rc;
	}
	return PGKEEP_OK;
}

static int s3_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
		   char *err)
{
	struct s3_store *st = handle;
	char *full, *token = NULL;
	char max_keys[16];
	int rc;

	rc = s3_key_object(st, prefix, true, &full, err);
	if (rc)
		return rc;
	snprintf(max_keys, sizeof(max_keys), "%d", st->list_max_keys);
	do {
		struct sigv4_param q[4] = {
			{ "list-type", "2" }, { "prefix", full }, { "max-keys", max_keys },
			{ "continuation-token", token },
		};
		struct s3_response resp = { 0 };
		struct s3_request rq = { 0 };
		char *truncated;

		rq.method = "GET";
		rq.params = q;
		rq.nparams = token ? 4 : 3;
		rq.what = "list";
		rq.object = NULL;
		rc = s3_http(st, &rq, &resp, err);
		if (!rc && resp.status != 200)
			rc = not_found_or_fail(st, "list", full, &resp, err);
		if (rc == PGKEEP_ENOTFOUND)
			rc = PGKEEP_EIO;
		if (!rc)
			rc = list_page(st, &resp, cb, payload, err);
		free(token);
		token = NULL;
		if (!rc) {
			const char *b = resp.body.data ? resp.body.data : "";

			truncated = xml_text(b, resp.body.len, "IsTruncated");
			if (truncated && !strcmp(truncated, "true")) {
				token = xml_text(b, resp.body.len, "NextContinuationToken");
				if (!token)
					rc = pgkeep_fail(err, PGKEEP_EIO,
							 "s3: list of '%s' in bucket '%s': truncated reply without NextContinuationToken",
							 full, st->bucket);
			}
			free(truncated);
		}
		s3_response_free(&resp);
	} while (!rc && token);
	free(token);
	free(full);
	return rc;
}

static int s3_remove(void *handle, const char *key, char *err)
{
	struct s3_store *st = handle;
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	char *obj;
	int rc;

	rc = s3_key_object(st, key, false, &obj, err);
	if (rc)
		return rc;
	rq.method = "DELETE";
	rq.object = obj;
	rq.what = "delete";
	rc = s3_http(st, &rq, &resp, err);
	if (!rc && resp.status != 204 && resp.status != 200 && resp.status != 404)
		rc = s3_fail_reply(st, "delete", obj, &resp, err);
	if (rc == PGKEEP_ENOTFOUND)
		rc = PGKEEP_EIO; /* NoSuchBucket: a 404 on NoSuchKey never gets here */
	s3_response_free(&resp);
	free(obj);
	return rc;
}

/* base64(MD5(data)) for Content-MD5. */
void s3_content_md5(const void *data, size_t len, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
}

static int s3_lock_until(void *handle, const char *key, int64_t until, char *err)
{
	struct s3_store *st = handle;
	struct sigv4_param q[] = { { "retention", NULL } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	struct s3_buf body = { 0 };
	char date[32], md5[32];
	char *obj;
	int rc;

	rc = s3_key_object(st, key, false, &obj, err);
	if (rc)
		return rc;
	s3_iso8601(until, date);
	if (s3_buf_printf(&body,
			  "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			  "<Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
			  st->lock_mode, date)) {
		rc = pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
		goto out_free;
	}
	s3_content_md5(body.data, body.len, md5);
	{
		const struct s3_hdr h[] = { { "Content-MD5", md5 },
					    { "Content-Type", "application/xml" } };

		rq.method = "PUT";
		rq.object = obj;
		rq.params = q;
		rq.nparams = 1;
		rq.headers = h;
		rq.nheaders = 2;
		rq.body = body.data;
		rq.body_len = body.len;
		rq.what = "lock";
		rc = s3_http(st, &rq, &resp, err);
	}
	if (!rc && resp.status != 200 && resp.status != 204)
		rc = s3_fail_reply(st, "lock", obj, &resp, err);
out_free:
	s3_response_free(&resp);
	s3_buf_free(&body);
	free(obj);
	return rc;
}

static int s3_locked_until(void *handle, const char *key, int64_t *until, char *err)
{
	struct s3_store *st = handle;
	struct sigv4_param q[] = { { "retention", NULL } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	char *obj, *date;
	const char *b;
	int rc;

	rc = s3_key_object(st, key, false, &obj, err);
	if (rc)
		return rc;
	*until = 0;
	rq.method = "GET";
	rq.object = obj;
	rq.params = q;
	rq.nparams = 1;
	rq.what = "read retention of";
	rc = s3_http(st, &rq, &resp, err);
	b = resp.body.data ? resp.body.data : "";
	if (rc)
		goto out_free;
	if (resp.status == 200) {
		date = xml_text(b, resp.body.len, "RetainUntilDate");
		*until = s3_parse_iso8601(date);
		free(date);
	} else if (strstr(b, "<Code>NoSuchObjectLockConfiguration<") ||
		   (resp.status == 400 && strstr(b, "<Code>InvalidRequest<"))) {
		/* No retention on the object, or none possible in the bucket. */
		rc = PGKEEP_OK;
	} else {
		rc = not_found_or_fail(st, "read retention of", obj, &resp, err);
	}
out_free:
	s3_response_free(&resp);
	free(obj);
	return rc;
}

static const struct pgkeep_storage_ops s3_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "s3",
	.features = PGKEEP_FEAT_LOCK | PGKEEP_FEAT_RANGE_GET,
	.open = s3_open,
	.close = s3_close,
	.put_begin = s3_put_begin,
	.put_write = s3_put_write,
	.put_commit = s3_put_commit,
	.put_abort = s3_put_abort,
	.get = s3_get,
	.stat = s3_stat,
	.list = s3_list,
	.remove = s3_remove,
	.lock_until = s3_lock_until,
	.locked_until = s3_locked_until,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *h);

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *h)
{
	/* A host table too short to hold log is treated as having none. */
	if (h && h->struct_size >= offsetof(struct pgkeep_host, log) + sizeof(h->log))
		host = h;
	return &s3_ops;
}

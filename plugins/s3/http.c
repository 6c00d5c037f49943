/*
 * The S3 plugin's transport: builds the URL for the configured addressing
 * style, signs with sigv4.c, sends with libcurl on a pooled handle (so that
 * connections are reused and every thread has its own handle), and applies
 * the retry policy described in http.h.
 */
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "xml.h"

/* Error bodies and listings are small; a server sending more is broken. */
#define S3_MAX_REPLY (64u * S3_MIB)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	/* Never undone: other plugins in the process may use curl too. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void s3_http_global_init(void)
{
	pthread_once(&global_once, global_init);
}

static CURL *handle_get(struct s3_store *st)
{
	CURL *h = NULL;

	pthread_mutex_lock(&st->pool_lock);
	if (st->npool)
		h = st->pool[--st->npool];
	pthread_mutex_unlock(&st->pool_lock);
	if (h) {
		/* Keeps the handle's connections, forgets the last request. */
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

static void handle_put(struct s3_store *st, CURL *h)
{
	pthread_mutex_lock(&st->pool_lock);
	if (st->npool == st->cap_pool) {
		size_t cap = st->cap_pool ? st->cap_pool * 2 : 8;
		void **p = realloc(st->pool, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&st->pool_lock);
			curl_easy_cleanup(h);
			return;
		}
		st->pool = p;
		st->cap_pool = cap;
	}
	st->pool[st->npool++] = h;
	pthread_mutex_unlock(&st->pool_lock);
}

void s3_http_pool_free(struct s3_store *st)
{
	while (st->npool)
		curl_easy_cleanup(st->pool[--st->npool]);
	free(st->pool);
	st->pool = NULL;
	st->cap_pool = 0;
}

void s3_response_free(struct s3_response *resp)
{
	s3_buf_free(&resp->body);
}

/* The path as signed (unencoded) and the URL as sent. */
static int make_target(struct s3_store *st, const struct s3_request *rq,
		       struct s3_buf *path, struct s3_buf *url)
{
	char *enc_path, *enc;
	size_t i;
	int rc = 0;

	if (st->path_style)
		rc |= s3_buf_printf(path, "/%s/%s", st->bucket, rq->object ? rq->object : "");
	else
		rc |= s3_buf_printf(path, "/%s", rq->object ? rq->object : "");
	if (rc)
		return PGKEEP_ENOMEM;
	enc_path = sigv4_uri_encode(path->data, 1);
	if (!enc_path)
		return PGKEEP_ENOMEM;
	if (st->path_style)
		rc |= s3_buf_printf(url, "%s://%s%s", st->scheme, st->host, enc_path);
	else
		rc |= s3_buf_printf(url, "%s://%s.%s%s", st->scheme, st->bucket,
				    st->host, enc_path);
	free(enc_path);
	for (i = 0; i < rq->nparams && !rc; i++) {
		enc = sigv4_uri_encode(rq->params[i].name, 0);
		rc |= !enc || s3_buf_printf(url, "%c%s", i ? '&' : '?', enc);
		free(enc);
		if (rq->params[i].value && !rc) {
			enc = sigv4_uri_encode(rq->params[i].value, 0);
			rc |= !enc || s3_buf_printf(url, "=%s", enc);
			free(enc);
		}
	}
	return rc ? PGKEEP_ENOMEM : PGKEEP_OK;
}

struct signed_headers {
	struct curl_slist *list;
	char range[96];
};

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	struct s3_buf line = { 0 };
	struct curl_slist *l;

	if (s3_buf_printf(&line, "%s: %s", name, value))
		return PGKEEP_ENOMEM;
	l = curl_slist_append(*list, line.data);
	s3_buf_free(&line);
	if (!l)
		return PGKEEP_ENOMEM;
	*list = l;
	return PGKEEP_OK;
}

/* Every header we send, signed, plus the Authorization that signs them. */
static int sign_request(struct s3_store *st, const struct s3_request *rq,
			const char *path, uint64_t resume, struct curl_slist **out)
{
	struct sigv4_header h[32];
	struct sigv4_credentials cred = { st->access_key_id, st->secret_access_key,
					  st->region, "s3" };
	struct sigv4_request sr = { 0 };
	char date[17], payload[65], range[96], host[512];
	size_t n = 0, i;
	char *auth;
	int rc = 0;

	if (rq->nheaders > 24)
		return PGKEEP_EINVAL;
	if (st->path_style)
		snprintf(host, sizeof(host), "%s", st->host);
	else
		snprintf(host, sizeof(host), "%s.%s", st->bucket, st->host);
	sigv4_amz_date(time(NULL), date);
	if (rq->body && rq->body_len)
		sigv4_sha256_hex(rq->body, rq->body_len, payload);
	else
		strcpy(payload, SIGV4_EMPTY_SHA256);
	h[n++] = (struct sigv4_header){ "Host", host };
	h[n++] = (struct sigv4_header){ "x-amz-date", date };
	h[n++] = (struct sigv4_header){ "x-amz-content-sha256", payload };
	if (st->session_token)
		h[n++] = (struct sigv4_header){ "x-amz-security-token", st->session_token };
	if (rq->ranged || resume) {
		uint64_t from = rq->range_off + resume;

		if (rq->range_len == UINT64_MAX)
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)from);
		else
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
				 (unsigned long long)(rq->range_off + rq->range_len - 1));
		h[n++] = (struct sigv4_header){ "Range", range };
	}
	for (i = 0; i < rq->nheaders; i++)
		h[n++] = (struct sigv4_header){ rq->headers[i].name, rq->headers[i].value };

	sr.method = rq->method;
	sr.path = path;
	sr.params = rq->params;
	sr.nparams = rq->nparams;
	sr.headers = h;
	sr.nheaders = n;
	sr.payload_hash = payload;
	auth = sigv4_authorization(&sr, &cred, date);
	if (!auth)
		return PGKEEP_ENOMEM;
	for (i = 0; i < n && !rc; i++)
		rc = add_header(out, h[i].name, h[i].value);
	if (!rc)
		rc = add_header(out, "Authorization", auth);
	free(auth);
	/* No "Expect: 100-continue" round trip; no form content type on POST. */
	if (!rc) {
		struct curl_slist *l = curl_slist_append(*out, "Expect:");

		if (!l)
			return PGKEEP_ENOMEM;
		*out = l;
	}
	return rc;
}

struct xfer {
	const struct s3_request *rq;
	struct s3_response *resp;
	CURL *h;
	uint64_t delivered; /* bytes given to the sink, over all attempts */
	int sink_rc;
	int too_big;
	int sent_range;	   /* this attempt asked for a byte range */
	int ignored_range; /* ... and got the whole object instead */
	const char *body;
	size_t body_len, body_pos;
};

static int status_ok(long status)
{
	return status >= 200 && status < 300;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (x->rq->sink && status_ok(status)) {
		int rc;

		if (status == 200 && x->sent_range) {
			x->ignored_range = 1;
			return 0;
		}
		rc = x->rq->sink(x->rq->payload, data, n);

		if (rc) {
			x->sink_rc = rc;
			return 0;
		}
		x->delivered += n;
		return n;
	}
	if (x->resp->body.len + n > S3_MAX_REPLY) {
		x->too_big = 1;
		return 0;
	}
	if (s3_buf_add(&x->resp->body, data, n))
		return 0;
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	if (n > x->body_len - x->body_pos)
		n = x->body_len - x->body_pos;
	memcpy(buf, x->body + x->body_pos, n);
	x->body_pos += n;
	return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int header_is(const char *line, size_t n, const char *name, const char **value,
		     size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return 0;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	*value = line;
	*vlen = n;
	return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, vlen;
	const char *v;
	char tmp[256];

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new response (after 100 Continue, say): forget the last. */
		x->resp->have_length = 0;
		x->resp->mtime = 0;
		x->resp->etag[0] = '\0';
		return n;
	}
	if (header_is(line, n, "Content-Length", &v, &vlen) && vlen < sizeof(tmp)) {
		memcpy(tmp, v, vlen);
		tmp[vlen] = '\0';
		x->resp->content_length = strtoull(tmp, NULL, 10);
		x->resp->have_length = 1;
	} else if (header_is(line, n, "Last-Modified", &v, &vlen) && vlen < sizeof(tmp)) {
		memcpy(tmp, v, vlen);
		tmp[vlen] = '\0';
		x->resp->mtime = curl_getdate(tmp, NULL);
		if (x->resp->mtime < 0)
			x->resp->mtime = 0;
	} else if (header_is(line, n, "ETag", &v, &vlen) &&
		   vlen < sizeof(x->resp->etag)) {
		memcpy(x->resp->etag, v, vlen);
		x->resp->etag[vlen] = '\0';
	}
	return n;
}

static void set_method(CURL *h, const struct s3_request *rq, struct xfer *x)
{
	if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(rq->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (!strcmp(rq->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
}

static void set_transport(struct s3_store *st, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Only the endpoint's own scheme: nothing may downgrade https to http. */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, st->scheme);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, st->connect_timeout);
	/* A transfer that moves nothing for `timeout` seconds is stalled. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, st->timeout);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "pgkeep-s3/1");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, st->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, st->tls_verify ? 2L : 0L);
	if (st->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, st->ca_file);
}

/* One attempt; returns the CURLcode and fills resp. */
static CURLcode perform_once(struct s3_store *st, CURL *h, const struct s3_request *rq,
			     const char *url, struct curl_slist *hdrs, struct xfer *x)
{
	CURLcode cc;

	set_transport(st, h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	set_method(h, rq, x);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->resp->status);
	return cc;
}

static int curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_WRITE_ERROR:
		return 0;
	default:
		return 1;
	}
}

static int status_retryable(long status, const struct s3_buf *body)
{
	/* 501 NotImplemented is an answer, not a hiccup. */
	if ((status >= 500 && status != 501) || status == 429)
		return 1;
	/* S3 gives up on a slow request body with 400 RequestTimeout. */
	return status == 400 && body->data && strstr(body->data, "<Code>RequestTimeout<");
}

static long backoff_ms(struct s3_store *st, int attempt)
{
	static __thread unsigned seed;
	long ms = st->retry_wait_ms;

	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	while (attempt-- > 0 && ms < 20000)
		ms *= 2;
	if (ms > 20000)
		ms = 20000;
	/* Full jitter in the upper half keeps a herd of clients apart. */
	return ms / 2 + (long)(rand_r(&seed) % (unsigned)(ms / 2 + 1));
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static const char *obj_name(const struct s3_request *rq)
{
	return rq->object ? rq->object : "";
}

static int transport_error(struct s3_store *st, const struct s3_request *rq,
			   CURLcode cc, const char *cerr, char *err)
{
	int code = curl_retryable(cc) ? PGKEEP_ERETRY : PGKEEP_EIO;

	if (cc == CURLE_OPERATION_TIMEDOUT)
		return pgkeep_fail(err, code,
				   "s3: %s of '%s' in bucket '%s' at %s timed out (no progress for %ld s or no connection within %ld s)",
				   rq->what, obj_name(rq), st->bucket, st->endpoint,
				   st->timeout, st->connect_timeout);
	return pgkeep_fail(err, code, "s3: %s of '%s' in bucket '%s' at %s failed: %s",
			   rq->what, obj_name(rq), st->bucket, st->endpoint,
			   cerr[0] ? cerr : curl_easy_strerror(cc));
}

int s3_http(struct s3_store *st, const struct s3_request *rq,
	    struct s3_response *resp, char *err)
{
	struct s3_buf path = { 0 }, url = { 0 };
	char cerr[CURL_ERROR_SIZE];
	struct xfer x = { 0 };
	CURL *h;
	int attempt, rc;

	rc = make_target(st, rq, &path, &url);
	if (rc)
		goto out_free;
	h = handle_get(st);
	if (!h) {
		rc = pgkeep_fail(err, PGKEEP_ENOMEM, "s3: cannot create a curl handle");
		goto out_free;
	}
	x.rq = rq;
	x.resp = resp;
	x.h = h;
	for (attempt = 0;; attempt++) {
		struct curl_slist *hdrs = NULL;
		CURLcode cc;
		long wait;

		s3_buf_free(&resp->body);
		resp->status = 0;
		x.body = rq->body;
		x.body_len = rq->body ? rq->body_len : 0;
		x.body_pos = 0;
		x.sent_range = rq->ranged || x.delivered;
		rc = sign_request(st, rq, path.data, x.delivered, &hdrs);
		if (rc) {
			curl_slist_free_all(hdrs);
			rc = pgkeep_fail(err, rc, "s3: %s of '%s': cannot build the request",
					 rq->what, obj_name(rq));
			break;
		}
		cerr[0] = '\0';
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
		cc = perform_once(st, h, rq, url.data, hdrs, &x);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		curl_slist_free_all(hdrs);
		curl_easy_reset(h);
		if (x.sink_rc) {
			rc = x.sink_rc;
			break;
		}
		if (x.ignored_range) {
			rc = pgkeep_fail(err, PGKEEP_EIO,
					 "s3: %s of '%s' in bucket '%s': the store ignored the Range header",
					 rq->what, obj_name(rq), st->bucket);
			break;
		}
		if (cc == CURLE_OK && (resp->status == 401 || resp->status == 403)) {
			/* Credentials, permissions or clock: retrying cannot help. */
			rc = s3_fail_reply(st, rq->what, rq->object, resp, err);
			break;
		}
		if (cc == CURLE_OK && !status_retryable(resp->status, &resp->body)) {
			rc = PGKEEP_OK;
			break;
		}
		if (x.too_big) {
			rc = pgkeep_fail(err, PGKEEP_EIO,
					 "s3: %s of '%s' in bucket '%s': reply larger than %u MiB",
					 rq->what, obj_name(rq), st->bucket, S3_MAX_REPLY / S3_MIB);
			break;
		}
		if (cc != CURLE_OK)
			rc = transport_error(st, rq, cc, cerr, err);
		else
			rc = s3_fail_reply(st, rq->what, rq->object, resp, err);
		if ((cc != CURLE_OK && !curl_retryable(cc)) || attempt >= st->retries)
			break;
		wait = backoff_ms(st, attempt);
		s3_log(PGKEEP_LOG_WARNING, "%s; retry %d of %d in %ld ms", err,
		       attempt + 1, st->retries, wait);
		sleep_ms(wait);
	}
	handle_put(st, h);
out_free:
	s3_buf_free(&path);
	s3_buf_free(&url);
	if (rc == PGKEEP_ENOMEM && err && !err[0])
		pgkeep_fail(err, rc, "s3: out of memory");
	return rc;
}

static const char *hint_for(const char *code)
{
	static const struct { const char *code, *hint; } hints[] = {
		{ "SignatureDoesNotMatch", "the secret access key is wrong (or the request was altered on the way)" },
		{ "InvalidAccessKeyId", "the access key id is unknown to the store" },
		{ "RequestTimeTooSkewed", "this machine's clock differs from the store's by more than 15 minutes: fix the clock (NTP)" },
		{ "ExpiredToken", "the session token has expired: renew it" },
		{ "InvalidToken", "the session token is malformed or invalid" },
		{ "AccessDenied", "the credentials lack permission for this bucket or key" },
		{ "AuthorizationHeaderMalformed", "check the region option" },
		{ "PermanentRedirect", "the bucket is in another region or needs another endpoint" },
	};
	size_t i;

	for (i = 0; code && i < sizeof(hints) / sizeof(hints[0]); i++)
		if (!strcmp(code, hints[i].code))
			return hints[i].hint;
	return NULL;
}

static int status_code(long status, const char *code)
{
	if (status == 401 || status == 403)
		return PGKEEP_EAUTH;
	if (status == 404)
		return PGKEEP_ENOTFOUND;
	if (status == 412)
		return PGKEEP_EEXISTS;
	if (status == 507 || (code && !strcmp(code, "QuotaExceeded")))
		return PGKEEP_ENOSPC;
	if (status == 501 || status == 405)
		return PGKEEP_EUNSUPPORTED;
	if (status >= 500 || status == 429 || status == 409)
		return PGKEEP_ERETRY;
	return PGKEEP_EIO;
}

int s3_fail_reply(struct s3_store *st, const char *what, const char *object,
		  const struct s3_response *resp, char *err)
{
	const char *body = resp->body.data ? resp->body.data : "";
	char *code = xml_text(body, resp->body.len, "Code");
	char *msg = xml_text(body, resp->body.len, "Message");
	const char *hint = hint_for(code);
	int rc = status_code(resp->status, code);

	if (msg && strlen(msg) > 200)
		strcpy(msg + 197, "...");
	else if (msg && *msg && msg[strlen(msg) - 1] == '.')
		msg[strlen(msg) - 1] = '\0';
	if (!code && (resp->status == 401 || resp->status == 403))
		hint = "access refused; the reply names no reason (HEAD replies carry none): check the credentials, the region and the clock";
	pgkeep_fail(err, rc, "s3: %s of '%s' in bucket '%s' failed: HTTP %ld%s%s%s%s%s%s",
		    what, object ? object : "", st->bucket, resp->status,
		    code ? " " : "", code ? code : "",
		    msg ? ": " : "", msg ? msg : "",
		    hint ? "; " : "", hint ? hint : "");
	free(code);
	free(msg);
	return rc;
}

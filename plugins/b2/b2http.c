/*
 * The HTTP layer of the B2 plugin: one exchange over a curl handle borrowed
 * from the handle's pool (so connections are reused and no handle is shared
 * between threads), B2's error body decoded, and the backoff between tries.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "b2.h"

/* A JSON listing of 10,000 names stays well below this. */
#define B2_MAX_BODY (64u << 20)

struct b2_xfer {
	CURL *curl;
	const struct b2_req *rq;
	struct b2_resp *rs;
	size_t cap;
};

static CURL *b2_curl_take(struct b2 *b)
{
	struct b2_curl *c;
	CURL *curl;

	pthread_mutex_lock(&b->pool_lock);
	c = b->curls;
	if (c)
		b->curls = c->next;
	pthread_mutex_unlock(&b->pool_lock);
	if (!c)
		return curl_easy_init();
	curl = c->curl;
	free(c);
	curl_easy_reset(curl);
	return curl;
}

static void b2_curl_give(struct b2 *b, CURL *curl, bool healthy)
{
	struct b2_curl *c;

	/* A handle whose transfer broke may hold a dead connection. */
	c = healthy ? malloc(sizeof(*c)) : NULL;
	if (!c) {
		curl_easy_cleanup(curl);
		return;
	}
	c->curl = curl;
	pthread_mutex_lock(&b->pool_lock);
	c->next = b->curls;
	b->curls = c;
	pthread_mutex_unlock(&b->pool_lock);
}

void b2_curl_pool_free(struct b2 *b)
{
	struct b2_curl *c;

	while ((c = b->curls)) {
		b->curls = c->next;
		curl_easy_cleanup(c->curl);
		free(c);
	}
}

static int b2_body_append(struct b2_xfer *x, const char *p, size_t n)
{
	struct b2_resp *rs = x->rs;
	char *nb;
	size_t want;

	if (rs->body_len + n + 1 > x->cap) {
		if (rs->body_len + n + 1 > B2_MAX_BODY)
			return -1;
		want = x->cap ? x->cap * 2 : 4096;
		while (want < rs->body_len + n + 1)
			want *= 2;
		nb = realloc(rs->body, want);
		if (!nb)
			return -1;
		rs->body = nb;
		x->cap = want;
	}
	memcpy(rs->body + rs->body_len, p, n);
	rs->body_len += n;
	rs->body[rs->body_len] = '\0';
	return 0;
}

static size_t b2_on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct b2_xfer *x = arg;
	struct b2_resp *rs = x->rs;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (x->rq->sink && status >= 200 && status < 300) {
		rs->sink_rc = x->rq->sink(x->rq->payload, p, n);
		if (rs->sink_rc)
			return 0;
		if (rs->sha_ctx)
			EVP_DigestUpdate(rs->sha_ctx, p, n);
		rs->delivered += n;
		return n;
	}
	return b2_body_append(x, p, n) ? 0 : n;
}

static void b2_header_copy(char *dst, size_t dlen, const char *v, size_t vlen)
{
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
			v[vlen - 1] == ' '))
		vlen--;
	while (vlen && *v == ' ') {
		v++;
		vlen--;
	}
	if (vlen >= dlen)
		vlen = dlen - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

static size_t b2_on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct b2_xfer *x = arg;
	struct b2_resp *rs = x->rs;
	size_t n = size * nmemb;
	const char *colon = memchr(p, ':', n);
	size_t klen, vlen;
	char tmp[32];

	if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
		/* a new response (after 100 Continue): forget the old one */
		rs->retry_after = -1;
		rs->sha1[0] = rs->large_sha1[0] = '\0';
		return n;
	}
	if (!colon)
		return n;
	klen = (size_t)(colon - p);
	vlen = n - klen - 1;
	if (klen == 11 && !strncasecmp(p, "Retry-After", klen)) {
		b2_header_copy(tmp, sizeof(tmp), colon + 1, vlen);
		rs->retry_after = strtol(tmp, NULL, 10);
	} else if (klen == 16 && !strncasecmp(p, "X-Bz-Content-Sha1", klen)) {
		b2_header_copy(rs->sha1, sizeof(rs->sha1), colon + 1, vlen);
	} else if (klen == 25 &&
		   !strncasecmp(p, "X-Bz-Info-large_file_sha1", klen)) {
		b2_header_copy(rs->large_sha1, sizeof(rs->large_sha1),
			       colon + 1, vlen);
	}
	return n;
}

/* Pull {status, code, message} out of a B2 error body. */
static void b2_parse_error(struct b2_resp *rs)
{
	json_object *o;
	const char *s;

	rs->code[0] = rs->message[0] = '\0';
	if (!rs->body)
		return;
	o = json_tokener_parse(rs->body);
	if (!o)
		return;
	if ((s = b2_json_str(o, "code")))
		snprintf(rs->code, sizeof(rs->code), "%s", s);
	if ((s = b2_json_str(o, "message")))
		snprintf(rs->message, sizeof(rs->message), "%s", s);
	json_object_put(o);
}

static void b2_set_common(struct b2 *b, CURL *c, struct b2_xfer *x)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pgkeep-b2/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, b->connect_timeout);
	/* a stall, not a slow large transfer, is what should time out */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, b->timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, b2_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, b2_on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->rs->curl_err);
	/* b2_url_check explains a refusal; this makes sure of it. */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, b->allow_insecure ? "http,https" : "https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS,
			 (long)(b->allow_insecure ? CURLPROTO_HTTP | CURLPROTO_HTTPS : CURLPROTO_HTTPS));
#endif
}

/*
 * Run one exchange.  Returns 0 when an HTTP answer came back (whatever its
 * status), PGKEEP_ERETRY when the transfer failed, or the sink's own value
 * when the sink stopped it.
 */
int b2_http(struct b2 *b, const struct b2_req *rq, struct b2_resp *rs)
{
	struct b2_xfer x = { .rq = rq, .rs = rs };
	struct curl_slist *h = NULL, *it;
	CURLcode cc;
	CURL *c;
	int ret = 0;

	rs->status = 0;
	rs->curl_err[0] = '\0';
	rs->retry_after = -1;
	rs->body_len = 0;
	if (rs->body)
		rs->body[0] = '\0';
	rs->code[0] = rs->message[0] = '\0';
	rs->sink_rc = 0;
	c = b2_curl_take(b);
	if (!c) {
		snprintf(rs->curl_err, sizeof(rs->curl_err), "out of memory");
		return PGKEEP_ENOMEM;
	}
	x.curl = c;
	b2_set_common(b, c, &x);
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	for (it = rq->headers; it; it = it->next)
		h = curl_slist_append(h, it->data);
	/* B2 wants Content-Length and gains nothing from 100-continue */
	h = curl_slist_append(h, "Expect:");
	if (b->test_mode) {
		char line[128];

		snprintf(line, sizeof(line), "X-Bz-Test-Mode: %s", b->test_mode);
		h = curl_slist_append(h, line);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (!strcmp(rq->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)rq->body_len);
	} else if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	}
	if (rq->user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, rq->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, rq->password);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
	if (rs->sink_rc) {
		ret = rs->sink_rc;
	} else if (cc != CURLE_OK) {
		if (!rs->curl_err[0])
			snprintf(rs->curl_err, sizeof(rs->curl_err), "%s",
				 curl_easy_strerror(cc));
		rs->status = 0;
		ret = cc == CURLE_OUT_OF_MEMORY ? PGKEEP_ENOMEM : PGKEEP_ERETRY;
	} else if (rs->status >= 300) {
		b2_parse_error(rs);
	}
	curl_slist_free_all(h);
	b2_curl_give(b, c, cc == CURLE_OK);
	return ret;
}

void b2_resp_free(struct b2_resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->body_len = 0;
}

bool b2_status_retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

/*
 * Sleep before try number attempt+1: retry_base_ms * 1.5^attempt, capped at
 * 64 s, plus up to a quarter of jitter; a Retry-After from B2 wins.
 */
void b2_backoff(struct b2 *b, int attempt, long retry_after)
{
	double ms = (double)b->retry_base_ms;
	struct timespec ts;
	long jitter;
	int i;

	for (i = 0; i < attempt && ms < 64000.0; i++)
		ms *= 1.5;
	if (ms > 64000.0)
		ms = 64000.0;
	if (retry_after >= 0)
		ms = (double)retry_after * 1000.0;
	jitter = (long)(ms / 4.0);
	if (jitter > 0)
		ms += (double)(random() % (jitter + 1));
	ts.tv_sec = (time_t)(ms / 1000.0);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

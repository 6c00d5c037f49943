/*
 * libFuzzer target: everything the B2 plugin reads from B2's answers (the
 * authorisation, bucket, listing, upload and lock JSON, error bodies and
 * the headers it looks at).  The real plugin runs against a fake HTTP layer
 * that hands out the fuzz input as a script of answers, so every parser is
 * reached through the calls that use it.
 *
 * Input: answers separated by "\n%%\n"; each is "STATUS\n", header lines
 * "Name: value\n", an empty line, then the body.  When the script runs out,
 * the fake answers "no connection", which the plugin treats as a failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The real exchange is renamed out of the way; its static helpers (error
 * body, header and body handling) stay in this file for the fake to use.
 */
#define b2_http b2_http_real
#include "b2/b2http.c"
#undef b2_http

int b2_http(struct b2 *b, const struct b2_req *rq, struct b2_resp *rs);
/* The plugin's entry point, compiled in from b2.c (no header declares it). */
const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *script, *script_end;

static const char *next_answer(size_t *len)
{
	const char *start = script, *sep;

	if (!script || script >= script_end)
		return NULL;
	sep = memmem(script, (size_t)(script_end - script), "\n%%\n", 4);
	*len = (size_t)((sep ? sep : script_end) - start);
	script = sep ? sep + 4 : script_end;
	return start;
}

/* Headers through the plugin's own callback, up to the empty line. */
static size_t take_headers(struct b2_xfer *x, const char *p, size_t len)
{
	size_t at = 0;

	while (at < len) {
		const char *nl = memchr(p + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (p + at)) + 1 : len - at;

		if (n == 1 || (n == 2 && p[at] == '\r'))
			return at + n;
		b2_on_header((char *)p + at, 1, n, x);
		at += n;
	}
	return at;
}

int b2_http(struct b2 *b, const struct b2_req *rq, struct b2_resp *rs)
{
	struct b2_xfer x = { .rq = rq, .rs = rs };
	const char *a, *body;
	size_t len, at;

	rs->status = 0;
	rs->retry_after = -1;
	rs->body_len = 0;
	if (rs->body)
		rs->body[0] = '\0';
	rs->code[0] = rs->message[0] = '\0';
	rs->sha1[0] = rs->large_sha1[0] = '\0';
	rs->sink_rc = 0;
	a = next_answer(&len);
	if (!a) {
		snprintf(rs->curl_err, sizeof(rs->curl_err), "fuzz: no more answers");
		return PGKEEP_ERETRY;
	}
	/* The answer is not terminated: read the status digit by digit. */
	for (at = 0; at < len && at < 3 && a[at] >= '0' && a[at] <= '9'; at++)
		rs->status = rs->status * 10 + (a[at] - '0');
	if (rs->status < 100 || rs->status > 599)
		rs->status = 200;
	at = (size_t)(memchr(a, '\n', len) ? (const char *)memchr(a, '\n', len) - a + 1 : len);
	at += take_headers(&x, a + at, len - at);
	/* Waiting is not what is fuzzed here. */
	rs->retry_after = -1;
	body = a + at;
	len -= at;
	if (rq->sink && rs->status >= 200 && rs->status < 300) {
		rs->sink_rc = rq->sink(rq->payload, body, len);
		if (rs->sink_rc)
			return rs->sink_rc;
		if (rs->sha_ctx)
			EVP_DigestUpdate(rs->sha_ctx, body, len);
		rs->delivered += len;
		return 0;
	}
	if (len && b2_body_append(&x, body, len))
		return PGKEEP_ENOMEM;
	if (!rs->body && b2_body_append(&x, "", 0))
		return PGKEEP_ENOMEM;
	if (rs->status >= 300)
		b2_parse_error(rs);
	return 0;
}

static int count_sink(void *payload, const void *buf, size_t len)
{
	*(size_t *)payload += len;
	return 0;
}

static int count_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	if (!key)
		abort();
	++*(size_t *)payload;
	return 0;
}

static void run_calls(const struct pgkeep_storage_ops *ops, void *h)
{
	static const unsigned char blob[300] = { 1, 2, 3 };
	char err[PGKEEP_ERRLEN];
	struct pgkeep_stat st;
	size_t got = 0, keys = 0;
	int64_t until = 0;
	void *put = NULL;

	ops->stat(h, "k/one", &st, err);
	ops->list(h, "k/", count_key, &keys, err);
	ops->get(h, "k/one", 0, UINT64_MAX, count_sink, &got, err);
	ops->get(h, "k/one", 10, 20, count_sink, &got, err);
	if (ops->put_begin(h, "k/two", sizeof(blob), PGKEEP_PUT_IF_ABSENT, &put, err) == 0) {
		if (ops->put_write(put, blob, sizeof(blob), err) == 0)
			ops->put_commit(put, err);
		else
			ops->put_abort(put);
	}
	ops->remove(h, "k/one", err);
	ops->lock_until(h, "k/two", 2000000000, err);
	ops->locked_until(h, "k/two", &until, err);
	/* Every message is a terminated string. */
	if (strnlen(err, sizeof(err)) == sizeof(err))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pgkeep_host host = { PGKEEP_STORAGE_ABI_VERSION, sizeof(host), NULL };
	static const struct pgkeep_option opts[] = {
		{ "key_id", "fuzzkey" }, { "application_key", "fuzzsecret" },
		{ "bucket", "fuzzbucket" }, { "prefix", "p" },
		{ "api_url", "http://127.0.0.1:9" }, { "retry_max", "2" },
		{ "retry_base_ms", "1" }, { "lock_days", "1" },
	};
	const struct pgkeep_storage_ops *ops = pgkeep_storage_plugin_init(&host);
	char err[PGKEEP_ERRLEN];
	char *copy = malloc(size ? size : 1);
	void *h = NULL;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	script = copy;
	script_end = copy + size;
	if (ops->open(&h, opts, sizeof(opts) / sizeof(opts[0]), err) == 0) {
		run_calls(ops, h);
		ops->close(h);
	}
	script = script_end = NULL;
	free(copy);
	return 0;
}

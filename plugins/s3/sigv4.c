/*
 * AWS Signature Version 4 for S3: canonical request, string to sign, signing
 * key and Authorization header.  See sigv4.h; the rules are AWS's "Signature
 * Calculations for the Authorization Header" for S3 (path encoded once).
 */
#include "sigv4.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* A string builder whose only failure is running out of memory, remembered. */
struct sb {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sb *b, const char *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static char *sb_finish(struct sb *b)
{
	if (b->oom || !b->s) {
		free(b->s);
		return b->oom ? NULL : strdup("");
	}
	return b->s;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static void sb_encode(struct sb *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		if (unreserved(*p) || (keep_slash && *p == '/'))
			sb_add(b, (const char *)p, 1);
		else
			sb_add(b, esc, 3);
	}
}

char *sigv4_uri_encode(const char *s, int keep_slash)
{
	struct sb b = { 0 };

	sb_encode(&b, s, keep_slash);
	return sb_finish(&b);
}

struct enc_pair {
	char *name;
	char *value;
};

static int enc_pair_cmp(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

char *sigv4_canonical_query(const struct sigv4_param *params, size_t n)
{
	struct enc_pair *pairs;
	struct sb b = { 0 };
	size_t i;

	pairs = calloc(n ? n : 1, sizeof(*pairs));
	if (!pairs)
		return NULL;
	for (i = 0; i < n; i++) {
		pairs[i].name = sigv4_uri_encode(params[i].name, 0);
		pairs[i].value = sigv4_uri_encode(params[i].value ? params[i].value : "", 0);
		if (!pairs[i].name || !pairs[i].value)
			b.oom = 1;
	}
	if (!b.oom) {
		/* Sorted by encoded name, then value, as AWS and botocore do. */
		qsort(pairs, n, sizeof(*pairs), enc_pair_cmp);
		for (i = 0; i < n; i++) {
			if (i)
				sb_puts(&b, "&");
			sb_puts(&b, pairs[i].name);
			sb_puts(&b, "=");
			sb_puts(&b, pairs[i].value);
		}
	}
	for (i = 0; i < n; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	return sb_finish(&b);
}

struct canon_header {
	char *name;	   /* lower case */
	const char *value; /* as sent */
	size_t order;	   /* keeps repeated headers in sending order */
};

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Trimall: no leading or trailing blanks, inner runs become one space. */
static void sb_trimall(struct sb *b, const char *v)
{
	int pending = 0, started = 0;

	for (; *v; v++) {
		if (is_space(*v)) {
			pending = started;
			continue;
		}
		if (pending)
			sb_add(b, " ", 1);
		pending = 0;
		started = 1;
		sb_add(b, v, 1);
	}
}

static struct canon_header *canon_headers(const struct sigv4_request *req)
{
	struct canon_header *h;
	size_t i, j;

	h = calloc(req->nheaders ? req->nheaders : 1, sizeof(*h));
	if (!h)
		return NULL;
	for (i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name;
		size_t len = strlen(n);

		while (len && is_space(n[len - 1]))
			len--;
		while (len && is_space(*n)) {
			n++;
			len--;
		}
		h[i].name = malloc(len + 1);
		if (!h[i].name)
			goto out_free;
		for (j = 0; j < len; j++) {
			char c = n[j];

			h[i].name[j] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		h[i].name[len] = '\0';
		h[i].value = req->headers[i].value ? req->headers[i].value : "";
		h[i].order = i;
	}
	qsort(h, req->nheaders, sizeof(*h), canon_header_cmp);
	return h;

out_free:
	while (i--)
		free(h[i].name);
	free(h);
	return NULL;
}

static void free_canon_headers(struct canon_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(h[i].name);
	free(h);
}

/* Canonical header lines and the signed-header list, both from sorted h. */
static void sb_headers(struct sb *lines, struct sb *names,
		       const struct canon_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i && strcmp(h[i].name, h[i - 1].name) == 0) {
			/* A repeated header: values joined by commas. */
			sb_puts(lines, ",");
			sb_trimall(lines, h[i].value);
			continue;
		}
		if (i) {
			sb_puts(lines, "\n");
			sb_puts(names, ";");
		}
		sb_puts(lines, h[i].name);
		sb_puts(lines, ":");
		sb_trimall(lines, h[i].value);
		sb_puts(names, h[i].name);
	}
	sb_puts(lines, "\n");
}

static char *canonical_request(const struct sigv4_request *req,
			       char **signed_headers)
{
	struct sb b = { 0 }, lines = { 0 }, names = { 0 };
	struct canon_header *h;
	char *query;

	h = canon_headers(req);
	if (!h)
		return NULL;
	query = sigv4_canonical_query(req->params, req->nparams);
	if (!query)
		b.oom = 1;
	sb_headers(&lines, &names, h, req->nheaders);
	if (lines.oom || names.oom)
		b.oom = 1;
	sb_puts(&b, req->method);
	sb_puts(&b, "\n");
	sb_encode(&b, req->path && *req->path ? req->path : "/", 1);
	sb_puts(&b, "\n");
	sb_puts(&b, query ? query : "");
	sb_puts(&b, "\n");
	sb_puts(&b, lines.s ? lines.s : "\n");
	sb_puts(&b, "\n");
	sb_puts(&b, names.s ? names.s : "");
	sb_puts(&b, "\n");
	sb_puts(&b, req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256);
	free(query);
	free(lines.s);
	free_canon_headers(h, req->nheaders);
	if (signed_headers && !b.oom) {
		*signed_headers = sb_finish(&names);
		if (!*signed_headers)
			b.oom = 1;
	} else {
		free(names.s);
	}
	return sb_finish(&b);
}

char *sigv4_canonical_request(const struct sigv4_request *req)
{
	return canonical_request(req, NULL);
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	to_hex(md, sizeof(md), out);
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hmac(const void *key, size_t keylen, const char *msg,
		 unsigned char out[32])
{
	unsigned int outlen = 32;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	     strlen(msg), out, &outlen);
}

char *sigv4_authorization(const struct sigv4_request *req,
			  const struct sigv4_credentials *cred,
			  const char *amz_date)
{
	char date[9], creq_hash[65], sig[65];
	unsigned char k[32];
	struct sb sts = { 0 }, auth = { 0 }, secret = { 0 };
	char *creq, *signed_headers = NULL;

	creq = canonical_request(req, &signed_headers);
	if (!creq)
		return NULL;
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	sigv4_sha256_hex(creq, strlen(creq), creq_hash);
	free(creq);

	sb_puts(&sts, "AWS4-HMAC-SHA256\n");
	sb_puts(&sts, amz_date);
	sb_puts(&sts, "\n");
	sb_puts(&sts, date);
	sb_puts(&sts, "/");
	sb_puts(&sts, cred->region);
	sb_puts(&sts, "/");
	sb_puts(&sts, cred->service);
	sb_puts(&sts, "/aws4_request\n");
	sb_puts(&sts, creq_hash);

	sb_puts(&secret, "AWS4");
	sb_puts(&secret, cred->secret_access_key);
	if (sts.oom || secret.oom) {
		auth.oom = 1;
		goto out_free;
	}
	hmac(secret.s, secret.len, date, k);
	hmac(k, sizeof(k), cred->region, k);
	hmac(k, sizeof(k), cred->service, k);
	hmac(k, sizeof(k), "aws4_request", k);
	hmac(k, sizeof(k), sts.s, k);
	to_hex(k, sizeof(k), sig);
	OPENSSL_cleanse(k, sizeof(k));

	sb_puts(&auth, "AWS4-HMAC-SHA256 Credential=");
	sb_puts(&auth, cred->access_key_id);
	sb_puts(&auth, "/");
	sb_puts(&auth, date);
	sb_puts(&auth, "/");
	sb_puts(&auth, cred->region);
	sb_puts(&auth, "/");
	sb_puts(&auth, cred->service);
	sb_puts(&auth, "/aws4_request, SignedHeaders=");
	sb_puts(&auth, signed_headers);
	sb_puts(&auth, ", Signature=");
	sb_puts(&auth, sig);

out_free:
	if (secret.s)
		OPENSSL_cleanse(secret.s, secret.cap);
	free(secret.s);
	free(sts.s);
	free(signed_headers);
	return sb_finish(&auth);
}

/*
 * Allocation helpers and the growable buffer used along the data path.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/mem.h"

/*
 * Out of memory: one line and a plain exit, never abort(), whose core file
 * would hold whatever keys the process had.  The status is above 125 so
 * that PostgreSQL, running wal-fetch as restore_command, stops recovery
 * instead of taking the failure for the end of the archive.  _exit: other
 * threads may be running, and nothing else here can be trusted to work.
 */
#define OOM_EXIT_STATUS 128

static void oom(size_t n) __attribute__((noreturn));
static void oom(size_t n)
{
	char msg[160];
	int len;

	len = snprintf(msg, sizeof(msg), "pgkeep: %s%serror: out of memory (allocating %zu bytes)\n",
		       pgk_log_command ? pgk_log_command : "", pgk_log_command ? ": " : "", n);
	if (len > 0 && write(STDERR_FILENO, msg, (size_t)len < sizeof(msg) ? (size_t)len : sizeof(msg) - 1) < 0)
		_exit(OOM_EXIT_STATUS);
	_exit(OOM_EXIT_STATUS);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *xzalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void secure_zero(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void secure_free(void *p, size_t n)
{
	secure_zero(p, n);
	free(p);
}

/* The capacity buf_reserve grows b to for extra more bytes. */
static size_t buf_grown_cap(const struct pgk_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;

	while (cap < need)
		cap = cap < ((size_t)1 << 40) ? cap * 2 : need;
	return cap;
}

void buf_reserve(struct pgk_buf *b, size_t extra)
{
	size_t need = b->len + extra;
	size_t cap;

	if (need <= b->cap)
		return;
	cap = buf_grown_cap(b, need);
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

bool buf_try_reserve(struct pgk_buf *b, size_t extra)
{
	size_t need = b->len + extra, cap;
	void *p;

	if (extra > SIZE_MAX - b->len)
		return false;
	if (need <= b->cap)
		return true;
	cap = buf_grown_cap(b, need);
	p = realloc(b->data, cap);
	if (!p && cap > need)
		p = realloc(b->data, cap = need);	/* doubling asked too much */
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

void buf_append(struct pgk_buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void buf_printf(struct pgk_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_reset(struct pgk_buf *b)
{
	b->len = 0;
}

void buf_free(struct pgk_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_free_secure(struct pgk_buf *b)
{
	secure_zero(b->data, b->cap);
	buf_free(b);
}

char *buf_detach(struct pgk_buf *b)
{
	char *p;

	buf_reserve(b, 1);
	b->data[b->len] = '\0';
	p = (char *)b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool hex_decode(const char *hex, size_t len, uint8_t *out)
{
	int hi, lo;
	size_t i;

	for (i = 0; i < len; i++) {
		hi = hex_digit(hex[2 * i]);
		lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * len] == '\0';
}

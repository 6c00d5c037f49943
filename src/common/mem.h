/*
 * Allocation that never returns NULL (out of memory ends the process with a
 * one-line message and exit status 128, as git's xmalloc does, but without
 * a core file), and a growable byte buffer.
 */
#ifndef PGK_MEM_H
#define PGK_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe then free; for anything that held key material or a passphrase. */
void secure_free(void *p, size_t n);
/* Zeroing that the compiler may not remove. */
void secure_zero(void *p, size_t n);
/* len bytes as 2*len lowercase hex digits and a NUL, into out. */
void hex_encode(const uint8_t *in, size_t len, char *out);
/*
 * The 2*len lowercase hex digits of hex (then a NUL) as len bytes into
 * out; false when hex is anything else.
 */
bool hex_decode(const char *hex, size_t len, uint8_t *out);

struct pgk_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define PGK_BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct pgk_buf *b, size_t extra);
/* buf_reserve for sizes a store or an object decides: false, and b as it
 * was, when the memory cannot be had, where buf_reserve ends the process. */
bool buf_try_reserve(struct pgk_buf *b, size_t extra);
void buf_append(struct pgk_buf *b, const void *data, size_t len);
void buf_printf(struct pgk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct pgk_buf *b);
void buf_free(struct pgk_buf *b);
/* Wipe the contents (whole capacity) before freeing. */
void buf_free_secure(struct pgk_buf *b);
/* Hand the data over to the caller, NUL-terminated; the buffer is emptied. */
char *buf_detach(struct pgk_buf *b);

#endif

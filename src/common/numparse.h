/*
 * The grammar of common/parse.h, for code that cannot use the agent's error
 * reporting (plugins compile numparse.c in): the same functions, returning
 * 0, or -1 with the message in msg (msglen bytes, always terminated).
 */
#ifndef PGK_NUMPARSE_H
#define PGK_NUMPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Durations: a plain number is seconds (see parse_duration). */
#define PARSE_BARE_SECONDS 1

struct parse_time {
	int64_t sec;		/* since the epoch, UTC */
	int32_t usec;		/* 0 .. 999999 */
};

int numparse_int64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out,
		   char *msg, size_t msglen);
int numparse_duration(const char *what, const char *s, int flags, int64_t max, int64_t *out,
		      char *msg, size_t msglen);
int numparse_timestamp(const char *what, const char *s, struct parse_time *out, char *msg,
		       size_t msglen);

#endif

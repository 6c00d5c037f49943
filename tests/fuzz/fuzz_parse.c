/*
 * libFuzzer target: the parsers of numbers, durations and times that every
 * option and config value goes through.  The input is copied to a buffer of
 * its own size plus the NUL, so reading past the end is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct parse_time pt;
	int64_t v;
	int n;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (parse_int64("fuzz", s, -1000, 1000, &v) == 0 && (v < -1000 || v > 1000))
		abort();
	if (parse_duration("fuzz", s, PARSE_BARE_SECONDS, 86400, &v) == 0 && (v < 0 || v > 86400))
		abort();
	if (parse_duration("fuzz", s, 0, INT64_MAX, &v) == 0 && v < 0)
		abort();
	(void)parse_seconds("fuzz", s, 3600, &n);
	if (parse_timestamp("fuzz", s, &pt) == 0 && (pt.usec < 0 || pt.usec > 999999))
		abort();
	free(s);
	return 0;
}

/*
 * The agent's face of the checked parsers (common/numparse.c): the same
 * grammar, the message set as the agent's error.
 */
#include "common/error.h"
#include "common/parse.h"

int parse_int64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out)
{
	char msg[PGKEEP_ERRLEN];

	if (numparse_int64(what, s, min, max, out, msg, sizeof(msg)) < 0)
		return pgk_error(PGKEEP_EINVAL, "%s", msg);
	return 0;
}

int parse_int(const char *what, const char *s, int min, int max, int *out)
{
	int64_t v;
	int rc = parse_int64(what, s, min, max, &v);

	if (rc == 0)
		*out = (int)v;
	return rc;
}

int parse_duration(const char *what, const char *s, int flags, int64_t max, int64_t *out)
{
	char msg[PGKEEP_ERRLEN];

	if (numparse_duration(what, s, flags, max, out, msg, sizeof(msg)) < 0)
		return pgk_error(PGKEEP_EINVAL, "%s", msg);
	return 0;
}

int parse_seconds(const char *what, const char *s, int max, int *out)
{
	int64_t v;
	int rc = parse_duration(what, s, PARSE_BARE_SECONDS, max, &v);

	if (rc == 0)
		*out = (int)v;
	return rc;
}

int parse_timestamp(const char *what, const char *s, struct parse_time *out)
{
	char msg[PGKEEP_ERRLEN];

	if (numparse_timestamp(what, s, out, msg, sizeof(msg)) < 0)
		return pgk_error(PGKEEP_EINVAL, "%s", msg);
	return 0;
}

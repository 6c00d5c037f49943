/*
 * Per-thread error messages.  Only the agent writes here: plugins write into
 * a buffer of their call's own (src/repo/store.c).
 */
#include <stdio.h>
#include <string.h>

#include "common/error.h"

static _Thread_local char errmsg[PGKEEP_ERRLEN];

int pgk_error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int pgk_error_wrap(int code, const char *fmt, ...)
{
	char old[PGKEEP_ERRLEN];
	size_t n;
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	n = strlen(errmsg);
	if (n + 2 < sizeof(errmsg)) {
		memcpy(errmsg + n, ": ", 3);
		strncat(errmsg + n + 2, old, sizeof(errmsg) - n - 3);
	}
	return code;
}

const char *pgk_errmsg(void)
{
	return errmsg;
}

void pgk_error_clear(void)
{
	errmsg[0] = '\0';
}

void pgk_error_save(struct pgk_error_saved *saved)
{
	memcpy(saved->msg, errmsg, sizeof(saved->msg));
}

void pgk_error_restore(const struct pgk_error_saved *saved)
{
	memcpy(errmsg, saved->msg, sizeof(errmsg));
}

const char *pgk_strstatus(int code)
{
	switch (code) {
	case PGKEEP_OK: return "ok";
	case PGKEEP_ENOTFOUND: return "not found";
	case PGKEEP_EEXISTS: return "exists";
	case PGKEEP_EAUTH: return "authentication failed";
	case PGKEEP_ERETRY: return "temporary failure";
	case PGKEEP_EIO: return "I/O error";
	case PGKEEP_ECORRUPT: return "corrupt data";
	case PGKEEP_ENOMEM: return "out of memory";
	case PGKEEP_EINVAL: return "invalid argument";
	case PGKEEP_EUNSUPPORTED: return "not supported";
	case PGKEEP_ENOSPC: return "no space left";
	}
	return "unknown error";
}

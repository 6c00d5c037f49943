/*
 * Error reporting inside the agent: functions return 0 or a negative
 * PGKEEP_E* code, and the message is set once, where the error is detected,
 * in a per-thread buffer that the caller at the top reports.
 */
#ifndef PGK_ERROR_H
#define PGK_ERROR_H

#include <pgkeep/storage.h>

/* Set the calling thread's error message; returns code. */
int pgk_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("what: " + old message). */
int pgk_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The calling thread's last message ("" when none). */
const char *pgk_errmsg(void);
void pgk_error_clear(void);

/*
 * A copy of the calling thread's message.  Cleanup that runs after an error
 * has been decided (releasing a lock, removing what a failed write left) may
 * fail in turn; it saves the message first and restores it after, so that
 * the error returned is still the one that stopped the work.
 */
struct pgk_error_saved {
	char msg[PGKEEP_ERRLEN];
};
void pgk_error_save(struct pgk_error_saved *saved);
void pgk_error_restore(const struct pgk_error_saved *saved);
/* Name of a PGKEEP_E* code, for logs. */
const char *pgk_strstatus(int code);

#endif

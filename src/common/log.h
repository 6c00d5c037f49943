/*
 * Logging to stderr.  Under archive_command stderr lands in PostgreSQL's
 * log, so every line is self-contained: "pgkeep: <command>: <message>".
 */
#ifndef PGK_LOG_H
#define PGK_LOG_H

#include <stdarg.h>

#include <pgkeep/storage.h>

extern int pgk_log_level;	 /* PGKEEP_LOG_*; messages above it are dropped */
extern const char *pgk_log_command; /* current command, for the prefix */

void pgk_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgk_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define pgk_log_error(...) pgk_log(PGKEEP_LOG_ERROR, __VA_ARGS__)
#define pgk_log_warning(...) pgk_log(PGKEEP_LOG_WARNING, __VA_ARGS__)
#define pgk_log_info(...) pgk_log(PGKEEP_LOG_INFO, __VA_ARGS__)
#define pgk_log_debug(...) pgk_log(PGKEEP_LOG_DEBUG, __VA_ARGS__)

#endif

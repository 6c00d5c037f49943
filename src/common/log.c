/*
 * One line per message on stderr, written with a single write(2) so lines
 * from several threads or processes never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

int pgk_log_level = PGKEEP_LOG_WARNING;
const char *pgk_log_command;

void pgk_vlog(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error: ", "warning: ", "", "debug: " };
	char line[2048];
	int n;

	if (level > pgk_log_level)
		return;
	n = snprintf(line, sizeof(line), "pgkeep: %s%s%s", pgk_log_command ? pgk_log_command : "",
		     pgk_log_command ? ": " : "", names[level < 0 || level > 3 ? 0 : level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	config_scrub_secrets(line);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void pgk_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pgk_vlog(level, fmt, ap);
	va_end(ap);
}

/*
 * Progress of a long-running command (backup, restore, import-dump): a live
 * line on a terminal, one JSON object per line for other programs, or nothing.
 * Everything goes to stderr, so stdout keeps the command's own result (the
 * backup id, or the dump itself with `restore --output -`).
 */
#ifndef PGK_PROGRESS_H
#define PGK_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

enum progress_mode {
	PROGRESS_AUTO,	/* a line rewritten in place, only when stderr is a terminal */
	PROGRESS_JSON,	/* {"event":"progress",...} lines, at most one a second */
	PROGRESS_NONE,
};

/* "auto", "json" or "none"; PGKEEP_EINVAL with a message otherwise. */
int progress_mode_parse(const char *text, enum progress_mode *out);

struct progress;

/*
 * NULL when the mode shows nothing (auto without a terminal, or -q); every
 * function below accepts NULL, so callers need not check.  `command` names
 * the command in JSON events.
 */
struct progress *progress_new(enum progress_mode mode, const char *command);
/* The expected number of bytes (0: unknown), and the first report at once. */
void progress_start(struct progress *p, uint64_t total);
/* Count bytes done; reports when enough time has passed since the last. */
void progress_add(struct progress *p, uint64_t bytes);
/*
 * What is being waited for while no byte moves (a server's checkpoint),
 * shown on the terminal line in place of the counters; JSON events carry
 * it as "waiting".  The next progress_start or progress_add ends it.
 */
void progress_note(struct progress *p, const char *what);
/* Clear the terminal line or write the final {"event":"done"}; frees p. */
void progress_finish(struct progress *p, bool ok);

#endif

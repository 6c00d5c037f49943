/*
 * Progress events as --progress=json writes them to stderr: a wait (the
 * server's checkpoint) is named while no byte moves, and no longer once
 * counting starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "common/progress.h"

/* Every line written to stderr while fn ran, NUL-terminated. */
static char *capture(void (*fn)(void))
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	long n;
	char *text;

	if (!f || saved < 0)
		return NULL;
	dup2(fileno(f), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = lseek(fileno(f), 0, SEEK_END);
	text = n >= 0 ? calloc(1, (size_t)n + 1) : NULL;
	if (text && pread(fileno(f), text, (size_t)n, 0) != n) {
		free(text);
		text = NULL;
	}
	fclose(f);
	return text;
}

static void backup_with_checkpoint(void)
{
	struct progress *p = progress_new(PROGRESS_JSON, "backup");

	progress_note(p, "waiting for the server's checkpoint");
	progress_start(p, 1000);
	progress_add(p, 1000);
	progress_finish(p, true);
}

int main(void)
{
	char *out = capture(backup_with_checkpoint), *second;

	ok(out != NULL, "stderr captured");
	if (!out)
		return done_testing();
	second = strchr(out, '\n');
	ok(second && strstr(out, "\"waiting\":\"waiting for the server's checkpoint\"") &&
	   strstr(out, "\"waiting\"") < second, "the first event names the checkpoint wait");
	ok(second && !strstr(second, "\"waiting\""), "no later event does");
	ok(strstr(out, "\"event\":\"done\"") && strstr(out, "\"bytes\":1000"),
	   "the done event counts the bytes");
	free(out);
	return done_testing();
}

/*
 * The progress line and its JSON twin.  Reports are throttled by the clock,
 * not by byte counts, so a fast restore and a slow backup over a WAN both
 * redraw at a steady, cheap pace.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/progress.h"

/* A terminal redraw four times a second looks live; JSON once a second is
 * plenty for a program and keeps logs small. */
#define TTY_INTERVAL 0.25
#define JSON_INTERVAL 1.0

struct progress {
	enum progress_mode mode;
	const char *command;
	uint64_t total;		/* 0: unknown */
	uint64_t bytes;
	double t0;		/* monotonic seconds */
	double last;		/* of the last report; < 0 before the first */
	bool drawn;		/* a terminal line is showing */
	const char *note;	/* see progress_note; NULL once bytes move */
};

int progress_mode_parse(const char *text, enum progress_mode *out)
{
	if (strcmp(text, "auto") == 0)
		*out = PROGRESS_AUTO;
	else if (strcmp(text, "json") == 0)
		*out = PROGRESS_JSON;
	else if (strcmp(text, "none") == 0)
		*out = PROGRESS_NONE;
	else
		return pgk_error(PGKEEP_EINVAL, "--progress must be auto, json or none, not '%s'",
				 text);
	return 0;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress *progress_new(enum progress_mode mode, const char *command)
{
	struct progress *p;

	if (mode == PROGRESS_NONE)
		return NULL;
	/* -q asks for errors only; a file or a pipe wants no carriage returns. */
	if (mode == PROGRESS_AUTO &&
	    (pgk_log_level < PGKEEP_LOG_WARNING || !isatty(STDERR_FILENO)))
		return NULL;
	p = xzalloc(sizeof(*p));
	p->mode = mode;
	p->command = command;
	p->t0 = now_mono();
	p->last = -1.0;
	return p;
}

/* One write(2), so a line never interleaves with a log line. */
static void emit(const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, text, len);

		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* "123.4 MB": decimal units, to match the MB/s of the rate. */
static void fmt_bytes(uint64_t b, char *out, size_t outlen)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1000.0 && u < sizeof(units) / sizeof(units[0]) - 1) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%" PRIu64 " B", b);
	else
		snprintf(out, outlen, "%.1f %s", v, units[u]);
}

static void fmt_eta(double secs, char *out, size_t outlen)
{
	long s = (long)(secs + 0.5);

	if (s >= 3600)
		snprintf(out, outlen, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else
		snprintf(out, outlen, "%ldm%02lds", s / 60, s % 60);
}

/* Seconds left, or < 0 when it cannot be told (no total, or past it). */
static double eta(const struct progress *p, double rate)
{
	if (!p->total || p->bytes >= p->total || rate <= 0.0)
		return -1.0;
	return (double)(p->total - p->bytes) / rate;
}

static void draw_tty(struct progress *p, double elapsed)
{
	char done[32], total[32], when[32], line[160];
	double rate = elapsed > 0.0 ? (double)p->bytes / elapsed : 0.0, left = eta(p, rate);
	int n, pct;

	if (p->note) {
		n = snprintf(line, sizeof(line), "\r\033[K%s: %s (%.0f s)", p->command, p->note,
			     elapsed);
		if (n > 0)
			emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		p->drawn = true;
		return;
	}
	fmt_bytes(p->bytes, done, sizeof(done));
	if (p->total) {
		fmt_bytes(p->total, total, sizeof(total));
		/* The total of a backup is an estimate: never claim 100% early. */
		pct = (int)((double)p->bytes * 100.0 / (double)p->total);
		if (pct > 99)
			pct = 99;
	} else {
		snprintf(total, sizeof(total), "?");
		pct = -1;
	}
	if (left >= 0.0)
		fmt_eta(left, when, sizeof(when));
	else
		snprintf(when, sizeof(when), "--");
	if (pct >= 0)
		n = snprintf(line, sizeof(line), "\r\033[K%s: %s / %s  %3d%%  %.1f MB/s  ETA %s",
			     p->command, done, total, pct, rate / 1e6, when);
	else
		n = snprintf(line, sizeof(line), "\r\033[K%s: %s / %s  --%%  %.1f MB/s  ETA %s",
			     p->command, done, total, rate / 1e6, when);
	if (n > 0)
		emit(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	p->drawn = true;
}

static void json_event(struct progress *p, const char *event, double elapsed, int ok)
{
	char line[512], total[32], left_text[32], note[160] = "";
	double rate = elapsed > 0.0 ? (double)p->bytes / elapsed : 0.0, left = eta(p, rate);
	int n;

	if (p->total)
		snprintf(total, sizeof(total), "%" PRIu64, p->total);
	else
		snprintf(total, sizeof(total), "null");
	if (left >= 0.0)
		snprintf(left_text, sizeof(left_text), "%.0f", left);
	else
		snprintf(left_text, sizeof(left_text), "null");
	/* Notes are pgkeep's own fixed texts: nothing to escape. */
	if (p->note && ok < 0)
		snprintf(note, sizeof(note), ",\"waiting\":\"%s\"", p->note);
	n = snprintf(line, sizeof(line),
		     "{\"event\":\"%s\",\"command\":\"%s\",\"bytes\":%" PRIu64 ",\"total\":%s,"
		     "\"rate\":%.0f,\"eta_s\":%s,\"elapsed_s\":%.3f%s%s}\n",
		     event, p->command, p->bytes, total, rate, left_text, elapsed, note,
		     ok < 0 ? "" : ok ? ",\"ok\":true" : ",\"ok\":false");
	if (n > 0 && (size_t)n < sizeof(line))
		emit(line, (size_t)n);
}

static void report(struct progress *p, bool force)
{
	double t = now_mono();
	double interval = p->mode == PROGRESS_JSON ? JSON_INTERVAL : TTY_INTERVAL;

	if (!force && p->last >= 0.0 && t - p->last < interval)
		return;
	p->last = t;
	if (p->mode == PROGRESS_JSON)
		json_event(p, "progress", t - p->t0, -1);
	else
		draw_tty(p, t - p->t0);
}

void progress_start(struct progress *p, uint64_t total)
{
	if (!p)
		return;
	p->note = NULL;
	p->total = total;
	report(p, true);
}

void progress_note(struct progress *p, const char *what)
{
	if (!p)
		return;
	p->note = what;
	report(p, false);
}

void progress_add(struct progress *p, uint64_t bytes)
{
	if (!p)
		return;
	p->note = NULL;
	p->bytes += bytes;
	report(p, false);
}

void progress_finish(struct progress *p, bool ok)
{
	if (!p)
		return;
	if (p->mode == PROGRESS_JSON)
		json_event(p, "done", now_mono() - p->t0, ok ? 1 : 0);
	else if (p->drawn)
		emit("\r\033[K", 4);
	free(p);
}

/*
 * Command lines from one table per command: every option with its argument,
 * its help text and what it sets.  The same table parses, prints `pgkeep
 * COMMAND --help` and `pgkeep help COMMAND`, and is dumped for the test that
 * holds it against the manual, so none of them can drift from the others.
 */
#ifndef PGK_OPTIONS_H
#define PGK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd/commands.h"
#include "common/progress.h"

enum opt_kind {
	OPT_FLAG,	/* bool, set to true */
	OPT_STRING,	/* const char *, the argument itself */
	OPT_INT,	/* int within [min, max] */
	OPT_SECONDS,	/* int: a duration up to max seconds, plain seconds allowed */
	OPT_DURATION,	/* int64_t: the same, up to max */
	OPT_PROGRESS,	/* enum progress_mode: auto, json or none */
	OPT_CALL,	/* call(opts, arg) does it: 0, or an error code with the message set */
	OPT_GLOBAL,	/* a global option (--config, --repo, -v, -q), main's */
	OPT_HELP,	/* --help, main's */
};

struct opt_def {
	const char *name;	/* long name, without "--"; NULL ends a table */
	char short_name;	/* 0: none */
	const char *arg;	/* metavar; NULL: takes none; "=X" is shown as --name=X */
	enum opt_kind kind;
	size_t offset;		/* of the field it sets, in the command's options struct */
	int64_t min, max;	/* OPT_INT: the range; OPT_SECONDS, OPT_DURATION: max */
	int (*call)(void *opts, const char *arg);	/* OPT_CALL */
	const char *help;	/* lines separated by '\n' */
};

/* A positional argument, for the help. */
struct opt_arg {
	const char *name;	/* NULL ends the list */
	const char *help;
};

struct opt_spec {
	const char *command;
	const char *summary;
	const char *synopsis;	/* what follows "usage: pgkeep COMMAND " */
	const struct opt_def *opts;	/* ends with OPT_END; NULL: none */
	const struct opt_arg *args;	/* positional, for the help; NULL: none */
	int min_args, max_args;	/* how many positional arguments; max -1: any */
	const char *args_error;	/* the message when their number is wrong; NULL: generic */
	const char *notes;	/* more help lines, after the options */
	int usage_exit;		/* exit status of a bad command line; 0: PGK_EXIT_USAGE */
};

/* The positional arguments, in order, in the argv given to opt_parse. */
struct opt_args {
	int argc;
	char **argv;
};

/* The field's offset, refused at compile time (an array of negative size)
 * unless the field has type t. */
#define OPT_FIELD(s, f, t) \
	(offsetof(s, f) + 0 * sizeof(char[_Generic(((s *)0)->f, t: 1, default: -1)]))

#define OPT_END { NULL, 0, NULL, OPT_FLAG, 0, 0, 0, NULL, NULL }
#define OPT_FLAG_DEF(name, sh, s, f, help) \
	{ name, sh, NULL, OPT_FLAG, OPT_FIELD(s, f, bool), 0, 0, NULL, help }
#define OPT_STRING_DEF(name, sh, arg, s, f, help) \
	{ name, sh, arg, OPT_STRING, OPT_FIELD(s, f, const char *), 0, 0, NULL, help }
#define OPT_INT_DEF(name, sh, arg, s, f, lo, hi, help) \
	{ name, sh, arg, OPT_INT, OPT_FIELD(s, f, int), lo, hi, NULL, help }
#define OPT_SECONDS_DEF(name, arg, s, f, hi, help) \
	{ name, 0, arg, OPT_SECONDS, OPT_FIELD(s, f, int), 0, hi, NULL, help }
#define OPT_DURATION_DEF(name, arg, s, f, hi, help) \
	{ name, 0, arg, OPT_DURATION, OPT_FIELD(s, f, int64_t), 0, hi, NULL, help }
#define OPT_CALL_DEF(name, sh, arg, fn, help) \
	{ name, sh, arg, OPT_CALL, 0, 0, 0, fn, help }

/* The options several commands share, defined once. */
#define OPT_JOBS_MAX 64
#define OPT_JOBS(s, f) \
	OPT_INT_DEF("jobs", 'j', "N", s, f, 1, OPT_JOBS_MAX, \
		    "worker threads (default: jobs in the config, else 4)")
#define OPT_JSON(s, f, help) OPT_FLAG_DEF("json", 'j', s, f, help)
#define OPT_ALL_REPOS(s, f, help) OPT_FLAG_DEF("all-repos", 0, s, f, help)
#define OPT_PROGRESS_DEF(s, f) \
	{ "progress", 0, "=MODE", OPT_PROGRESS, OPT_FIELD(s, f, enum progress_mode), 0, 0, NULL, \
	  "auto (a live line when stderr is a terminal), json (one\n" \
	  "JSON object per line on stderr) or none" }

/*
 * Parse a command's argv (argv[0] is its name) into out, with the option
 * table of s: options anywhere before "--", their values converted and
 * checked; the positional arguments are moved to the front (pos->argv) and
 * counted against s.  Global options and --help are passed over: main took
 * them (opt_globals).  0, or PGKEEP_EINVAL with the message set.
 */
int opt_parse(const struct opt_spec *s, int argc, char **argv, void *out, struct opt_args *pos);
/* Log the message of a failed opt_parse; returns the command's usage exit status. */
int opt_fail(const struct opt_spec *s);

#define OPT_HELP_ASKED 1
#define OPT_VERSION_ASKED 2
/*
 * Apply the global options in argv to g and the log level.  s == NULL: the
 * options before the command (argv[0] is the program; --version is one of
 * them), *end set to the command name's index.  Else the options after
 * the command (argv[0]), among s's own, whose arguments are passed over;
 * an unknown option is refused here, with the nearest known one suggested.
 * 0, OPT_HELP_ASKED, OPT_VERSION_ASKED, or PGKEEP_EINVAL with the message set.
 */
int opt_globals(const struct opt_spec *s, int argc, char **argv, struct pgk_globals *g, int *end);

/* `pgkeep COMMAND --help`, `pgkeep help COMMAND`. */
void opt_help(const struct opt_spec *s, FILE *out);
/* The global options, as opt_help shows them; for `pgkeep --help`. */
void opt_help_globals(FILE *out);
/* One line per option of s, or of the global ones (s NULL, as command
 * "pgkeep"): COMMAND --NAME -S|- ARG|-; for the tests. */
void opt_dump(const struct opt_spec *s, FILE *out);

/* The nearest of the n names to word, by edit distance, when near enough
 * to be a slip of the keyboard; else NULL. */
const char *opt_nearest(const char *word, const char *const *names, size_t n);

#endif

/*
 * The option tables: what a command line sets (flags, strings, checked
 * numbers and durations, setters), prefixes, clusters, "--", positional
 * arguments moved to the front, refusals naming the nearest option, the
 * global options seen before and after the command, and the help printed
 * from the same table.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "tap.h"

struct t_opts {
	bool flag;
	const char *name;
	int jobs;
	int wait;
	int64_t grace;
	enum progress_mode progress;
	int calls;
	const char *last;
};

static int count_call(void *o, const char *arg)
{
	struct t_opts *t = o;

	t->calls++;
	t->last = arg;
	return strcmp(arg, "bad") == 0 ? pgk_error(PGKEEP_EINVAL, "--call: no") : 0;
}

static const struct opt_def t_options[] = {
	OPT_FLAG_DEF("dry-run", 'n', struct t_opts, flag, "a flag"),
	OPT_STRING_DEF("name", 'N', "NAME", struct t_opts, name, "a string\nover two lines"),
	OPT_JOBS(struct t_opts, jobs),
	OPT_SECONDS_DEF("lock-wait", "DUR", struct t_opts, wait, INT_MAX, "seconds"),
	OPT_DURATION_DEF("grace", "DUR", struct t_opts, grace, INT64_MAX, "a duration"),
	OPT_PROGRESS_DEF(struct t_opts, progress),
	OPT_CALL_DEF("call", 'x', "ARG", count_call, "a setter"),
	OPT_CALL_DEF("dry-runner", 0, "ARG", count_call, "shares a prefix with dry-run"),
	OPT_END,
};

static const struct opt_arg t_args[] = {
	{ "ID", "the first" },
	{ "MORE", "the second" },
	{ NULL, NULL },
};

static const struct opt_spec t_cli = {
	.command = "test",
	.summary = "a command for the test",
	.synopsis = "ID [MORE] [OPTIONS]",
	.opts = t_options,
	.args = t_args,
	.min_args = 1,
	.max_args = 2,
};

/* parse WORDS...: argv with "test" first; 0 or the error. */
static int parse(struct t_opts *o, struct opt_args *pos, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	memset(o, 0, sizeof(*o));
	pgk_error_clear();
	return opt_parse(&t_cli, argc, argv, o, pos);
}

#define ARGV(...) ((char *[]){ "test", __VA_ARGS__, NULL })

static void test_sets(void)
{
	struct t_opts o;
	struct opt_args pos;

	is_int(parse(&o, &pos, ARGV("a", "--dry-run", "--name", "x", "--jobs=8", "b")), 0,
	       "flags, strings and numbers, arguments between");
	ok(o.flag && o.name && strcmp(o.name, "x") == 0 && o.jobs == 8, "... all set");
	ok(pos.argc == 2 && strcmp(pos.argv[0], "a") == 0 && strcmp(pos.argv[1], "b") == 0,
	   "... arguments in order at the front");
	is_int(parse(&o, &pos, ARGV("--lock-wait", "1h", "--grace", "2d", "--progress=json", "a")), 0,
	       "durations and --progress");
	ok(o.wait == 3600 && o.grace == 172800 && o.progress == PROGRESS_JSON, "... converted");
	is_int(parse(&o, &pos, ARGV("-nj4", "-N", "y", "-xone", "a")), 0, "short options, clustered");
	ok(o.flag && o.jobs == 4 && strcmp(o.name, "y") == 0 && o.calls == 1 &&
	   strcmp(o.last, "one") == 0, "... with attached and separate arguments");
	is_int(parse(&o, &pos, ARGV("--na", "z", "a")), 0, "a unique prefix");
	ok(o.name && strcmp(o.name, "z") == 0, "... sets its option");
	is_int(parse(&o, &pos, ARGV("--dry-run", "a")), 0, "an exact name beats a longer one");
	ok(o.flag && o.calls == 0, "... --dry-run, not --dry-runner");
	is_int(parse(&o, &pos, ARGV("a", "--", "--name")), 0, "after -- nothing is an option");
	ok(pos.argc == 2 && strcmp(pos.argv[1], "--name") == 0 && !o.name, "... --name is an argument");
	is_int(parse(&o, &pos, ARGV("a", "--repo", "r", "-v", "--config=c", "--help")), 0,
	       "global options and --help are passed over, with their arguments");
	ok(pos.argc == 1, "... none of them an argument");
	is_int(parse(&o, &pos, ARGV("-", "--name", "-1")), 0, "'-' is an argument, '-1' a value");
	ok(strcmp(pos.argv[0], "-") == 0 && strcmp(o.name, "-1") == 0, "... both");
}

static void refused(char **argv, const char *want, const char *what)
{
	struct t_opts o;
	struct opt_args pos;
	int rc = parse(&o, &pos, argv);

	ok(rc == PGKEEP_EINVAL && strstr(pgk_errmsg(), want), "%s: %s", what, pgk_errmsg());
}

static void test_refusals(void)
{
	refused(ARGV("a", "--nmae", "x"), "unknown option '--nmae'; did you mean '--name'?",
		"a slip of the keyboard");
	refused(ARGV("a", "--cofnig", "x"), "did you mean '--config'?", "a global option's");
	refused(ARGV("a", "--zzzzzzzz"), "unknown option '--zzzzzzzz'", "far from any");
	refused(ARGV("a", "--dry"), "'--dry' is ambiguous: --dry-run or --dry-runner?", "ambiguous");
	refused(ARGV("a", "-Z"), "unknown option '-Z'", "an unknown short option");
	refused(ARGV("a", "--name"), "option '--name' needs an argument", "a missing argument");
	refused(ARGV("a", "-N"), "option '-N' needs an argument", "... of a short option");
	refused(ARGV("a", "--dry-run=yes"), "option '--dry-run' takes no argument", "an argument too many");
	refused(ARGV("a", "--jobs", "65"), "--jobs: bad value '65' (out of range: 1 to 64)", "a range");
	refused(ARGV("a", "--grace", "5m"), "'m' is ambiguous", "a duration");
	refused(ARGV("a", "--progress=loud"), "--progress must be auto, json or none", "--progress");
	refused(ARGV("a", "--call", "bad"), "--call: no", "a setter's refusal");
	refused(ARGV("--dry-run"), "missing ID", "too few arguments");
	refused(ARGV("a", "b", "c"), "unexpected argument 'c'", "too many");
}

static void test_nearest(void)
{
	const char *names[] = { "info", "init", "list", "restore", "verify" };

	is_str(opt_nearest("inf", names, 5), "info", "inf: info");
	is_str(opt_nearest("restroe", names, 5), "restore", "restroe: restore");
	ok(opt_nearest("x", names, 5) == NULL, "one letter: no guess");
	ok(opt_nearest("backup", names, 5) == NULL, "nothing near: no guess");
}

static void test_globals(void)
{
	struct pgk_globals g = { NULL, NULL };
	int end, level = pgk_log_level;
	char **before = ((char *[]){ "pgkeep", "-v", "--repo", "r", "list", "--config", "c", NULL });
	char **after = ((char *[]){ "test", "--name", "--repo", "a", "-c", "f", "--", "--repo", "x", NULL });

	is_int(opt_globals(NULL, 7, before, &g, &end), 0, "before the command");
	ok(end == 4 && g.repo_name && strcmp(g.repo_name, "r") == 0 && !g.config_path,
	   "... up to the command's name");
	is_int(pgk_log_level, level + 1, "... -v raised the level");
	pgk_log_level = level;
	is_int(opt_globals(&t_cli, 9, after, &g, &end), 0, "after the command");
	ok(strcmp(g.repo_name, "r") == 0 && strcmp(g.config_path, "f") == 0,
	   "... the argument of --name is not --repo; -c is, and nothing after --");
	is_int(opt_globals(&t_cli, 3, ((char *[]){ "test", "a", "-h", NULL }), &g, &end),
	       OPT_HELP_ASKED, "-h asks for the help");
	is_int(opt_globals(NULL, 2, ((char *[]){ "pgkeep", "-V", NULL }), &g, &end),
	       OPT_VERSION_ASKED, "-V before the command: the version");
	is_int(opt_globals(&t_cli, 2, ((char *[]){ "test", "-V", NULL }), &g, &end),
	       PGKEEP_EINVAL, "... not after it");
}

static void test_help(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	const struct opt_def *d;

	opt_help(&t_cli, f);
	fclose(f);
	ok(strncmp(text, "usage: pgkeep test ID [MORE] [OPTIONS]\na command for the test\n", 62) == 0,
	   "usage line and summary first");
	for (d = t_options; d->name; d++) {
		char want[64];

		snprintf(want, sizeof(want), "--%s", d->name);
		ok(strstr(text, want) != NULL, "help shows %s", want);
	}
	ok(strstr(text, "  -N, --name NAME" "          " "a string\n"
			"                           " "over two lines\n") != NULL,
	   "short name, metavar, help lines aligned");
	ok(strstr(text, "      --progress=MODE") != NULL, "'=X' metavars glued to the name");
	ok(strstr(text, "  MORE ") != NULL, "positional arguments shown");
	ok(strstr(text, "-r, --repo NAME") && strstr(text, "-h, --help"), "global options shown");
	free(text);
}

int main(void)
{
	test_sets();
	test_refusals();
	test_nearest();
	test_globals();
	test_help();
	return done_testing();
}

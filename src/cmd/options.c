/*
 * The command line parser behind every command: long options (unique
 * prefixes accepted), short ones (clustered), option arguments attached or
 * separate, "--" ending the options; help text from the same tables.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/options.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"

enum global_id { GLOBAL_CONFIG, GLOBAL_REPO, GLOBAL_VERBOSE, GLOBAL_QUIET, GLOBAL_VERSION };

/* Accepted before the command and after it. */
static const struct opt_def global_opts[] = {
	{ "config", 'c', "FILE", OPT_GLOBAL, GLOBAL_CONFIG, 0, 0, NULL,
	  "the config file (default: $PGKEEP_CONFIG, else\n" PGK_CONFIG_DEFAULT_PATH ")" },
	{ "repo", 'r', "NAME", OPT_GLOBAL, GLOBAL_REPO, 0, 0, NULL,
	  "the repository (default: repo in [global] of the config)" },
	{ "verbose", 'v', NULL, OPT_GLOBAL, GLOBAL_VERBOSE, 0, 0, NULL,
	  "more messages; twice: debug messages too" },
	{ "quiet", 'q', NULL, OPT_GLOBAL, GLOBAL_QUIET, 0, 0, NULL, "errors only" },
	{ "help", 'h', NULL, OPT_HELP, 0, 0, 0, NULL, "show the options and exit" },
	OPT_END,
};

/* Only before the command. */
static const struct opt_def version_opts[] = {
	{ "version", 'V', NULL, OPT_GLOBAL, GLOBAL_VERSION, 0, 0, NULL, "print the version and exit" },
	OPT_END,
};

/* The tables an argv is read against, searched in order. */
struct tables {
	const struct opt_def *t[3];
	size_t n;
};

static void tables_of(const struct opt_spec *s, struct tables *ts)
{
	ts->n = 0;
	if (s && s->opts)
		ts->t[ts->n++] = s->opts;
	ts->t[ts->n++] = global_opts;
	if (!s)
		ts->t[ts->n++] = version_opts;
}

/* ---- nearest names ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, *row, prev, d;

	row = xmalloc((lb + 1) * sizeof(*row));
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev + (a[i - 1] != b[j - 1]);

			prev = row[j];
			d = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
			row[j] = sub < d ? sub : d;
		}
	}
	d = row[lb];
	free(row);
	return d;
}

const char *opt_nearest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t i, d, best_d = (size_t)-1, len = strlen(word);

	for (i = 0; i < n; i++) {
		d = edit_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	/* Two slips at most, and fewer than the word has letters. */
	return best && best_d <= 2 && best_d < len ? best : NULL;
}

static const char *nearest_option(const struct tables *ts, const char *word)
{
	const char *names[128];
	size_t n = 0, k;
	const struct opt_def *d;

	for (k = 0; k < ts->n; k++)
		for (d = ts->t[k]; d->name && n < 128; d++)
			names[n++] = d->name;
	return opt_nearest(word, names, n);
}

/* ---- finding an option ---- */

static int unknown_long(const struct tables *ts, const char *name, size_t len)
{
	char *word = xstrndup(name, len);
	const char *near = nearest_option(ts, word);
	int ret;

	if (near)
		ret = pgk_error(PGKEEP_EINVAL, "unknown option '--%s'; did you mean '--%s'?", word, near);
	else
		ret = pgk_error(PGKEEP_EINVAL, "unknown option '--%s'", word);
	free(word);
	return ret;
}

/* An exact name, else the one name it is a prefix of. */
static int find_long(const struct tables *ts, const char *name, size_t len,
		     const struct opt_def **out)
{
	const struct opt_def *d, *found = NULL, *other = NULL;
	size_t k;

	for (k = 0; k < ts->n; k++)
		for (d = ts->t[k]; d->name; d++) {
			if (strncmp(d->name, name, len) != 0)
				continue;
			if (d->name[len] == '\0') {
				*out = d;
				return 0;
			}
			if (!found)
				found = d;
			else if (!other)
				other = d;
		}
	if (other)
		return pgk_error(PGKEEP_EINVAL, "option '--%.*s' is ambiguous: --%s or --%s?",
				 (int)len, name, found->name, other->name);
	if (!found)
		return unknown_long(ts, name, len);
	*out = found;
	return 0;
}

static int find_short(const struct tables *ts, char c, const struct opt_def **out)
{
	const struct opt_def *d;
	size_t k;

	for (k = 0; k < ts->n; k++)
		for (d = ts->t[k]; d->name; d++)
			if (d->short_name && d->short_name == c) {
				*out = d;
				return 0;
			}
	return pgk_error(PGKEEP_EINVAL, "unknown option '-%c'", c);
}

/* ---- walking argv ---- */

enum item { ITEM_END, ITEM_OPT, ITEM_ARG, ITEM_REST };

struct walk {
	const struct tables *ts;
	int argc;
	char **argv;
	int i;			/* the next word */
	int sub;		/* in a cluster of short options: the next letter, else 0 */
	const struct opt_def *def;	/* ITEM_OPT */
	const char *value;	/* ITEM_OPT: its argument, ITEM_ARG: the word */
};

static int take_value(struct walk *w, const char *attached, const char *shown)
{
	if (!w->def->arg) {
		if (attached)
			return pgk_error(PGKEEP_EINVAL, "option '%s' takes no argument", shown);
		w->value = NULL;
		return ITEM_OPT;
	}
	if (attached) {
		w->value = attached;
		return ITEM_OPT;
	}
	if (w->i >= w->argc)
		return pgk_error(PGKEEP_EINVAL, "option '%s' needs an argument", shown);
	w->value = w->argv[w->i++];
	return ITEM_OPT;
}

static int next_short(struct walk *w)
{
	const char *word = w->argv[w->i];
	char shown[3] = { '-', word[w->sub], 0 };
	int ret;

	ret = find_short(w->ts, word[w->sub], &w->def);
	if (ret < 0)
		return ret;
	w->sub++;
	if (w->def->arg && word[w->sub]) {
		/* -j4: the rest of the word is the argument. */
		w->value = word + w->sub;
		w->sub = 0;
		w->i++;
		return ITEM_OPT;
	}
	if (!word[w->sub]) {
		w->sub = 0;
		w->i++;
	}
	if (w->def->arg && w->sub)
		return pgk_error(PGKEEP_EINVAL, "option '%s' needs an argument", shown);
	return take_value(w, NULL, shown);
}

/* The next option or argument: ITEM_*, or an error code with the message set. */
static int walk_next(struct walk *w)
{
	const char *word, *eq;
	char shown[80];
	int ret;

	if (w->sub)
		return next_short(w);
	if (w->i >= w->argc)
		return ITEM_END;
	word = w->argv[w->i];
	if (strcmp(word, "--") == 0) {
		w->i++;
		return ITEM_REST;
	}
	if (word[0] != '-' || word[1] == '\0') {
		w->value = word;
		w->i++;
		return ITEM_ARG;
	}
	if (word[1] != '-') {
		w->sub = 1;
		return next_short(w);
	}
	eq = strchr(word + 2, '=');
	ret = find_long(w->ts, word + 2, eq ? (size_t)(eq - word - 2) : strlen(word + 2), &w->def);
	if (ret < 0)
		return ret;
	w->i++;
	snprintf(shown, sizeof(shown), "--%s", w->def->name);
	return take_value(w, eq ? eq + 1 : NULL, shown);
}

/* ---- the global options ---- */

static void apply_global(const struct opt_def *d, const char *value, struct pgk_globals *g)
{
	switch ((enum global_id)d->offset) {
	case GLOBAL_CONFIG: g->config_path = value; break;
	case GLOBAL_REPO: g->repo_name = value; break;
	case GLOBAL_VERBOSE:
		if (pgk_log_level < PGKEEP_LOG_DEBUG)
			pgk_log_level++;
		break;
	case GLOBAL_QUIET: pgk_log_level = PGKEEP_LOG_ERROR; break;
	case GLOBAL_VERSION: break;
	}
}

int opt_globals(const struct opt_spec *s, int argc, char **argv, struct pgk_globals *g, int *end)
{
	struct tables ts;
	struct walk w = { .ts = &ts, .argc = argc, .argv = argv, .i = 1 };
	int item, asked = 0;

	tables_of(s, &ts);
	while ((item = walk_next(&w)) != ITEM_END && item != ITEM_REST) {
		if (item < 0)
			return item;
		if (item == ITEM_ARG && !s) {
			/* Before the command: stop at its name. */
			*end = w.i - 1;
			return asked;
		}
		if (item != ITEM_OPT)
			continue;
		if (w.def->kind == OPT_HELP && !asked)
			asked = OPT_HELP_ASKED;
		else if (w.def->kind == OPT_GLOBAL && w.def->offset == GLOBAL_VERSION && !asked)
			asked = OPT_VERSION_ASKED;
		else if (w.def->kind == OPT_GLOBAL)
			apply_global(w.def, w.value, g);
	}
	*end = w.i;
	return asked;
}

/* ---- a command's own options ---- */

static int set_option(const struct opt_def *d, const char *value, void *out)
{
	char *field = (char *)out + d->offset;
	char what[80];

	snprintf(what, sizeof(what), "--%s", d->name);
	switch (d->kind) {
	case OPT_FLAG: *(bool *)field = true; return 0;
	case OPT_STRING: *(const char **)field = value; return 0;
	case OPT_INT: return parse_int(what, value, (int)d->min, (int)d->max, (int *)field);
	case OPT_SECONDS: return parse_seconds(what, value, (int)d->max, (int *)field);
	case OPT_DURATION:
		return parse_duration(what, value, PARSE_BARE_SECONDS, d->max, (int64_t *)field);
	case OPT_PROGRESS: return progress_mode_parse(value, (enum progress_mode *)field);
	case OPT_CALL: return d->call(out, value);
	case OPT_GLOBAL:
	case OPT_HELP:
		break;	/* main's (opt_globals) */
	}
	return 0;
}

static int check_count(const struct opt_spec *s, const struct opt_args *pos)
{
	bool few = pos->argc < s->min_args, many = s->max_args >= 0 && pos->argc > s->max_args;
	const struct opt_arg *a;
	int i;

	if (!few && !many)
		return 0;
	if (s->args_error)
		return pgk_error(PGKEEP_EINVAL, "%s", s->args_error);
	if (many)
		return pgk_error(PGKEEP_EINVAL, "unexpected argument '%s'", pos->argv[s->max_args]);
	for (a = s->args, i = 0; a && a->name && i < pos->argc; a++, i++)
		;
	return pgk_error(PGKEEP_EINVAL, "missing %s", a && a->name ? a->name : "argument");
}

int opt_parse(const struct opt_spec *s, int argc, char **argv, void *out, struct opt_args *pos)
{
	struct tables ts;
	struct walk w = { .ts = &ts, .argc = argc, .argv = argv, .i = 1 };
	int item, ret;

	tables_of(s, &ts);
	pos->argv = argv + 1;
	pos->argc = 0;
	while ((item = walk_next(&w)) != ITEM_END) {
		if (item < 0)
			return item;
		if (item == ITEM_REST) {
			while (w.i < argc)
				pos->argv[pos->argc++] = argv[w.i++];
			break;
		}
		/* Positional arguments move to the front, in order; no word
		 * not yet read is overwritten. */
		if (item == ITEM_ARG) {
			pos->argv[pos->argc++] = (char *)w.value;
			continue;
		}
		ret = set_option(w.def, w.value, out);
		if (ret < 0)
			return ret;
	}
	return check_count(s, pos);
}

int opt_fail(const struct opt_spec *s)
{
	const char *msg = pgk_errmsg();

	if (*msg)
		pgk_log_error("%s", msg);
	return s->usage_exit ? s->usage_exit : PGK_EXIT_USAGE;
}

/* ---- help ---- */

#define HELP_COLUMN 27

/* "  LEFT      first help line", the further lines under the first. */
static void help_item(FILE *out, const char *left, const char *help)
{
	const char *nl;
	int n;

	n = fprintf(out, "  %s", left);
	if (n >= HELP_COLUMN - 1) {
		fputc('\n', out);
		n = 0;
	}
	while (help && *help) {
		nl = strchr(help, '\n');
		fprintf(out, "%*s%.*s\n", HELP_COLUMN - n, "", nl ? (int)(nl - help) : (int)strlen(help),
			help);
		n = 0;
		help = nl ? nl + 1 : NULL;
	}
}

static void help_options(FILE *out, const struct opt_def *d)
{
	char left[96];

	for (; d && d->name; d++) {
		char sh[5] = "    ";

		if (d->short_name)
			snprintf(sh, sizeof(sh), "-%c, ", d->short_name);
		snprintf(left, sizeof(left), "%s--%s%s%s", sh, d->name,
			 d->arg && d->arg[0] != '=' ? " " : "", d->arg ? d->arg : "");
		help_item(out, left, d->help);
	}
}

void opt_help_globals(FILE *out)
{
	help_options(out, global_opts);
	help_options(out, version_opts);
}

void opt_help(const struct opt_spec *s, FILE *out)
{
	const struct opt_arg *a;

	fprintf(out, "usage: pgkeep %s %s\n%s\n", s->command, s->synopsis, s->summary);
	if ((s->args && s->args->name) || (s->opts && s->opts->name))
		fputc('\n', out);
	for (a = s->args; a && a->name; a++)
		help_item(out, a->name, a->help);
	help_options(out, s->opts);
	if (s->notes)
		fprintf(out, "\n%s\n", s->notes);
	fprintf(out, "\nglobal options, before or after the command:\n");
	help_options(out, global_opts);
}

static void dump_table(const char *command, const struct opt_def *d, FILE *out)
{
	for (; d && d->name; d++) {
		char sh[3] = "-";

		if (d->short_name)
			sh[1] = d->short_name;
		fprintf(out, "%s --%s %s %s\n", command, d->name, sh, d->arg ? d->arg : "-");
	}
}

void opt_dump(const struct opt_spec *s, FILE *out)
{
	if (s)
		dump_table(s->command, s->opts, out);
	else
		dump_table("pgkeep", global_opts, out);
}

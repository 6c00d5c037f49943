/*
 * The configuration file, read with libinih.  inih's handler gets no line
 * number in Debian's build, so the file is fed through our own reader, which
 * counts lines and also sees section headers (inih reports a section only
 * once it has a key, and an empty unknown section must still be an error).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "common/config.h"
#include "common/config_int.h"
#include "common/cron.h"
#include "common/error.h"
#include "common/mem.h"
#include "common/parse.h"

enum section { SEC_NONE, SEC_GLOBAL, SEC_REPO, SEC_SCHEDULE, SEC_BAD };

/* [global] keys; their index is their slot in parse_state.global_lines. */
enum global_key {
	G_REPO, G_PASSPHRASE_FILE, G_PASSPHRASE_COMMAND, G_COMPRESSION, G_PGDATA,
	G_CONNINFO, G_PLUGIN_DIR, G_LOG_LEVEL, G_JOBS, G_ARCHIVE_TIMEOUT, G_ARCHIVE_REPOS,
	G_WAL_PUSH_AHEAD, G_WAL_FETCH_AHEAD, G_SPOOL_DIR, G_KEY_CACHE, G_DELTA,
	G_STANDBY_WAL_TIMEOUT, G_CHECKSUMS, G_COUNT
};

static const char *const global_names[G_COUNT] = {
	"repo", "passphrase_file", "passphrase_command", "compression", "pgdata",
	"conninfo", "plugin_dir", "log_level", "jobs", "archive_timeout", "archive_repos",
	"wal_push_ahead", "wal_fetch_ahead", "spool_dir", "key_cache", "delta",
	"standby_wal_timeout", "checksums",
};

struct parse_state {
	struct pgk_config *cfg;
	FILE *f;
	int line;		/* line being parsed */
	enum section sec;
	struct pgk_config_repo *repo;	/* current [repo:NAME] */
	int global_line;	/* line of [global], 0 before it */
	int schedule_line;	/* line of [schedule], 0 before it */
	int global_lines[G_COUNT];
	int plugin_line;	/* of the current repo's plugin key */
	int lock_days_line;
	int secret_line;	/* first key that holds a secret */
	const char *secret_key;
	int err;		/* first error, 0 when none */
	int err_line;
};

static int fail_at(struct parse_state *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail_at(struct parse_state *st, int code, const char *fmt, ...)
{
	char msg[PGKEEP_ERRLEN];
	va_list ap;

	/* inih keeps going after an error; the first one is what the user fixes. */
	if (st->err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->err = pgk_error(code, "%s:%d: %s", st->cfg->path, st->line, msg);
	st->err_line = st->line;
	return 0;
}

int config_parse_compression(const char *s, int *level)
{
	if (strcmp(s, "none") == 0) {
		*level = 0;
		return 0;
	}
	if (strcmp(s, "zstd") == 0) {
		*level = 3;
		return 0;
	}
	if (strncmp(s, "zstd:", 5) != 0 || !s[5])
		return pgk_error(PGKEEP_EINVAL, "bad compression '%s' (use zstd, zstd:1..19 or none)", s);
	if (parse_int("compression level", s + 5, 1, 19, level) < 0)
		return pgk_error(PGKEEP_EINVAL, "bad compression level in '%s' (use zstd:1..19)", s);
	return 0;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

static void note_secret(struct parse_state *st, const char *key)
{
	if (!st->secret_line) {
		st->secret_line = st->line;
		st->secret_key = xstrdup(key);
	}
}

/* ---- section headers, seen by the reader ---- */

static void start_repo(struct parse_state *st, const char *name)
{
	struct pgk_config *cfg = st->cfg;
	size_t i;

	if (!valid_name(name)) {
		st->sec = SEC_BAD;
		fail_at(st, PGKEEP_EINVAL, "bad repository name '%s' (letters, digits, '.', '_', '-')", name);
		return;
	}
	for (i = 0; i < cfg->nrepos; i++) {
		if (strcmp(cfg->repos[i].name, name) == 0) {
			st->sec = SEC_BAD;
			fail_at(st, PGKEEP_EINVAL, "duplicate section [repo:%s] (first on line %d)",
				name, cfg->repos[i].line);
			return;
		}
	}
	cfg->repos = xrealloc(cfg->repos, (cfg->nrepos + 1) * sizeof(*cfg->repos));
	st->repo = &cfg->repos[cfg->nrepos++];
	memset(st->repo, 0, sizeof(*st->repo));
	st->repo->name = xstrdup(name);
	st->repo->line = st->line;
	st->sec = SEC_REPO;
	st->plugin_line = 0;
	st->lock_days_line = 0;
}

static void start_section(struct parse_state *st, const char *name)
{
	if (strcmp(name, "global") == 0) {
		if (st->global_line) {
			st->sec = SEC_BAD;
			fail_at(st, PGKEEP_EINVAL, "duplicate section [global] (first on line %d)",
				st->global_line);
			return;
		}
		st->global_line = st->line;
		st->sec = SEC_GLOBAL;
	} else if (strncmp(name, "repo:", 5) == 0) {
		start_repo(st, name + 5);
	} else if (strcmp(name, "schedule") == 0) {
		if (st->schedule_line) {
			st->sec = SEC_BAD;
			fail_at(st, PGKEEP_EINVAL, "duplicate section [schedule] (first on line %d)",
				st->schedule_line);
			return;
		}
		st->schedule_line = st->line;
		st->sec = SEC_SCHEDULE;
	} else {
		st->sec = SEC_BAD;
		fail_at(st, PGKEEP_EINVAL,
			"unknown section [%s] (expected [global], [repo:NAME] or [schedule])", name);
	}
}

static void scan_line(struct parse_state *st, const char *p)
{
	const char *end;
	char *name;

	if (*p != '[')
		return;
	end = strchr(p, ']');
	if (!end)
		return;		/* inih reports the syntax error */
	name = xstrndup(p + 1, (size_t)(end - p - 1));
	start_section(st, name);
	free(name);
}

/*
 * One whole line per call.  Debian's inih reads lines of at most 199 bytes
 * and would parse the rest of a longer one as a line of its own, so a long
 * line is refused here instead.  Leading blanks are dropped so that an
 * indented key is a key, not a continuation of the previous value.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	size_t n, skip;
	char *p;

	if (!fgets(str, num, st->f))
		return NULL;
	st->line++;
	n = strlen(str);
	if (n && str[n - 1] != '\n' && !feof(st->f)) {
		fail_at(st, PGKEEP_EINVAL, "line too long (at most %d characters)", num - 2);
		/* A NUL byte can make a piece look empty: never index before it. */
		do {
			p = fgets(str, num, st->f);
			n = p ? strlen(str) : 0;
		} while (p && (n == 0 || str[n - 1] != '\n'));
		strcpy(str, "\n");
		return str;
	}
	skip = strspn(str, " \t");
	memmove(str, str + skip, n - skip + 1);
	if (st->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		scan_line(st, str + 3);
	else
		scan_line(st, str);
	return str;
}

/* ---- keys ---- */

static int set_string(struct parse_state *st, char **dst, const char *name, const char *value)
{
	if (!*value)
		return fail_at(st, PGKEEP_EINVAL, "%s: empty value", name);
	*dst = xstrdup(value);
	return 1;
}

static int global_key(struct parse_state *st, const char *name, const char *value)
{
	struct pgk_config *cfg = st->cfg;
	int k;

	for (k = 0; k < G_COUNT; k++)
		if (strcmp(name, global_names[k]) == 0)
			break;
	if (k == G_COUNT)
		return fail_at(st, PGKEEP_EINVAL, "unknown key '%s' in [global]", name);
	if (st->global_lines[k])
		return fail_at(st, PGKEEP_EINVAL, "duplicate key '%s' (first on line %d)", name,
			       st->global_lines[k]);
	st->global_lines[k] = st->line;

	switch ((enum global_key)k) {
	case G_REPO:
		if (!valid_name(value))
			return fail_at(st, PGKEEP_EINVAL, "repo: bad repository name '%s'", value);
		return set_string(st, &cfg->repo, name, value);
	case G_PASSPHRASE_FILE:
		cfg->passphrase_file_line = st->line;
		return set_string(st, &cfg->passphrase_file, name, value);
	case G_PASSPHRASE_COMMAND:
		cfg->passphrase_command_line = st->line;
		return set_string(st, &cfg->passphrase_command, name, value);
	case G_COMPRESSION:
		if (config_parse_compression(value, &cfg->compress_level) < 0)
			return fail_at(st, PGKEEP_EINVAL, "compression: %s", pgk_errmsg());
		return 1;
	case G_PGDATA:
		return set_string(st, &cfg->pgdata, name, value);
	case G_CONNINFO:
		/* A password inside conninfo makes the file as secret as one in its own key. */
		if (strstr(value, "password") || config_conninfo_has_password(value))
			note_secret(st, name);
		return set_string(st, &cfg->conninfo, name, value);
	case G_PLUGIN_DIR:
		return set_string(st, &cfg->plugin_dir, name, value);
	case G_LOG_LEVEL:
		if (strcmp(value, "error") == 0)
			cfg->log_level = PGKEEP_LOG_ERROR;
		else if (strcmp(value, "warning") == 0)
			cfg->log_level = PGKEEP_LOG_WARNING;
		else if (strcmp(value, "info") == 0)
			cfg->log_level = PGKEEP_LOG_INFO;
		else if (strcmp(value, "debug") == 0)
			cfg->log_level = PGKEEP_LOG_DEBUG;
		else
			return fail_at(st, PGKEEP_EINVAL,
				       "log_level: bad value '%s' (error, warning, info or debug)", value);
		return 1;
	case G_JOBS:
		if (parse_int(name, value, 1, 1024, &cfg->jobs) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	case G_ARCHIVE_TIMEOUT:
		if (parse_seconds(name, value, INT_MAX, &cfg->archive_timeout) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	case G_STANDBY_WAL_TIMEOUT:
		if (parse_seconds(name, value, INT_MAX, &cfg->standby_wal_timeout) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	case G_ARCHIVE_REPOS:
		/* Names are checked against the [repo:NAME] sections after the parse. */
		return set_string(st, &cfg->archive_repos, name, value);
	case G_WAL_PUSH_AHEAD:
	case G_WAL_FETCH_AHEAD:
		if (parse_int(name, value, 0, PGK_WAL_AHEAD_MAX,
			      k == G_WAL_PUSH_AHEAD ? &cfg->wal_push_ahead : &cfg->wal_fetch_ahead) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	case G_SPOOL_DIR:
		if (value[0] != '/')
			return fail_at(st, PGKEEP_EINVAL, "spool_dir: '%s' is not an absolute path", value);
		return set_string(st, &cfg->spool_dir, name, value);
	case G_KEY_CACHE:
		if (parse_seconds(name, value, PGK_KEY_CACHE_MAX, &cfg->key_cache) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	case G_DELTA:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return fail_at(st, PGKEEP_EINVAL, "delta: bad value '%s' (yes or no)", value);
		cfg->delta = strcmp(value, "yes") == 0;
		return 1;
	case G_CHECKSUMS:
		if (strcasecmp(value, "sha256") == 0)
			cfg->checksums = "SHA256";
		else if (strcasecmp(value, "crc32c") == 0)
			cfg->checksums = "CRC32C";
		else
			return fail_at(st, PGKEEP_EINVAL, "checksums: bad value '%s' (sha256 or crc32c)",
				       value);
		return 1;
	case G_COUNT:
		break;
	}
	return 1;
}

static const struct pgkeep_option *find_opt(const struct pgkeep_option *opts, const int *lines,
					    size_t n, const char *key, int *line)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(opts[i].key, key) == 0) {
			*line = lines[i];
			return &opts[i];
		}
	}
	return NULL;
}

static void add_opt(struct pgkeep_option **opts, int **lines, size_t *n, const char *key,
		    const char *value, int line)
{
	*opts = xrealloc(*opts, (*n + 1) * sizeof(**opts));
	*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
	(*opts)[*n].key = xstrdup(key);
	(*opts)[*n].value = xstrdup(value);
	(*lines)[*n] = line;
	(*n)++;
}

static int repo_key(struct parse_state *st, const char *name, const char *value)
{
	struct pgk_config_repo *rc = st->repo;
	int line;

	if (strcmp(name, "plugin") == 0) {
		if (st->plugin_line)
			return fail_at(st, PGKEEP_EINVAL, "duplicate key 'plugin' (first on line %d)",
				       st->plugin_line);
		st->plugin_line = st->line;
		if (!valid_name(value))
			return fail_at(st, PGKEEP_EINVAL, "plugin: bad plugin name '%s'", value);
		return set_string(st, &rc->plugin, name, value);
	}
	if (strcmp(name, "lock_days") == 0) {
		if (st->lock_days_line)
			return fail_at(st, PGKEEP_EINVAL, "duplicate key 'lock_days' (first on line %d)",
				       st->lock_days_line);
		st->lock_days_line = st->line;
		if (parse_int(name, value, 0, 36500, &rc->lock_days) < 0)
			return fail_at(st, PGKEEP_EINVAL, "%s", pgk_errmsg());
		return 1;
	}
	if (find_opt(rc->core_opts, rc->core_opt_lines, rc->ncore_opts, name, &line) ||
	    find_opt(rc->opts, rc->opt_lines, rc->nopts, name, &line))
		return fail_at(st, PGKEEP_EINVAL, "duplicate key '%s' (first on line %d)", name, line);
	if (!*value)
		return fail_at(st, PGKEEP_EINVAL, "%s: empty value", name);
	/* Retention belongs to the agent; the retention code checks the values. */
	if (strncmp(name, "keep_", 5) == 0) {
		add_opt(&rc->core_opts, &rc->core_opt_lines, &rc->ncore_opts, name, value, st->line);
		return 1;
	}
	if (config_is_secret_key(name))
		note_secret(st, name);
	add_opt(&rc->opts, &rc->opt_lines, &rc->nopts, name, value, st->line);
	return 1;
}

/* [schedule]: JOB = CRON for the daemon, plus copy_to / copy_from. */
static int schedule_key(struct parse_state *st, const char *name, const char *value)
{
	struct pgk_config *cfg = st->cfg;
	struct cron_spec spec;
	int line;

	if (strcmp(name, "copy_to") == 0 || strcmp(name, "copy_from") == 0) {
		char **dst = name[5] == 't' ? &cfg->schedule_copy_to : &cfg->schedule_copy_from;

		if (*dst)
			return fail_at(st, PGKEEP_EINVAL, "duplicate key '%s'", name);
		if (!valid_name(value))
			return fail_at(st, PGKEEP_EINVAL, "%s: bad repository name '%s'", name, value);
		*dst = xstrdup(value);
		return 1;
	}
	if (strcmp(name, "dump") != 0 && strcmp(name, "base") != 0 && strcmp(name, "expire") != 0 &&
	    strcmp(name, "drill") != 0 && strcmp(name, "copy") != 0)
		return fail_at(st, PGKEEP_EINVAL,
			       "unknown job '%s' in [schedule] (dump, base, expire, drill, copy, copy_to, copy_from)",
			       name);
	if (find_opt(cfg->schedule, cfg->schedule_lines, cfg->nschedule, name, &line))
		return fail_at(st, PGKEEP_EINVAL, "duplicate key '%s' (first on line %d)", name, line);
	if (cron_parse(value, &spec) < 0)
		return fail_at(st, PGKEEP_EINVAL, "%s: %s", name, pgk_errmsg());
	add_opt(&cfg->schedule, &cfg->schedule_lines, &cfg->nschedule, name, value, st->line);
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;

	switch (st->sec) {
	case SEC_NONE:
		return fail_at(st, PGKEEP_EINVAL, "key '%s' outside any section", name);
	case SEC_GLOBAL:
		return global_key(st, name, value);
	case SEC_REPO:
		return repo_key(st, name, value);
	case SEC_SCHEDULE:
		return schedule_key(st, name, value);
	case SEC_BAD:
		return 0;	/* already reported at the section header */
	}
	return 0;
}

/* ---- after the parse ---- */

static bool has_repo(const struct pgk_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nrepos; i++)
		if (strcmp(cfg->repos[i].name, name) == 0)
			return true;
	return false;
}

static int check_repos(struct parse_state *st)
{
	struct pgk_config *cfg = st->cfg;
	size_t i;

	for (i = 0; i < cfg->nrepos; i++)
		if (!cfg->repos[i].plugin)
			return pgk_error(PGKEEP_EINVAL, "%s:%d: [repo:%s] has no plugin key",
					 cfg->path, cfg->repos[i].line, cfg->repos[i].name);
	if (cfg->repo && !has_repo(cfg, cfg->repo))
		return pgk_error(PGKEEP_EINVAL, "%s:%d: repo = %s, but there is no [repo:%s] section",
				 cfg->path, st->global_lines[G_REPO], cfg->repo, cfg->repo);
	if (cfg->archive_repos) {
		char **names;
		size_t n;

		config_split_list(cfg->archive_repos, &names, &n);
		for (i = 0; i < n; i++)
			if (!has_repo(cfg, names[i])) {
				int rc = pgk_error(PGKEEP_EINVAL,
						   "%s:%d: archive_repos names '%s', but there is no [repo:%s] section",
						   cfg->path, st->global_lines[G_ARCHIVE_REPOS], names[i], names[i]);
				config_free_list(names, n);
				return rc;
			}
		if (n == 0) {
			config_free_list(names, n);
			return pgk_error(PGKEEP_EINVAL, "%s:%d: archive_repos is empty", cfg->path,
					 st->global_lines[G_ARCHIVE_REPOS]);
		}
		config_free_list(names, n);
	}
	if (cfg->schedule_copy_to && !has_repo(cfg, cfg->schedule_copy_to))
		return pgk_error(PGKEEP_EINVAL, "%s: [schedule] copy_to = %s, but there is no [repo:%s] section",
				 cfg->path, cfg->schedule_copy_to, cfg->schedule_copy_to);
	if (cfg->schedule_copy_from && !has_repo(cfg, cfg->schedule_copy_from))
		return pgk_error(PGKEEP_EINVAL, "%s: [schedule] copy_from = %s, but there is no [repo:%s] section",
				 cfg->path, cfg->schedule_copy_from, cfg->schedule_copy_from);
	return 0;
}

void config_split_list(const char *text, char ***out, size_t *n)
{
	char **v = NULL;
	const char *p = text;

	*n = 0;
	while (*p) {
		const char *start, *end;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start) {
			v = xrealloc(v, (*n + 1) * sizeof(*v));
			v[(*n)++] = xstrndup(start, (size_t)(end - start));
		}
	}
	*out = v;
}

void config_free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int config_load(struct pgk_config *cfg, const char *path)
{
	struct parse_state st;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = xstrdup(path);
	cfg->compress_level = 3;
	cfg->log_level = -1;
	cfg->archive_timeout = -1;
	cfg->standby_wal_timeout = -1;
	cfg->wal_push_ahead = PGK_WAL_PUSH_AHEAD_DEFAULT;
	cfg->wal_fetch_ahead = PGK_WAL_FETCH_AHEAD_DEFAULT;
	cfg->key_cache = PGK_KEY_CACHE_DEFAULT;
	cfg->delta = true;
	cfg->checksums = "SHA256";

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.f = fopen(path, "re");
	if (!st.f) {
		ret = pgk_error(errno == ENOENT ? PGKEEP_ENOTFOUND : PGKEEP_EIO,
				"cannot read config %s: %s", path, strerror(errno));
		goto out_free_cfg;
	}
	ret = config_check_file(cfg, st.f);
	if (ret < 0) {
		fclose(st.f);
		goto out_free_cfg;
	}
	errno = 0;
	ret = ini_parse_stream(reader, &st, handler, &st);
	if (ret == -2) {
		ret = pgk_error(PGKEEP_ENOMEM, "%s: out of memory while parsing", path);
	} else if (ret > 0 && (!st.err || ret < st.err_line)) {
		ret = pgk_error(PGKEEP_EINVAL, "%s:%d: syntax error (expected [section] or key = value)",
				path, ret);
	} else if (st.err) {
		ret = st.err;
	} else if (ferror(st.f)) {
		ret = pgk_error(PGKEEP_EIO, "cannot read config %s: %s", path,
				errno ? strerror(errno) : "read error");
	} else {
		ret = check_repos(&st);
		if (ret == 0)
			ret = config_check_modes(cfg, fileno(st.f), st.secret_key, st.secret_line);
	}
	fclose(st.f);
	free((char *)st.secret_key);
	if (ret == 0) {
		config_scrub_loaded(cfg);
		return 0;
	}
out_free_cfg:
	config_free(cfg);
	return ret;
}

static void free_opts(struct pgkeep_option *opts, int *lines, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		/* Plugin options may hold credentials. */
		secure_free((char *)opts[i].value, strlen(opts[i].value));
		free((char *)opts[i].key);
	}
	free(opts);
	free(lines);
}

void config_free(struct pgk_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nrepos; i++) {
		struct pgk_config_repo *rc = &cfg->repos[i];

		free(rc->name);
		free(rc->plugin);
		free_opts(rc->opts, rc->opt_lines, rc->nopts);
		free_opts(rc->core_opts, rc->core_opt_lines, rc->ncore_opts);
	}
	free(cfg->repos);
	free_opts(cfg->schedule, cfg->schedule_lines, cfg->nschedule);
	free(cfg->schedule_copy_to);
	free(cfg->schedule_copy_from);
	free(cfg->archive_repos);
	free(cfg->spool_dir);
	free(cfg->path);
	free(cfg->repo);
	free(cfg->passphrase_file);
	free(cfg->passphrase_command);
	free(cfg->pgdata);
	if (cfg->conninfo)
		secure_free(cfg->conninfo, strlen(cfg->conninfo));
	free(cfg->plugin_dir);
	memset(cfg, 0, sizeof(*cfg));
}

int config_repo(const struct pgk_config *cfg, const char *name, const struct pgk_config_repo **out)
{
	size_t i;

	if (!name)
		name = cfg->repo;
	if (!name) {
		if (cfg->nrepos == 1) {
			*out = &cfg->repos[0];
			return 0;
		}
		if (cfg->nrepos == 0)
			return pgk_error(PGKEEP_EINVAL, "%s: no [repo:NAME] section", cfg->path);
		return pgk_error(PGKEEP_EINVAL,
				 "%s: several repositories and no default; set repo in [global] or use --repo",
				 cfg->path);
	}
	for (i = 0; i < cfg->nrepos; i++) {
		if (strcmp(cfg->repos[i].name, name) == 0) {
			*out = &cfg->repos[i];
			return 0;
		}
	}
	return pgk_error(PGKEEP_ENOTFOUND, "%s: no repository named '%s'", cfg->path, name);
}

const char *config_repo_core_opt(const struct pgk_config_repo *rc, const char *key)
{
	size_t i;

	for (i = 0; i < rc->ncore_opts; i++)
		if (strcmp(rc->core_opts[i].key, key) == 0)
			return rc->core_opts[i].value;
	return NULL;
}

/* ---- the passphrase ---- */

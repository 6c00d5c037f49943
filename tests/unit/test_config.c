/*
 * The config file: a good one read completely, and every kind of bad one
 * refused with a message that names the file and the line.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/mem.h"
#include "tap.h"

static char dir[256];

static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* Load text as a config; expect failure with a message containing want
 * (with "@" replaced by the file's path). */
static void bad(const char *what, const char *text, const char *want)
{
	struct pgk_config cfg;
	char *path = write_file("bad.conf", text, 0600);
	char *msg, *at = strchr(want, '@');
	int ret;

	msg = at ? xasprintf("%.*s%s%s", (int)(at - want), want, path, at + 1) : xstrdup(want);
	ret = config_load(&cfg, path);
	ok(ret < 0 && strstr(pgk_errmsg(), msg), "%s: refused with \"%s\"", what, msg);
	if (ret == 0)
		config_free(&cfg);
	else if (!strstr(pgk_errmsg(), msg))
		diag("got: %s", pgk_errmsg());
	free(msg);
	free(path);
}

static void good(void)
{
	char *pf = write_file("pass", "s3cret phrase\nsecond line\n", 0600);
	char *text = xasprintf(
		"; pgkeep test config\n"
		"[global]\n"
		"repo = offsite\n"
		"passphrase_file = %s\n"
		"compression = zstd:7\n"
		"pgdata = /var/lib/postgresql/15/main\n"
		"conninfo = host=/run/postgresql dbname=postgres\n"
		"plugin_dir = /opt/pgkeep/plugins\n"
		"log_level = info\n"
		"jobs = 4\n"
		"archive_timeout = 60\n"
		"\n"
		"[repo:local]\n"
		"plugin = local\n"
		"  path = /srv/backup\n"
		"keep_daily = 7\n"
		"\n"
		"[repo:offsite]\n"
		"plugin = s3\n"
		"bucket = b\n"
		"lock_days = 30\n"
		"keep_last_base = 2\n"
		"endpoint = http://127.0.0.1:9000\n"
		"secret_access_key = abc\n", pf);
	char *path = write_file("good.conf", text, 0600);
	const struct pgk_config_repo *rc;
	struct pgk_config cfg;
	char *pass = NULL;
	int ret;

	ret = config_load(&cfg, path);
	is_int(ret, 0, "good config loads: %s", ret ? pgk_errmsg() : "ok");
	if (ret) {
		free(text);
		free(path);
		return;
	}
	is_str(cfg.repo, "offsite", "repo");
	is_str(cfg.passphrase_file, pf, "passphrase_file");
	is_int(cfg.compress_level, 7, "compression zstd:7");
	is_str(cfg.pgdata, "/var/lib/postgresql/15/main", "pgdata");
	is_str(cfg.conninfo, "host=/run/postgresql dbname=postgres", "conninfo");
	is_str(cfg.plugin_dir, "/opt/pgkeep/plugins", "plugin_dir");
	is_int(cfg.log_level, PGKEEP_LOG_INFO, "log_level");
	is_int(cfg.jobs, 4, "jobs");
	is_int(cfg.archive_timeout, 60, "archive_timeout");
	is_int(cfg.nrepos, 2, "two repositories");
	is_str(cfg.repos[0].name, "local", "first repo name");
	is_int(cfg.repos[0].line, 13, "its section line");
	is_int(cfg.repos[0].nopts, 1, "local: one plugin option (indented key is a key)");
	is_str(cfg.repos[0].opts[0].key, "path", "  path");
	is_str(cfg.repos[0].opts[0].value, "/srv/backup", "  its value");
	is_int(cfg.repos[0].opt_lines[0], 15, "  its line");
	is_str(config_repo_core_opt(&cfg.repos[0], "keep_daily"), "7", "keep_daily is a core option");
	is_int(cfg.repos[0].lock_days, 0, "lock_days defaults to 0");
	rc = &cfg.repos[1];
	is_str(rc->plugin, "s3", "offsite plugin");
	is_int(rc->lock_days, 30, "lock_days");
	is_int(rc->nopts, 3, "offsite: plugin options without plugin, lock_days and keep_*");
	ok(rc->nopts == 3 && strcmp(rc->opts[0].key, "bucket") == 0 &&
	   strcmp(rc->opts[1].key, "endpoint") == 0 && strcmp(rc->opts[2].key, "secret_access_key") == 0,
	   "plugin options in file order");
	is_str(config_repo_core_opt(rc, "keep_last_base"), "2", "keep_last_base is a core option");
	ok(config_repo_core_opt(rc, "bucket") == NULL, "bucket is not a core option");

	rc = NULL;
	ok(config_repo(&cfg, NULL, &rc) == 0 && rc == &cfg.repos[1], "default repository is [global] repo");
	ok(config_repo(&cfg, "local", &rc) == 0 && rc == &cfg.repos[0], "repository by name");
	ok(config_repo(&cfg, "nope", &rc) == PGKEEP_ENOTFOUND && strstr(pgk_errmsg(), "no repository named 'nope'"),
	   "unknown repository name: %s", pgk_errmsg());

	unsetenv("PGKEEP_PASSPHRASE");
	ret = config_passphrase(&cfg, &pass);
	ok(ret == 0 && pass && strcmp(pass, "s3cret phrase") == 0, "passphrase: first line of the file");
	free(pass);
	setenv("PGKEEP_PASSPHRASE", "from env", 1);
	ret = config_passphrase(&cfg, &pass);
	ok(ret == 0 && pass && strcmp(pass, "from env") == 0, "PGKEEP_PASSPHRASE wins");
	free(pass);
	setenv("PGKEEP_PASSPHRASE", "", 1);
	ok(config_passphrase(&cfg, &pass) < 0, "empty PGKEEP_PASSPHRASE is an error");
	unsetenv("PGKEEP_PASSPHRASE");
	/* The mode is checked again when the passphrase is read. */
	chmod(pf, 0640);
	ret = config_passphrase(&cfg, &pass);
	ok(ret < 0 && strstr(pgk_errmsg(), pf) && strstr(pgk_errmsg(), "chmod 600"),
	   "passphrase file opened up after load: refused");
	config_free(&cfg);

	/* The file holds secret_access_key: it must not be readable by others. */
	chmod(pf, 0600);
	chmod(path, 0644);
	ret = config_load(&cfg, path);
	ok(ret < 0 && strstr(pgk_errmsg(), path) && strstr(pgk_errmsg(), "chmod 600") &&
	   strstr(pgk_errmsg(), "secret_access_key"), "config with a secret and mode 0644: %s",
	   pgk_errmsg());
	unlink(pf);
	unlink(path);
	free(pf);
	free(text);
	free(path);
}

static void defaults(void)
{
	const struct pgk_config_repo *rc;
	struct pgk_config cfg;
	char *path = write_file("min.conf", "[repo:only]\nplugin=local\n", 0644);
	char *pass = NULL;
	int ret;

	ret = config_load(&cfg, path);
	is_int(ret, 0, "minimal config (no secrets, mode 0644) loads");
	if (ret == 0) {
		is_int(cfg.compress_level, 3, "compression defaults to zstd:3");
		is_int(cfg.log_level, -1, "log_level unset");
		is_int(cfg.jobs, 0, "jobs unset");
		is_int(cfg.archive_timeout, -1, "archive_timeout unset");
		is_int(cfg.wal_push_ahead, 8, "wal_push_ahead defaults to 8");
		is_int(cfg.wal_fetch_ahead, 4, "wal_fetch_ahead defaults to 4");
		ok(cfg.spool_dir == NULL, "spool_dir unset");
		ok(config_repo(&cfg, NULL, &rc) == 0 && strcmp(rc->name, "only") == 0,
		   "the only repository is the default");
		unsetenv("PGKEEP_PASSPHRASE");
		ok(config_passphrase(&cfg, &pass) < 0 && strstr(pgk_errmsg(), "no passphrase"),
		   "no passphrase source: %s", pgk_errmsg());
		config_free(&cfg);
	}
	free(path);
	path = write_file("two.conf", "[repo:a]\nplugin=local\n[repo:b]\nplugin=local\n", 0644);
	if (config_load(&cfg, path) == 0) {
		ok(config_repo(&cfg, NULL, &rc) < 0 && strstr(pgk_errmsg(), "no default"),
		   "two repositories, no default: %s", pgk_errmsg());
		config_free(&cfg);
	}
	free(path);
}

static void passphrase_command(void)
{
	struct pgk_config cfg;
	char *path, *pass = NULL;
	int ret;

	unsetenv("PGKEEP_PASSPHRASE");
	path = write_file("cmd.conf", "[global]\npassphrase_command = printf 'from command\\n\\n'\n"
			  "[repo:r]\nplugin = local\n", 0600);
	ok(config_load(&cfg, path) == 0, "config with passphrase_command");
	ret = config_passphrase(&cfg, &pass);
	ok(ret == 0 && pass && strcmp(pass, "from command\n") == 0,
	   "command output with one trailing newline stripped");
	free(pass);
	config_free(&cfg);
	free(path);

	path = write_file("cmd.conf", "[global]\n\npassphrase_command = echo leaked-output; exit 3\n"
			  "[repo:r]\nplugin = local\n", 0600);
	config_load(&cfg, path);
	ret = config_passphrase(&cfg, &pass);
	ok(ret < 0 && strstr(pgk_errmsg(), ":3: passphrase_command failed with exit status 3") &&
	   !strstr(pgk_errmsg(), "leaked"), "failing command: error names its line, not its output: %s",
	   pgk_errmsg());
	config_free(&cfg);
	free(path);

	path = write_file("cmd.conf", "[global]\npassphrase_command = true\n[repo:r]\nplugin = local\n", 0600);
	config_load(&cfg, path);
	ok(config_passphrase(&cfg, &pass) < 0 && strstr(pgk_errmsg(), "empty"),
	   "command printing nothing: %s", pgk_errmsg());
	config_free(&cfg);
	free(path);

	path = write_file("pass", "\nsecond\n", 0600);
	free(path);
	path = xasprintf("[global]\npassphrase_file = %s/pass\n[repo:r]\nplugin = local\n", dir);
	free(write_file("pf.conf", path, 0600));
	free(path);
	path = xasprintf("%s/pf.conf", dir);
	config_load(&cfg, path);
	ok(config_passphrase(&cfg, &pass) < 0 && strstr(pgk_errmsg(), "empty"),
	   "passphrase file with an empty first line: %s", pgk_errmsg());
	config_free(&cfg);
	free(path);
}

static void bad_configs(void)
{
	struct pgk_config cfg;
	char *path, *text;

	bad("unknown global key", "[global]\nrepo = a\nfoo = 1\n[repo:a]\nplugin=local\n",
	    "@:3: unknown key 'foo' in [global]");
	bad("unknown section", "[global]\n[backups]\nx = 1\n", "@:2: unknown section [backups]");
	bad("empty unknown section", "[repo:a]\nplugin=local\n[oops]\n", "@:3: unknown section [oops]");
	bad("bad compression", "[global]\ncompression = lz4\n", "@:2: compression: bad compression 'lz4'");
	bad("bad compression level", "[global]\ncompression = zstd:20\n", "@:2: compression: bad compression level");
	bad("bad int", "[global]\njobs = many\n", "@:2: jobs: bad value 'many'");
	bad("zero jobs", "[global]\njobs = 0\n", "@:2: jobs: bad value '0'");
	bad("negative lock_days", "[repo:a]\nplugin = local\nlock_days = -1\n", "@:3: lock_days: bad value '-1'");
	bad("bad log_level", "[global]\nlog_level = loud\n", "@:2: log_level: bad value 'loud'");
	bad("missing plugin", "[global]\n\n[repo:a]\npath = /x\n", "@:3: [repo:a] has no plugin key");
	bad("duplicate global key", "[global]\ncompression = none\ncompression = zstd\n",
	    "@:3: duplicate key 'compression' (first on line 2)");
	bad("duplicate plugin key", "[repo:a]\nplugin = local\npath = /a\npath = /b\n",
	    "@:4: duplicate key 'path' (first on line 3)");
	bad("duplicate section", "[repo:a]\nplugin = local\n[repo:a]\nplugin = s3\n",
	    "@:3: duplicate section [repo:a] (first on line 1)");
	bad("key before any section", "repo = a\n[repo:a]\nplugin = local\n", "@:1: key 'repo' outside any section");
	bad("syntax error", "[global]\nrepo a\n", "@:2: syntax error");
	bad("empty value", "[repo:a]\nplugin = local\npath =\n", "@:3: path: empty value");
	bad("default repo without section", "[global]\nrepo = b\n[repo:a]\nplugin = local\n",
	    "@:2: repo = b, but there is no [repo:b] section");
	bad("bad repo name", "[repo:a/b]\nplugin = local\n", "@:1: bad repository name 'a/b'");
	text = xasprintf("[repo:a]\nplugin = local\npath = /%0300d\n", 0);
	bad("overlong line", text, "@:3: line too long");
	free(text);

	path = xasprintf("%s/does-not-exist.conf", dir);
	ok(config_load(&cfg, path) == PGKEEP_ENOTFOUND && strstr(pgk_errmsg(), "cannot read config") &&
	   strstr(pgk_errmsg(), path), "missing file: %s", pgk_errmsg());
	free(path);

	path = write_file("pass", "x\n", 0644);
	text = xasprintf("[global]\npassphrase_file = %s\n[repo:a]\nplugin = local\n", path);
	free(path);
	path = xasprintf("passphrase file %s/pass is accessible by group or others (mode 0644); chmod 600 %s/pass",
			 dir, dir);
	bad("passphrase file mode 0644", text, path);
	free(path);
	free(text);
}

static void compression(void)
{
	int level = -1;

	ok(config_parse_compression("zstd", &level) == 0 && level == 3, "zstd is level 3");
	ok(config_parse_compression("zstd:1", &level) == 0 && level == 1, "zstd:1");
	ok(config_parse_compression("zstd:19", &level) == 0 && level == 19, "zstd:19");
	ok(config_parse_compression("none", &level) == 0 && level == 0, "none is 0");
	ok(config_parse_compression("zstd:0", &level) < 0, "zstd:0 refused");
	ok(config_parse_compression("zstd:", &level) < 0, "zstd: refused");
	ok(config_parse_compression("zstd:3x", &level) < 0, "zstd:3x refused");
	ok(config_parse_compression("gzip", &level) < 0, "gzip refused");
}

static void schedule_and_archive_repos(void)
{
	struct pgk_config cfg;
	char **names;
	size_t n;
	char *path;

	path = write_file("sched.conf",
			  "[global]\nrepo = a\narchive_repos = a, b\n"
			  "wal_push_ahead = 16\nwal_fetch_ahead = 0\nspool_dir = /var/spool/pg\n"
			  "[repo:a]\nplugin = local\n[repo:b]\nplugin = local\n"
			  "[schedule]\ndump = 30 1 * * *\nbase = @weekly\ncopy = 0 3 * * sun\ncopy_to = b\n",
			  0600);
	ok(config_load(&cfg, path) == 0, "schedule and archive_repos load: %s", pgk_errmsg());
	is_str(cfg.archive_repos, "a, b", "archive_repos kept as written");
	is_int(cfg.nschedule, 3, "three jobs");
	is_str(cfg.schedule[0].key, "dump", "first job");
	is_str(cfg.schedule[0].value, "30 1 * * *", "its cron");
	is_int(cfg.schedule_lines[1], 13, "the line of the second job (base)");
	is_int(cfg.wal_push_ahead, 16, "wal_push_ahead");
	is_int(cfg.wal_fetch_ahead, 0, "wal_fetch_ahead 0 turns prefetch off");
	is_str(cfg.spool_dir, "/var/spool/pg", "spool_dir");
	is_str(cfg.schedule_copy_to, "b", "copy_to");
	config_split_list(cfg.archive_repos, &names, &n);
	ok(n == 2 && strcmp(names[0], "a") == 0 && strcmp(names[1], "b") == 0,
	   "archive_repos splits into a, b");
	config_free_list(names, n);
	config_free(&cfg);
	free(path);

	bad("unknown job", "[schedule]\nbackup = * * * * *\n", "@:2: unknown job 'backup' in [schedule]");
	bad("bad cron", "[schedule]\ndump = 61 * * * *\n",
	    "@:2: dump: schedule '61 * * * *': minute 61 out of range");
	bad("duplicate job", "[schedule]\ndump = @daily\ndump = @weekly\n",
	    "@:3: duplicate key 'dump' (first on line 2)");
	bad("copy_to unknown repo", "[repo:a]\nplugin = local\n[schedule]\ncopy_to = z\n",
	    "[schedule] copy_to = z, but there is no [repo:z] section");
	bad("archive_repos unknown repo", "[global]\narchive_repos = a, z\n[repo:a]\nplugin = local\n",
	    "@:2: archive_repos names 'z', but there is no [repo:z] section");
	bad("wal_push_ahead too large", "[global]\nwal_push_ahead = 65\n",
	    "@:2: wal_push_ahead: bad value '65' (out of range: 0 to 64)");
	bad("relative spool_dir", "[global]\nspool_dir = spool\n",
	    "@:2: spool_dir: 'spool' is not an absolute path");
	bad("duplicate schedule section", "[schedule]\n[schedule]\n", "@:2: duplicate section [schedule]");
}

/* Numbers and durations go through the shared parser: units, ranges, no wrap. */
static void numbers_and_durations(void)
{
	struct pgk_config cfg;
	char *path;

	path = write_file("dur.conf", "[global]\narchive_timeout = 5min\nkey_cache = 1h30min\n"
			  "jobs = 8\n[repo:a]\nplugin = local\nkeep_within = 2w\n", 0600);
	ok(config_load(&cfg, path) == 0, "durations with units load: %s", pgk_errmsg());
	is_int(cfg.archive_timeout, 300, "archive_timeout = 5min is 300 s");
	is_int(cfg.key_cache, 5400, "key_cache = 1h30min is 5400 s");
	config_free(&cfg);
	free(path);
	path = write_file("dur.conf", "[global]\narchive_timeout = 120\n", 0600);
	ok(config_load(&cfg, path) == 0 && cfg.archive_timeout == 120,
	   "archive_timeout = 120: plain seconds");
	config_free(&cfg);
	free(path);

	bad("archive_timeout in m", "[global]\narchive_timeout = 5m\n",
	    "@:2: archive_timeout: bad value '5m' ('m' is ambiguous: write min for minutes or mon "
	    "for months)");
	bad("archive_timeout not a duration", "[global]\narchive_timeout = soon\n",
	    "@:2: archive_timeout: bad value 'soon'");
	bad("key_cache above its cap", "[global]\nkey_cache = 8d\n",
	    "@:2: key_cache: bad value '8d' (too long: at most 604800 seconds)");
	bad("jobs beyond 64 bits", "[global]\njobs = 99999999999999999999\n",
	    "@:2: jobs: bad value '99999999999999999999' (out of range: 1 to 1024)");
	bad("jobs with a sign", "[global]\njobs = +4\n", "@:2: jobs: bad value '+4'");
	bad("lock_days beyond int", "[repo:a]\nplugin = local\nlock_days = 4294967297\n",
	    "@:3: lock_days: bad value '4294967297' (out of range: 0 to 36500)");
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char *cmd;

	snprintf(dir, sizeof(dir), "%s/pgkeep-test-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		printf("Bail out! cannot create a temporary directory\n");
		return 1;
	}
	good();
	defaults();
	passphrase_command();
	bad_configs();
	compression();
	schedule_and_archive_repos();
	numbers_and_durations();
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	free(cmd);
	return done_testing();
}

/*
 * The config file: a good one read completely, and every kind of bad one
 * refused with a message that names the file and the line.
 */
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/store.h"
#include "tap.h"

/* A uid that owns nothing here and is not root. */
#define OTHER_UID 65534

static char dir[256];
static char me[64];		/* the account running the test */
static char other_owned[96];	/* "is owned by NAME" for OTHER_UID */

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
	path = xasprintf("passphrase file %s/pass is accessible by group or others (owner %s, mode 0644); chmod 600 %s/pass",
			 dir, me, dir);
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

/* Load text written to NAME with mode; expect a message containing want. */
static void refused_mode(const char *what, const char *name, const char *text, mode_t mode,
			 const char *want)
{
	struct pgk_config cfg;
	char *path = write_file(name, text, mode);
	int ret = config_load(&cfg, path);

	ok(ret < 0 && strstr(pgk_errmsg(), want) && strstr(pgk_errmsg(), path),
	   "%s: %s", what, ret < 0 ? pgk_errmsg() : "loaded");
	if (ret == 0)
		config_free(&cfg);
	free(path);
}

static void fail_chown(const char *path);

static void config_trust(void)
{
	static const char plain[] = "[repo:a]\nplugin = local\n";
	struct pgk_config cfg;
	char *path, *want;

	want = xasprintf("is writable by group or others (owner %s, mode 0666); chmod go-w", me);
	refused_mode("a config anyone may write", "w.conf", plain, 0666, want);
	free(want);
	want = xasprintf("is writable by group or others (owner %s, mode 0620)", me);
	refused_mode("a group-writable config", "w.conf", plain, 0620, want);
	free(want);
	refused_mode("a writable config is refused before it is parsed", "w.conf",
		     "[global]\npassphrase_command = touch /nonexistent\nbogus\n", 0666,
		     "writable by group or others");
	path = write_file("r.conf", plain, 0640);
	ok(config_load(&cfg, path) == 0, "a config group and others may only read loads: %s",
	   pgk_errmsg());
	config_free(&cfg);
	free(path);

	if (geteuid() != 0) {
		diag("not root: the owner checks need chown, run as root");
		return;
	}
	path = write_file("o.conf", plain, 0600);
	if (chown(path, OTHER_UID, OTHER_UID) < 0) {
		fail_chown(path);
		free(path);
		return;
	}
	want = xasprintf("%s (mode 0600), not by root, who runs pgkeep", other_owned);
	ok(config_load(&cfg, path) < 0 && strstr(pgk_errmsg(), want) && strstr(pgk_errmsg(), path),
	   "a config of another user: %s", pgk_errmsg());
	free(want);
	free(path);

	/* A passphrase file of another user, from root's own config. */
	path = write_file("pass", "x\n", 0600);
	if (chown(path, OTHER_UID, OTHER_UID) < 0)
		fail_chown(path);
	want = xasprintf("[global]\npassphrase_file = %s\n[repo:a]\nplugin = local\n", path);
	free(path);
	path = write_file("p.conf", want, 0600);
	free(want);
	ok(config_load(&cfg, path) < 0 && strstr(pgk_errmsg(), "passphrase file") &&
	   strstr(pgk_errmsg(), other_owned), "a passphrase file of another user: %s",
	   pgk_errmsg());
	free(path);
}

static void fail_chown(const char *path)
{
	ok(0, "chown %s", path);
}

static void repo_files(void)
{
	const struct pgk_config_repo *rc;
	struct pgk_config cfg;
	char *key = write_file("s3secret", "k\n", 0644), *ca = write_file("ca.pem", "c\n", 0644);
	char *text = xasprintf("[repo:s3]\nplugin = s3\nbucket = b\n"
			       "secret_access_key_file = %s\nca_file = %s\n"
			       "session_token_file = %s/nonexistent\n", key, ca, dir);
	char *path = write_file("files.conf", text, 0600);

	if (config_load(&cfg, path) < 0 || config_repo(&cfg, NULL, &rc) < 0) {
		ok(0, "config with credential files loads: %s", pgk_errmsg());
		goto out;
	}
	ok(config_check_repo_files(&cfg, rc) < 0 &&
	   strstr(pgk_errmsg(), ":4: secret_access_key_file ") && strstr(pgk_errmsg(), key) &&
	   strstr(pgk_errmsg(), "is accessible by group or others") &&
	   strstr(pgk_errmsg(), "mode 0644); chmod 600"),
	   "a credential file others can read is refused, naming line and file: %s", pgk_errmsg());
	chmod(key, 0600);
	ok(config_check_repo_files(&cfg, rc) == 0,
	   "0600 credential file, 0644 ca_file (public), missing file (the plugin's to report): %s",
	   pgk_errmsg());
	chmod(ca, 0664);
	ok(config_check_repo_files(&cfg, rc) < 0 && strstr(pgk_errmsg(), ":5: ca_file ") &&
	   strstr(pgk_errmsg(), "writable by group or others"), "a ca_file others may write: %s",
	   pgk_errmsg());
	config_free(&cfg);
out:
	free(path);
	free(text);
	free(key);
	free(ca);
}

static void secrets(void)
{
	struct pgk_config cfg;
	char *path;
	char msg[256];

	refused_mode("session_token is a secret", "tok.conf",
		     "[repo:a]\nplugin = s3\nsession_token = Tok-9f8e7d6c\n", 0644,
		     "holds a secret (session_token on line 3)");
	refused_mode("a conninfo URI password is a secret", "uri.conf",
		     "[global]\nconninfo = postgresql://alice:Uri-Pw-1a2b@db.example/app\n"
		     "[repo:a]\nplugin = local\n", 0644, "holds a secret (conninfo on line 2)");
	refused_mode("... and so is one in its query", "uri.conf",
		     "[global]\nconninfo = postgres://db.example/app?sslmode=require&password=Q-Pw-77\n"
		     "[repo:a]\nplugin = local\n", 0644, "holds a secret (conninfo on line 2)");
	ok(!config_conninfo_has_password("postgresql://alice@db.example:5432/app"),
	   "a URI with a user and no password has none");
	ok(!config_conninfo_has_password("host=/run/postgresql dbname=postgres"),
	   "neither has a plain keyword conninfo");
	ok(config_conninfo_has_password("host=h password = 'a b'"), "password = 'a b' is one");

	path = write_file("uri.conf",
			  "[global]\nconninfo = postgresql://alice:Uri%41Pw-1a2b@db.example/app\n"
			  "[repo:a]\nplugin = s3\nsession_token = Tok-9f8e7d6c\n", 0600);
	ok(config_load(&cfg, path) == 0, "a 0600 config with secrets loads: %s", pgk_errmsg());
	config_free(&cfg);
	snprintf(msg, sizeof(msg), "bad token \"Uri%%41Pw-1a2b\" then UriAPw-1a2b, Tok-9f8e7d6c.");
	config_scrub_secrets(msg);
	is_str(msg, "bad token \"***\" then ***, ***.",
	       "the URI password as written and decoded, and the token, are scrubbed from messages");
	free(path);
}

/* Plugins: the .so and the directory it is in, checked before dlopen. */
static void plugin_trust(void)
{
	const char *built = getenv("PGKEEP_TEST_PLUGIN_DIR");
	char *pdir = xasprintf("%s/plugins", dir), *so = xasprintf("%s/local.so", pdir), *cmd;
	struct pgk_store *st = NULL;
	int ret;

	if (!built) {
		ok(0, "PGKEEP_TEST_PLUGIN_DIR is set (run through make check)");
		goto out;
	}
	cmd = xasprintf("mkdir -p '%s' && cp '%s/local.so' '%s'", pdir, built, so);
	ok(system(cmd) == 0, "a private copy of the local plugin");
	free(cmd);
	chmod(pdir, 0755);
	chmod(so, 0755);
	ret = store_load(&st, so);
	ok(ret == 0, "it loads from a 0755 directory: %s", ret ? pgk_errmsg() : "ok");
	if (ret == 0)
		store_close(st);
	chmod(pdir, 0777);
	ok(store_load(&st, so) < 0 && strstr(pgk_errmsg(), "plugin directory ") &&
	   strstr(pgk_errmsg(), pdir) && strstr(pgk_errmsg(), "is writable by group or others"),
	   "a plugin directory anyone may write is refused: %s", pgk_errmsg());
	chmod(pdir, 0755);
	chmod(so, 0775);
	ok(store_load(&st, so) < 0 && strstr(pgk_errmsg(), "storage plugin ") &&
	   strstr(pgk_errmsg(), "mode 0775"), "a group-writable plugin is refused: %s", pgk_errmsg());
	chmod(so, 0755);
	if (geteuid() == 0) {
		if (chown(so, OTHER_UID, OTHER_UID) < 0)
			fail_chown(so);
		ok(store_load(&st, so) < 0 && strstr(pgk_errmsg(), other_owned),
		   "a plugin of another user is refused: %s", pgk_errmsg());
	}
out:
	free(pdir);
	free(so);
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
	path = write_file("dur.conf", "[global]\nstandby_wal_timeout = 15min\n", 0600);
	ok(config_load(&cfg, path) == 0, "standby_wal_timeout loads: %s", pgk_errmsg());
	is_int(cfg.standby_wal_timeout, 900, "standby_wal_timeout = 15min is 900 s");
	is_int(cfg.archive_timeout, -1, "... and leaves archive_timeout unset");
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
	bad("standby_wal_timeout not a duration", "[global]\nstandby_wal_timeout = later\n",
	    "@:2: standby_wal_timeout: bad value 'later'");
	bad("archive_timeout not a duration", "[global]\narchive_timeout = soon\n",
	    "@:2: archive_timeout: bad value 'soon'");
	bad("key_cache above its cap", "[global]\nkey_cache = 8d\n",
	    "@:2: key_cache: bad value '8d' (too long: at most 604800 seconds)");
	bad("jobs beyond 64 bits", "[global]\njobs = 99999999999999999999\n",
	    "@:2: jobs: bad value '99999999999999999999' (out of range: 1 to 1024)");
	bad("jobs with a sign", "[global]\njobs = +4\n", "@:2: jobs: bad value '+4'");
	bad("checksums neither sha256 nor crc32c", "[global]\nchecksums = md5\n",
	    "@:2: checksums: bad value 'md5' (sha256 or crc32c)");
	path = write_file("sums.conf", "[global]\nchecksums = CRC32C\n", 0600);
	ok(config_load(&cfg, path) == 0 && strcmp(cfg.checksums, "CRC32C") == 0,
	   "checksums = CRC32C, in any case");
	config_free(&cfg);
	free(path);
	path = write_file("sums.conf", "[global]\njobs = 2\n", 0600);
	ok(config_load(&cfg, path) == 0 && strcmp(cfg.checksums, "SHA256") == 0,
	   "checksums is SHA256 by default");
	config_free(&cfg);
	free(path);
	bad("lock_days beyond int", "[repo:a]\nplugin = local\nlock_days = 4294967297\n",
	    "@:3: lock_days: bad value '4294967297' (out of range: 0 to 36500)");
}

int main(void)
{
	struct passwd *pw;

	const char *tmp = getenv("TMPDIR");
	char *cmd;

	pw = getpwuid(OTHER_UID);
	if (pw)
		snprintf(other_owned, sizeof(other_owned), "is owned by %s", pw->pw_name);
	else
		snprintf(other_owned, sizeof(other_owned), "is owned by uid %u", OTHER_UID);
	pw = getpwuid(geteuid());
	if (pw)
		snprintf(me, sizeof(me), "%s", pw->pw_name);
	else
		snprintf(me, sizeof(me), "uid %u", (unsigned)geteuid());
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
	config_trust();
	repo_files();
	secrets();
	plugin_trust();
	numbers_and_durations();
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	free(cmd);
	return done_testing();
}

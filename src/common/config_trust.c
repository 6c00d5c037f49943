/*
 * Who may have written the files the configuration names: the config
 * itself, the passphrase file, a plugin's credential files.
 */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/config_int.h"
#include "common/error.h"
#include "common/mem.h"

/* "postgres", or "uid 1234" for a uid without an account. */
static void owner_name(uid_t uid, char *out, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(out, len, "%s", pw->pw_name);
	else
		snprintf(out, len, "uid %u", (unsigned)uid);
}

int config_check_trusted(const char *what, const char *path, const struct stat *sb, bool secret)
{
	unsigned mode = (unsigned)(sb->st_mode & 07777);
	char owner[64], me[64];

	owner_name(sb->st_uid, owner, sizeof(owner));
	if (sb->st_uid != geteuid() && sb->st_uid != 0) {
		owner_name(geteuid(), me, sizeof(me));
		return pgk_error(PGKEEP_EAUTH, "%s %s is owned by %s (mode %04o), not by %s%s",
				 what, path, owner, mode, geteuid() == 0 ? "root, who runs pgkeep" : me,
				 geteuid() == 0 ? "" : ", who runs pgkeep, or by root");
	}
	if (sb->st_mode & 022)
		return pgk_error(PGKEEP_EAUTH,
				 "%s %s is writable by group or others (owner %s, mode %04o); chmod go-w %s",
				 what, path, owner, mode, path);
	if (secret && (sb->st_mode & 077))
		return pgk_error(PGKEEP_EAUTH,
				 "%s %s is accessible by group or others (owner %s, mode %04o); chmod 600 %s",
				 what, path, owner, mode, path);
	return 0;
}

int config_check_modes(const struct pgk_config *cfg, int fd, const char *secret_key,
		       int secret_line)
{
	struct stat sb;
	char owner[64];
	int ret;

	if (secret_line) {
		if (fstat(fd, &sb) < 0)
			return pgk_error(PGKEEP_EIO, "cannot stat config %s: %s", cfg->path, strerror(errno));
		owner_name(sb.st_uid, owner, sizeof(owner));
		if (sb.st_mode & 077)
			return pgk_error(PGKEEP_EAUTH,
					 "config %s holds a secret (%s on line %d) but is accessible by group or others (owner %s, mode %04o); chmod 600 %s",
					 cfg->path, secret_key, secret_line, owner,
					 (unsigned)(sb.st_mode & 07777), cfg->path);
	}
	if (cfg->passphrase_file) {
		if (stat(cfg->passphrase_file, &sb) < 0)
			return pgk_error(PGKEEP_EIO, "%s:%d: passphrase_file %s: %s", cfg->path,
					 cfg->passphrase_file_line, cfg->passphrase_file, strerror(errno));
		ret = config_check_trusted("passphrase file", cfg->passphrase_file, &sb, true);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The config names code to run: only its owner (or root) may have written it. */
int config_check_file(const struct pgk_config *cfg, FILE *f)
{
	struct stat sb;

	if (fstat(fileno(f), &sb) < 0)
		return pgk_error(PGKEEP_EIO, "cannot stat config %s: %s", cfg->path, strerror(errno));
	return config_check_trusted("config", cfg->path, &sb, false);
}

int config_check_repo_files(const struct pgk_config *cfg, const struct pgk_config_repo *rc)
{
	struct stat sb;
	char *what;
	size_t i;
	int ret;

	for (i = 0; i < rc->nopts; i++) {
		const struct pgkeep_option *o = &rc->opts[i];

		/* A missing file is the plugin's to report, with its own words. */
		if (!config_is_file_option(o->key) || stat(o->value, &sb) < 0)
			continue;
		what = xasprintf("%s:%d: %s", cfg->path, rc->opt_lines[i], o->key);
		/* CA certificates are public; every other *_file holds a credential. */
		ret = config_check_trusted(what, o->value, &sb, strcmp(o->key, "ca_file") != 0);
		free(what);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The sftp plugin's options: parsed and checked at open into struct
 * sftp_settings, with defaults from the running user's ~/.ssh.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/numparse.h"
#include "sftp.h"

/* ---- settings ----------------------------------------------------------- */

static int parse_int(const char *key, const char *v, long min, long max, int *out, char *err)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s must be a whole number "
				   "from %ld to %ld, not '%s'", key, min, max, v);
	*out = (int)n;
	return PGKEEP_OK;
}

/* A duration as the agent reads one (common/numparse.h): "90", "30s", "2min". */
static int parse_secs(const char *key, const char *v, int min, int max, int *out, char *err)
{
	char msg[256];
	int64_t n;

	if (numparse_duration(key, v, PARSE_BARE_SECONDS, max, &n, msg, sizeof(msg)) < 0)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s", msg);
	if (n < min)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s: at least %d s, not '%s'",
				   key, min, v);
	*out = (int)n;
	return PGKEEP_OK;
}

static int parse_bool(const char *key, const char *v, bool *out, char *err)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return PGKEEP_OK;
	}
	if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return PGKEEP_OK;
	}
	return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option %s must be yes or no, not '%s'", key, v);
}

static int set_str(char **dst, const char *v, char *err)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? PGKEEP_OK : pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
}

/* A leading "~/" is the home of the account running pgkeep, as in ssh. */
static int set_path(char **dst, const char *v, char *err)
{
	struct passwd *pw;

	if (strncmp(v, "~/", 2))
		return set_str(dst, v, err);
	pw = getpwuid(geteuid());
	if (!pw || !pw->pw_dir)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot expand %s: uid %u has no home "
				   "directory", v, (unsigned)geteuid());
	free(*dst);
	if (asprintf(dst, "%s/%s", pw->pw_dir, v + 2) < 0) {
		*dst = NULL;
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	}
	return PGKEEP_OK;
}

/* The first line of the passphrase file; never echoed anywhere. */
static int read_passphrase(struct sftp_settings *set, const char *value, char *err)
{
	char *file = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int rc;

	rc = set_path(&file, value, err);
	if (rc)
		return rc;
	f = fopen(file, "re");
	if (!f) {
		rc = pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot read identity_passphrase_file %s: %s",
				 file, strerror(errno));
		free(file);
		return rc;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		rc = pgkeep_fail(err, PGKEEP_EINVAL, "sftp: identity_passphrase_file %s is empty", file);
		free(file);
		return rc;
	}
	free(file);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (set->passphrase) {
		OPENSSL_cleanse(set->passphrase, strlen(set->passphrase));
		free(set->passphrase);
	}
	set->passphrase = line;
	return PGKEEP_OK;
}

void sftp_settings_free(struct sftp_settings *set)
{
	free(set->host);
	free(set->user);
	free(set->path);
	free(set->identity_file);
	free(set->known_hosts);
	if (set->passphrase) {
		OPENSSL_cleanse(set->passphrase, strlen(set->passphrase));
		free(set->passphrase);
	}
	memset(set, 0, sizeof(*set));
}

static int settings_one(struct sftp_settings *set, const char *k, const char *v, char *err)
{
	if (!strcmp(k, "host"))
		return set_str(&set->host, v, err);
	if (!strcmp(k, "port"))
		return parse_int(k, v, 1, 65535, &set->port, err);
	if (!strcmp(k, "user"))
		return set_str(&set->user, v, err);
	if (!strcmp(k, "path"))
		return set_str(&set->path, v, err);
	if (!strcmp(k, "identity_file"))
		return set_path(&set->identity_file, v, err);
	if (!strcmp(k, "identity_passphrase_file"))
		return read_passphrase(set, v, err);
	if (!strcmp(k, "use_agent"))
		return parse_bool(k, v, &set->use_agent, err);
	if (!strcmp(k, "create"))
		return parse_bool(k, v, &set->create, err);
	if (!strcmp(k, "known_hosts"))
		return set_path(&set->known_hosts, v, err);
	if (!strcmp(k, "connect_timeout"))
		return parse_secs(k, v, 1, 3600, &set->connect_timeout, err);
	if (!strcmp(k, "timeout"))
		return parse_secs(k, v, 1, 86400, &set->timeout, err);
	if (!strcmp(k, "keepalive"))
		return parse_secs(k, v, 0, 86400, &set->keepalive, err);
	if (!strcmp(k, "max_connections"))
		return parse_int(k, v, 1, 64, &set->max_connections, err);
	return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: unknown option '%s'", k);
}

/* Fill in what the config left out from the account running pgkeep. */
static int settings_defaults(struct sftp_settings *set, char *err)
{
	struct passwd *pw = getpwuid(geteuid());
	char buf[4096];
	size_t n;

	if (!set->host)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option host is required");
	if (!set->path || !*set->path)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option path is required "
				   "(the repository's directory on the server)");
	n = strlen(set->path);
	while (n > 0 && set->path[n - 1] == '/')
		set->path[--n] = '\0';	/* "/" becomes "" and keys get "/KEY" */
	if (!set->identity_file && !set->use_agent)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: set identity_file (an ed25519 or ECDSA "
				   "key) or use_agent = yes");
	if (!set->user) {
		if (!pw)
			return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option user is required "
					   "(uid %u has no account name)", (unsigned)geteuid());
		if (set_str(&set->user, pw->pw_name, err))
			return PGKEEP_ENOMEM;
	}
	if (!set->known_hosts) {
		if (!pw || !pw->pw_dir)
			return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: option known_hosts is required "
					   "(uid %u has no home directory)", (unsigned)geteuid());
		snprintf(buf, sizeof(buf), "%s/.ssh/known_hosts", pw->pw_dir);
		if (set_str(&set->known_hosts, buf, err))
			return PGKEEP_ENOMEM;
	}
	return PGKEEP_OK;
}

int sftp_settings_parse(struct sftp_settings *set, const struct pgkeep_option *opts,
			size_t nopts, char *err)
{
	int rc;

	memset(set, 0, sizeof(*set));
	set->port = 22;
	set->connect_timeout = 10;
	set->timeout = 60;
	set->keepalive = 15;
	set->max_connections = 8;
	for (size_t i = 0; i < nopts; i++) {
		rc = settings_one(set, opts[i].key, opts[i].value ? opts[i].value : "", err);
		if (rc)
			return rc;
	}
	return settings_defaults(set, err);
}

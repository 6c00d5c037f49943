/*
 * The repository passphrase: from $PGKEEP_PASSPHRASE, the passphrase_file
 * or the output of passphrase_command; every copy is wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/mem.h"

#define PASSPHRASE_MAX 4096

static int take_line(char *buf, size_t len, bool first_line_only, char **out, const char *what)
{
	size_t n = len;
	char *nl;
	int ret = 0;

	if (first_line_only) {
		nl = memchr(buf, '\n', len);
		if (nl)
			n = (size_t)(nl - buf);
	} else if (n && buf[n - 1] == '\n') {
		n--;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	if (n == 0 || memchr(buf, '\0', n))
		ret = pgk_error(PGKEEP_EINVAL, "%s gives an empty or invalid passphrase", what);
	else
		*out = xstrndup(buf, n);
	secure_zero(buf, len);
	return ret;
}

static int passphrase_from_file(const struct pgk_config *cfg, char **out)
{
	char buf[PASSPHRASE_MAX];
	struct stat sb;
	size_t len = 0;
	ssize_t n;
	char *what;
	int fd, ret;

	fd = open(cfg->passphrase_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot read passphrase file %s: %s", cfg->passphrase_file,
				 strerror(errno));
	if (fstat(fd, &sb) < 0) {
		ret = pgk_error(PGKEEP_EIO, "cannot stat passphrase file %s: %s", cfg->passphrase_file,
				strerror(errno));
		goto out_close;
	}
	ret = config_check_trusted("passphrase file", cfg->passphrase_file, &sb, true);
	if (ret < 0)
		goto out_close;
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = pgk_error(PGKEEP_EIO, "cannot read passphrase file %s: %s",
					cfg->passphrase_file, strerror(errno));
			goto out_wipe;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	what = xasprintf("passphrase file %s", cfg->passphrase_file);
	ret = take_line(buf, len, true, out, what);
	free(what);
out_wipe:
	secure_zero(buf, sizeof(buf));
out_close:
	close(fd);
	return ret;
}

static int passphrase_from_command(const struct pgk_config *cfg, char **out)
{
	char buf[PASSPHRASE_MAX];
	size_t len = 0, n;
	char *what;
	FILE *p;
	int status, ret;

	/* popen runs the command through /bin/sh -c. */
	fflush(NULL);
	p = popen(cfg->passphrase_command, "re");
	if (!p)
		return pgk_error(PGKEEP_EIO, "%s:%d: cannot run passphrase_command: %s", cfg->path,
				 cfg->passphrase_command_line, strerror(errno));
	while ((n = fread(buf + len, 1, sizeof(buf) - len, p)) > 0) {
		len += n;
		if (len == sizeof(buf))
			break;
	}
	/* Drain anything longer so the command does not die of SIGPIPE. */
	if (len == sizeof(buf)) {
		char junk[512];

		while (fread(junk, 1, sizeof(junk), p) > 0)
			;
		secure_zero(junk, sizeof(junk));
	}
	status = pclose(p);
	if (status == -1) {
		ret = pgk_error(PGKEEP_EIO, "%s:%d: passphrase_command: %s", cfg->path,
				cfg->passphrase_command_line, strerror(errno));
	} else if (WIFSIGNALED(status)) {
		ret = pgk_error(PGKEEP_EIO, "%s:%d: passphrase_command was killed by signal %d",
				cfg->path, cfg->passphrase_command_line, WTERMSIG(status));
	} else if (WEXITSTATUS(status) != 0) {
		ret = pgk_error(PGKEEP_EIO, "%s:%d: passphrase_command failed with exit status %d",
				cfg->path, cfg->passphrase_command_line, WEXITSTATUS(status));
	} else if (len == sizeof(buf)) {
		ret = pgk_error(PGKEEP_EINVAL, "%s:%d: passphrase_command printed more than %d bytes",
				cfg->path, cfg->passphrase_command_line, PASSPHRASE_MAX - 1);
	} else {
		what = xasprintf("%s:%d: passphrase_command", cfg->path, cfg->passphrase_command_line);
		ret = take_line(buf, len, false, out, what);
		free(what);
	}
	secure_zero(buf, sizeof(buf));
	return ret;
}

int config_passphrase(const struct pgk_config *cfg, char **out)
{
	const char *env = getenv("PGKEEP_PASSPHRASE");

	*out = NULL;
	if (env) {
		if (!*env)
			return pgk_error(PGKEEP_EINVAL, "PGKEEP_PASSPHRASE is set but empty");
		*out = xstrdup(env);
		return 0;
	}
	if (cfg->passphrase_file)
		return passphrase_from_file(cfg, out);
	if (cfg->passphrase_command)
		return passphrase_from_command(cfg, out);
	return pgk_error(PGKEEP_EINVAL,
			 "no passphrase: set PGKEEP_PASSPHRASE, or passphrase_file or passphrase_command in %s",
			 cfg->path);
}

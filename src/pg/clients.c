/*
 * Choosing a pg_dump, pg_dumpall or pg_restore for a server's major version
 * among the installed ones (see clients.h): Debian's versioned directories,
 * an explicit PGKEEP_PG_BINDIR, PATH.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/child.h"
#include "pg/clients.h"

#define DEBIAN_LIBDIR "/usr/lib/postgresql"
#define VERSION_TEXT_MAX 256

extern char **environ;

int pg_client_version_parse(const char *text)
{
	const char *p = strstr(text, "(PostgreSQL) ");
	char *end;
	long v;

	if (!p)
		return -1;
	p += strlen("(PostgreSQL) ");
	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p || errno || v <= 0 || v > 1000)
		return -1;
	return (int)v;
}

/* What `path --version` says its major version is; -1 when it does not. */
static int probe_version(const char *path)
{
	char *argv[] = { (char *)path, "--version", NULL };
	char text[VERSION_TEXT_MAX];
	struct pg_child c;
	size_t len = 0;
	ssize_t n;

	if (child_start(&c, argv, environ, CHILD_PIPE_STDOUT) < 0) {
		pgk_error_clear();
		return -1;
	}
	while (len < sizeof(text) - 1) {
		n = read(c.fd, text + len, sizeof(text) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	if (child_wait(&c) < 0) {
		pgk_error_clear();
		return -1;
	}
	return pg_client_version_parse(text);
}

/* The highest N >= major with LIBDIR/N/bin/prog executable; 0 when none. */
static int newest_in(const char *libdir, const char *prog, int major)
{
	DIR *d = opendir(libdir);
	struct dirent *e;
	char *path, *end;
	long v;
	int best = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		v = strtol(e->d_name, &end, 10);
		if (*end || v < major || v <= best || v > 1000)
			continue;
		path = xasprintf("%s/%ld/bin/%s", libdir, v, prog);
		if (access(path, X_OK) == 0)
			best = (int)v;
		free(path);
	}
	closedir(d);
	return best;
}

int pg_client_find_in(const char *libdir, const char *prog, int major, char **out)
{
	const char *dir = getenv("PGKEEP_PG_BINDIR");
	char *path;
	int v;

	if (dir && *dir) {
		path = xasprintf("%s/%s", dir, prog);
		v = probe_version(path);
		/* The user's explicit choice, unless it says it is too old. */
		if (v < 0 || v >= major) {
			*out = path;
			return 0;
		}
		pgk_log_info("%s is PostgreSQL %d's, older than the server's %d: not used", path, v,
			     major);
		free(path);
	}
	v = newest_in(libdir, prog, major);
	if (v > 0) {
		*out = xasprintf("%s/%d/bin/%s", libdir, v, prog);
		return 0;
	}
	v = probe_version(prog);
	if (v >= major) {
		*out = xstrdup(prog);
		return 0;
	}
	return pgk_error(PGKEEP_EINVAL, "PostgreSQL %d server needs %s %d or newer; install "
			 "postgresql-client-%d", major, prog, major, major);
}

int pg_client_find(const char *prog, int major, char **out)
{
	return pg_client_find_in(DEBIAN_LIBDIR, prog, major, out);
}

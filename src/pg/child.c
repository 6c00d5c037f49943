/*
 * Child processes for PostgreSQL's client programs: posix_spawn with an
 * allow-listed environment, one pipe to us, stderr captured in a private file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/child.h"

#define STDERR_TAIL 4096

char *child_find_program(const char *prog, int major)
{
	const char *dir = getenv("PGKEEP_PG_BINDIR");
	char *path;

	if (dir && *dir)
		return xasprintf("%s/%s", dir, prog);
	if (major > 0) {
		path = xasprintf("/usr/lib/postgresql/%d/bin/%s", major, prog);
		if (access(path, X_OK) == 0)
			return path;
		free(path);
	}
	return xstrdup(prog);
}

static int open_errfile(void)
{
	const char *tmp = getenv("TMPDIR");
	char *path;
	int fd;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	path = xasprintf("%s/pgkeep-stderr-XXXXXX", tmp);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

static int spawn_actions(posix_spawn_file_actions_t *fa, int pipe_fd, int errfd,
			 enum child_pipe dir)
{
	int rc;

	rc = posix_spawn_file_actions_init(fa);
	if (rc)
		return rc;
	if (dir == CHILD_PIPE_STDOUT) {
		rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
		if (!rc)
			rc = posix_spawn_file_actions_adddup2(fa, pipe_fd, 1);
	} else {
		rc = posix_spawn_file_actions_adddup2(fa, pipe_fd, 0);
		if (!rc)
			rc = posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
	}
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, errfd, 2);
	if (rc)
		posix_spawn_file_actions_destroy(fa);
	return rc;
}

static int spawn_attrs(posix_spawnattr_t *at)
{
	sigset_t none, dfl;
	int rc;

	rc = posix_spawnattr_init(at);
	if (rc)
		return rc;
	sigemptyset(&none);
	sigemptyset(&dfl);
	/* We ignore SIGPIPE; the child should die of it as usual. */
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	rc = posix_spawnattr_setsigmask(at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(at, &dfl);
	if (!rc)
		rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (rc)
		posix_spawnattr_destroy(at);
	return rc;
}

/* Names containing these are credentials, whatever their prefix. */
static bool secret_name(const char *name, size_t len)
{
	static const char *const words[] = { "SECRET", "TOKEN", "PASSWORD", "PASSPHRASE",
					     "CREDENTIAL", "_KEY" };
	char *upper = xstrndup(name, len);
	bool hit = false;
	size_t i;

	for (i = 0; i < len; i++)
		if (upper[i] >= 'a' && upper[i] <= 'z')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	for (i = 0; i < sizeof(words) / sizeof(words[0]) && !hit; i++)
		hit = strstr(upper, words[i]) != NULL;
	free(upper);
	return hit;
}

bool child_env_allowed(const char *entry)
{
	static const char *const names[] = { "PATH", "HOME", "USER", "LOGNAME", "LANG",
					     "LANGUAGE", "TZ", "TMPDIR", "PG_COLOR",
					     "KRB5CCNAME", "KRB5_CONFIG", "KRB5_KTNAME",
					     "SSL_CERT_FILE", "SSL_CERT_DIR" };
	const char *eq = strchr(entry, '=');
	size_t len, i;

	if (!eq)
		return false;
	len = (size_t)(eq - entry);
	/* libpq's own variables; the connection's password is the child's to use. */
	if (len == 10 && strncmp(entry, "PGPASSWORD", 10) == 0)
		return true;
	if (secret_name(entry, len))
		return false;
	if (len > 2 && strncmp(entry, "PG", 2) == 0 && strncmp(entry, "PGKEEP", 6) != 0)
		return true;
	if (len > 3 && strncmp(entry, "LC_", 3) == 0)
		return true;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncmp(entry, names[i], len) == 0)
			return true;
	return false;
}

/* envp less what child_env_allowed refuses; the strings are envp's. */
static char **filter_env(char *const envp[])
{
	char **out;
	size_t n = 0, i = 0;

	while (envp && envp[n])
		n++;
	out = xmalloc((n + 1) * sizeof(*out));
	for (n = 0; envp && envp[n]; n++)
		if (child_env_allowed(envp[n]))
			out[i++] = envp[n];
	out[i] = NULL;
	return out;
}

int child_start(struct pg_child *c, char *const argv[], char *const envp[],
		enum child_pipe dir)
{
	char **env;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int fds[2], theirs, rc;
	const char *slash;

	memset(c, 0, sizeof(*c));
	c->fd = c->errfd = -1;
	slash = strrchr(argv[0], '/');
	c->name = xstrdup(slash ? slash + 1 : argv[0]);
	c->errfd = open_errfile();
	if (c->errfd < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create a file for the stderr of %s: %s",
			       c->name, strerror(errno));
		goto out_free;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create a pipe for %s: %s", c->name,
			       strerror(errno));
		goto out_errfd;
	}
	theirs = dir == CHILD_PIPE_STDOUT ? fds[1] : fds[0];
	c->fd = dir == CHILD_PIPE_STDOUT ? fds[0] : fds[1];
	rc = spawn_actions(&fa, theirs, c->errfd, dir);
	if (rc) {
		rc = pgk_error(PGKEEP_EIO, "cannot prepare to start %s: %s", c->name, strerror(rc));
		goto out_pipe;
	}
	rc = spawn_attrs(&at);
	if (rc) {
		posix_spawn_file_actions_destroy(&fa);
		rc = pgk_error(PGKEEP_EIO, "cannot prepare to start %s: %s", c->name, strerror(rc));
		goto out_pipe;
	}
	env = filter_env(envp);
	rc = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, env);
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		rc = pgk_error(PGKEEP_EIO, "cannot run %s: %s", argv[0], strerror(rc));
		goto out_pipe;
	}
	close(theirs);
	pgk_log_debug("started %s (pid %d)", argv[0], (int)c->pid);
	return 0;
out_pipe:
	close(fds[0]);
	close(fds[1]);
	c->fd = -1;
out_errfd:
	close(c->errfd);
	c->errfd = -1;
out_free:
	free(c->name);
	c->name = NULL;
	return rc;
}

void child_close_pipe(struct pg_child *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

char *child_stderr(struct pg_child *c)
{
	struct pgk_buf b = PGK_BUF_INIT;
	char tmp[4096];
	off_t off = 0;
	ssize_t n;

	buf_printf(&b, "%s", "");
	if (c->errfd < 0)
		return buf_detach(&b);
	while ((n = pread(c->errfd, tmp, sizeof(tmp), off)) > 0) {
		buf_append(&b, tmp, (size_t)n);
		off += n;
	}
	return buf_detach(&b);
}

/* The last non-empty line of the child's stderr, or NULL. */
static char *last_line(struct pg_child *c)
{
	char tmp[STDERR_TAIL + 1], *end, *start;
	struct stat st;
	off_t off;
	ssize_t n;

	if (c->errfd < 0 || fstat(c->errfd, &st) < 0 || st.st_size == 0)
		return NULL;
	off = st.st_size > STDERR_TAIL ? st.st_size - STDERR_TAIL : 0;
	n = pread(c->errfd, tmp, STDERR_TAIL, off);
	if (n <= 0)
		return NULL;
	tmp[n] = '\0';
	end = tmp + n;
	while (end > tmp && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	start = strrchr(tmp, '\n');
	start = start ? start + 1 : tmp;
	return *start ? xstrdup(start) : NULL;
}

static void release(struct pg_child *c)
{
	child_close_pipe(c);
	if (c->errfd >= 0)
		close(c->errfd);
	c->errfd = -1;
	free(c->name);
	c->name = NULL;
	c->pid = 0;
}

static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

int child_wait(struct pg_child *c)
{
	char *line = NULL, *all;
	int status, rc = 0;

	if (!c->pid)
		return 0;
	child_close_pipe(c);
	if (reap(c->pid, &status) < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot wait for %s: %s", c->name, strerror(errno));
		goto out;
	}
	all = child_stderr(c);
	if (*all)
		pgk_log_debug("%s said: %s", c->name, all);
	free(all);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		goto out;
	line = last_line(c);
	if (WIFEXITED(status))
		rc = pgk_error(PGKEEP_EIO, "%s exited with status %d%s%s", c->name,
			       WEXITSTATUS(status), line ? ": " : "", line ? line : "");
	else
		rc = pgk_error(PGKEEP_EIO, "%s was killed by signal %d%s%s", c->name,
			       WTERMSIG(status), line ? ": " : "", line ? line : "");
	free(line);
out:
	release(c);
	return rc;
}

void child_abort(struct pg_child *c)
{
	int status;

	if (!c->pid)
		return;
	child_close_pipe(c);
	kill(c->pid, SIGTERM);
	reap(c->pid, &status);
	release(c);
}

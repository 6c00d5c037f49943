/*
 * What a pgkeep process leaves and hands on: out of memory is a one-line
 * error and an exit status (no abort, no core file), and a child program
 * gets an allow-listed environment without pgkeep's or the stores' secrets.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/child.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
#define PGK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PGK_ASAN 1
#endif
#endif

#ifdef PGK_ASAN
/* Under ASan a huge malloc must return NULL, as it does without it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* sanitizer/common_interface_defs.h, declared here to need no header. */
void __sanitizer_set_report_path(const char *path);
#endif

enum oom_how { OOM_HUGE, OOM_ADDRESS_LIMIT, OOM_REALLOC, OOM_BUFFER };

static void oom_child(enum oom_how how)
{
	struct pgk_buf b = PGK_BUF_INIT;
	void *p = NULL;

	pgk_log_command = "wal-fetch";
#ifdef PGK_ASAN
	/*
	 * ASan warns of the huge request it refuses (a warning, not a report):
	 * to this child's stderr, where the check below reads past it, not to
	 * the sanitizer log directory, which must stay empty.
	 */
	__sanitizer_set_report_path("stderr");
#endif
	switch (how) {
	case OOM_HUGE:
		p = xmalloc(SIZE_MAX / 2);
		break;
	case OOM_ADDRESS_LIMIT: {
		/* ulimit -v 64 MiB, then ask for 256 MiB. */
		struct rlimit rl = { 64 << 20, 64 << 20 };

		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(99);
		p = xzalloc((size_t)256 << 20);
		break;
	}
	case OOM_REALLOC: {
		/* Still reachable when the child exits: a failed realloc keeps
		 * the block, and valgrind must not count it as lost. */
		static void *volatile keep;

		keep = xmalloc(16);
		p = xrealloc(keep, SIZE_MAX / 2);
		break;
	}
	case OOM_BUFFER:
		buf_reserve(&b, SIZE_MAX / 4);
		break;
	}
	free(p);
	_exit(0);
}

/* Run oom_child(how) in a child; its wait status and stderr. */
static int run_oom(enum oom_how how, char *err, size_t errlen)
{
	int fds[2], status = -1;
	char junk[512];
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		oom_child(how);
	}
	close(fds[1]);
	/* Read to the end, keeping what fits: a child blocked on a full pipe never exits. */
	while ((n = read(fds[0], len + 1 < errlen ? err + len : junk,
			 len + 1 < errlen ? errlen - 1 - len : sizeof(junk))) > 0)
		if (len + 1 < errlen)
			len += (size_t)n;
	err[len] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void out_of_memory(void)
{
	static const struct {
		enum oom_how how;
		const char *what;
	} cases[] = {
		{ OOM_HUGE, "xmalloc of half the address space" },
		{ OOM_ADDRESS_LIMIT, "xzalloc of 256 MiB under a 64 MiB address-space limit" },
		{ OOM_REALLOC, "xrealloc" },
		{ OOM_BUFFER, "a growing buffer" },
	};
	char err[512], *msg;
	size_t i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#ifdef PGK_ASAN
		/* ASan's shadow memory does not fit in 64 MiB. */
		if (cases[i].how == OOM_ADDRESS_LIMIT)
			continue;
#endif
		st = run_oom(cases[i].how, err, sizeof(err));
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 128,
		   "%s: exits with status 128 (above 125: restore_command stops recovery), no signal",
		   cases[i].what);
		if (WIFSIGNALED(st))
			diag("killed by signal %d", WTERMSIG(st));
		msg = err;
#ifdef PGK_ASAN
		/* The sanitizer's own "==PID==WARNING" lines are not pgkeep's. */
		while (strncmp(msg, "==", 2) == 0 && strchr(msg, '\n'))
			msg = strchr(msg, '\n') + 1;
#endif
		ok(strncmp(msg, "pgkeep: wal-fetch: error: out of memory (allocating ", 52) == 0 &&
		   strchr(msg, '\n') == msg + strlen(msg) - 1,
		   "... after one line naming the command: %.*s", (int)strcspn(msg, "\n"), msg);
	}
}

static void child_environment(void)
{
	char *argv[] = { "/usr/bin/env", NULL };
	char *envp[] = {
		"PATH=/usr/bin:/bin", "HOME=/var/lib/postgresql", "LC_ALL=C", "TZ=UTC",
		"PGHOST=/run/postgresql", "PGPORT=5433", "PGPASSWORD=conn-pw", "PGSSLMODE=require",
		"PGPASSFILE=/var/lib/postgresql/.pgpass",
		"PGKEEP_PASSPHRASE=pgkeep-pass", "PGKEEP_CONFIG=/etc/pgkeep/pgkeep.conf",
		"AWS_SECRET_ACCESS_KEY=aws-secret", "AWS_ACCESS_KEY_ID=aws-id",
		"AWS_SESSION_TOKEN=aws-token", "B2_APPLICATION_KEY=b2-key", "GITHUB_TOKEN=gh",
		"VAULT_TOKEN=vault", "MY_DB_PASSWORD=mine", "PG_SECRET=pgs", "LD_PRELOAD=/tmp/x.so",
		NULL,
	};
	static const char *const kept[] = {
		"PATH=/usr/bin:/bin", "HOME=/var/lib/postgresql", "LC_ALL=C", "TZ=UTC",
		"PGHOST=/run/postgresql", "PGPORT=5433", "PGPASSWORD=conn-pw", "PGSSLMODE=require",
		"PGPASSFILE=/var/lib/postgresql/.pgpass",
	};
	struct pgk_buf out = PGK_BUF_INIT;
	struct pg_child c;
	char buf[4096], *text, *line;
	size_t i, nkept = 0, nlines = 0;
	ssize_t n;

	if (child_start(&c, argv, envp, CHILD_PIPE_STDOUT) < 0) {
		ok(0, "start env as a child: %s", pgk_errmsg());
		return;
	}
	while ((n = read(c.fd, buf, sizeof(buf))) > 0)
		buf_append(&out, buf, (size_t)n);
	ok(child_wait(&c) == 0, "env ran as a child");
	text = buf_detach(&out);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		bool known = false;

		nlines++;
		for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
			known = known || strcmp(line, kept[i]) == 0;
		if (known)
			nkept++;
		else
			diag("passed on: %s", line);
	}
	is_int(nkept, sizeof(kept) / sizeof(kept[0]),
	       "PATH, HOME, LC_*, TZ and libpq's PG* variables reach the child");
	is_int(nlines, nkept,
	       "nothing else: no PGKEEP_*, AWS_*, B2_*, *TOKEN*, *PASSWORD* but PGPASSWORD, LD_PRELOAD");
	free(text);

	ok(child_env_allowed("PGDATABASE=x") && child_env_allowed("LC_MESSAGES=C") &&
	   child_env_allowed("PGPASSWORD=x"), "PGDATABASE, LC_MESSAGES, PGPASSWORD pass");
	ok(!child_env_allowed("PGKEEP_PG_BINDIR=/x") && !child_env_allowed("pgkeep_x=1") &&
	   !child_env_allowed("NOEQUALS") && !child_env_allowed("PGSSL_PRIVATE_KEY=x"),
	   "PGKEEP_*, unknown names, entries without '=' and PG names holding _KEY do not");
}

int main(void)
{
	out_of_memory();
	child_environment();
	return done_testing();
}

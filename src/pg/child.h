/*
 * PostgreSQL's client programs (pg_basebackup, pg_dump, pg_dumpall,
 * pg_restore, psql) run as children: no shell, an explicit environment, and
 * stdin or stdout as a pipe to us.  Their stderr goes to a private temporary
 * file, so a chatty child can never block on a pipe nobody reads, and its
 * last line explains a failure.
 */
#ifndef PGK_CHILD_H
#define PGK_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

enum child_pipe {
	CHILD_PIPE_STDOUT,	/* we read what the child writes (a backup) */
	CHILD_PIPE_STDIN,	/* we write what the child reads (a restore) */
};

struct pg_child {
	pid_t pid;
	int fd;			/* our end of the pipe, -1 once closed */
	int errfd;		/* the child's stderr (an unlinked file) */
	char *name;		/* program name, for messages */
};

/*
 * The program `prog` of the PostgreSQL installation matching server major
 * version `major` (0 = any): $PGKEEP_PG_BINDIR/prog when that is set, else
 * the Debian layout /usr/lib/postgresql/MAJOR/bin/prog when it exists, else
 * plain `prog`, looked up in PATH.  Free the result.
 */
char *child_find_program(const char *prog, int major);

/*
 * Whether an environment entry ("NAME=value") reaches a child: PATH, HOME,
 * USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR, PG_COLOR, Kerberos and
 * OpenSSL certificate locations, and libpq's PG* variables (PGPASSWORD
 * included: the connection's password is the child's to use); never
 * PGKEEP_*, the stores' credentials (AWS_*, B2_*...) or any name containing
 * SECRET, TOKEN, PASSWORD, PASSPHRASE, CREDENTIAL or _KEY.
 */
bool child_env_allowed(const char *entry);

/*
 * Start argv[0] (a path, or a name looked up in PATH) with the entries of
 * envp that child_env_allowed lets through.  The other standard stream is
 * /dev/null: stdin of an output child, stdout of an input child.
 */
int child_start(struct pg_child *c, char *const argv[], char *const envp[],
		enum child_pipe dir);

/* Close our pipe end (EOF for an input child). */
void child_close_pipe(struct pg_child *c);

/*
 * Wait for the child.  0 when it exited 0; otherwise an error naming the
 * program, its status and the last line it wrote to stderr.
 */
int child_wait(struct pg_child *c);

/* SIGTERM the child (after our own failure), reap it, release everything. */
void child_abort(struct pg_child *c);

/* The child's whole stderr so far (for -v), NUL-terminated; free it. */
char *child_stderr(struct pg_child *c);

#endif

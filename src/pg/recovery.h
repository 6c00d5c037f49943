/*
 * Recovery configuration of a restored data directory: recovery.signal and
 * the settings in postgresql.auto.conf that make PostgreSQL fetch WAL
 * through pgkeep and stop at the requested target.
 */
#ifndef PGK_RECOVERY_H
#define PGK_RECOVERY_H

#include <stdbool.h>

enum recovery_target {
	TARGET_NONE,		/* replay to the end of the archive */
	TARGET_TIME,
	TARGET_LSN,
	TARGET_XID,
	TARGET_NAME,
	TARGET_IMMEDIATE,	/* stop as soon as the backup is consistent */
};

struct recovery_settings {
	const char *restore_command;
	enum recovery_target target;
	const char *target_value;	/* not for NONE / IMMEDIATE */
	const char *action;		/* promote | pause | shutdown; NULL for NONE */
	bool archive_off;		/* archive_mode = off in the restored server */
	const char *comment;		/* one line, written above the settings */
};

/*
 * Rewrite PGDATA/postgresql.auto.conf (the backup's copy) without any
 * earlier restore_command or recovery_target* line, with ours appended, and
 * write recovery.signal.  Both files are written atomically and fsynced,
 * relative to dirfd (the data directory; pgdata names it in messages),
 * never through a symbolic link.
 */
int recovery_write(int dirfd, const char *pgdata, const struct recovery_settings *s);

/* 'it''s' for postgresql.conf. */
char *conf_quote(const char *s);
/* 'it'\''s' for /bin/sh (restore_command runs through the shell). */
char *shell_quote(const char *s);

/* The name of a target setting: "recovery_target_time", ... */
const char *recovery_target_setting(enum recovery_target t);

#endif

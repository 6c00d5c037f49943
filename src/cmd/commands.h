/*
 * The commands.  Each lives in its own file under src/cmd/ with its option
 * table (cmd/options.h), parses its own options, and returns the process
 * exit status.
 */
#ifndef PGK_COMMANDS_H
#define PGK_COMMANDS_H

/* Exit statuses shared by every command. */
#define PGK_EXIT_OK 0
#define PGK_EXIT_NOTFOUND 1   /* wal-fetch: the archive confirms the file is absent */
#define PGK_EXIT_ERROR 2      /* any failure */
#define PGK_EXIT_USAGE 3      /* bad command line */
#define PGK_EXIT_FATAL 128    /* wal-fetch: > 125 makes PostgreSQL stop recovery */

/* What the global options chose, before the command name. */
struct pgk_globals {
	const char *config_path;  /* --config, else $PGKEEP_CONFIG, else the default */
	const char *repo_name;    /* --repo, else the config's [global] repo */
};

typedef int (*pgk_cmd_fn)(const struct pgk_globals *g, int argc, char **argv);

struct opt_spec;

struct pgk_command {
	const struct opt_spec *spec;	/* name, summary, options: cmd/options.h */
	pgk_cmd_fn run;
};

/* The table, terminated by a NULL name (src/main.c). */
extern const struct pgk_command pgk_commands[];

/* Each command's option table, beside its entry function. */
extern const struct opt_spec init_cli, wal_push_cli, wal_fetch_cli, expire_cli, pin_cli,
	unpin_cli, drill_cli, daemon_cli, schedule_cli, check_cli, verify_cli, backup_cli,
	restore_cli, list_cli, info_cli, copy_cli, metrics_cli, import_dump_cli;

int cmd_init(const struct pgk_globals *g, int argc, char **argv);
int cmd_wal_push(const struct pgk_globals *g, int argc, char **argv);
int cmd_wal_fetch(const struct pgk_globals *g, int argc, char **argv);
int cmd_expire(const struct pgk_globals *g, int argc, char **argv);
int cmd_pin(const struct pgk_globals *g, int argc, char **argv);
int cmd_unpin(const struct pgk_globals *g, int argc, char **argv);
int cmd_drill(const struct pgk_globals *g, int argc, char **argv);
int cmd_daemon(const struct pgk_globals *g, int argc, char **argv);
int cmd_schedule(const struct pgk_globals *g, int argc, char **argv);
int cmd_check(const struct pgk_globals *g, int argc, char **argv);
int cmd_verify(const struct pgk_globals *g, int argc, char **argv);
int cmd_backup(const struct pgk_globals *g, int argc, char **argv);
int cmd_restore(const struct pgk_globals *g, int argc, char **argv);
int cmd_list(const struct pgk_globals *g, int argc, char **argv);
int cmd_info(const struct pgk_globals *g, int argc, char **argv);
int cmd_copy(const struct pgk_globals *g, int argc, char **argv);
int cmd_metrics(const struct pgk_globals *g, int argc, char **argv);
int cmd_import_dump(const struct pgk_globals *g, int argc, char **argv);

#endif

/*
 * What pgkeep asks a running PostgreSQL server through libpq before a backup
 * or a logical restore: identity, version, layout and archiving settings.
 * The conninfo comes from the config; it never reaches a command line.
 */
#ifndef PGK_PGCONN_H
#define PGK_PGCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgconn;

struct pg_server_info {
	int version;		/* server_version_num, e.g. 150004 */
	uint64_t sysid;		/* pg_control_system().system_identifier */
	uint32_t timeline;	/* of the latest checkpoint */
	uint32_t wal_seg_size;	/* bytes */
	bool in_recovery;	/* a standby */
	char archive_mode[16];	/* off | on | always */
	char *archive_command;	/* "" when unset */
	char *archive_library;	/* "" when unset */
	char *dbname;		/* the database connected to */
};

/* Connect with conninfo (NULL or "" = libpq's defaults and environment). */
int pgconn_open(struct pgconn **out, const char *conninfo, const char *dbname);
void pgconn_close(struct pgconn *c);

/* 0 for a server_version_num pgkeep supports; else a one-line refusal
 * naming the versions it does. */
int pgconn_check_version(int version);
int pgconn_server_info(struct pgconn *c, struct pg_server_info *out);
void pg_server_info_free(struct pg_server_info *i);

/* Names of tablespaces other than pg_default and pg_global ("" when none),
 * comma-separated with their locations, for an error message. */
int pgconn_extra_tablespaces(struct pgconn *c, char **out, int *count);

/*
 * A base backup waiting for WAL archiving (the last step of
 * pg_backup_stop): its process (0: none waits), how many files the
 * archiver has stored, and its last failed WAL file (NULL: none; free it).
 */
struct archive_wait {
	int pid;
	long long archived;
	char *last_failed;
};
int pgconn_archive_wait(struct pgconn *c, struct archive_wait *out);

/* Cancel the walsender serving application_name `appname` (a base backup
 * we gave up on: the server would otherwise wait for archiving for ever). */
int pgconn_cancel_walsender(struct pgconn *c, const char *appname);

/* The server's clock_timestamp(), in microseconds since the epoch. */
int pgconn_clock_us(struct pgconn *c, int64_t *out);
/* Size in bytes of a database. */
int pgconn_database_size(struct pgconn *c, const char *dbname, uint64_t *out);
/* Connectable, non-template databases, sorted. */
int pgconn_databases(struct pgconn *c, char ***out, size_t *n);
bool pgconn_database_exists(struct pgconn *c, const char *dbname, int *err);
/* CREATE DATABASE "name" TEMPLATE template0 (a restore target must be empty). */
int pgconn_create_database(struct pgconn *c, const char *dbname);

/*
 * Environment for a child program (pg_dump, pg_basebackup, ...) that makes
 * it connect where conninfo says: each conninfo keyword becomes its PG*
 * variable, so no connection detail (a password least of all) appears in
 * argv.  dbname, when not NULL, replaces the conninfo's database, and
 * appname the application_name (so we can find the child's session).  The
 * array is NULL-terminated, built on the current environment; free with
 * pgconn_env_free.
 */
int pgconn_child_env(const char *conninfo, const char *dbname, const char *appname,
		     char ***envp);
void pgconn_env_free(char **envp);

#endif

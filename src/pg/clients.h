/*
 * Which installed pg_dump, pg_dumpall or pg_restore serves a server: the
 * newest at least as new as the server's major version, as those programs
 * refuse (or misread) a newer server.  pgkeep does not re-implement them.
 */
#ifndef PGK_CLIENTS_H
#define PGK_CLIENTS_H

/*
 * The path of client program `prog` for a server of major version `major`
 * (e.g. 17): $PGKEEP_PG_BINDIR/prog when that is set and new enough (or
 * says no version), else the newest LIBDIR/N/bin/prog with N >= major
 * (Debian's layout, LIBDIR /usr/lib/postgresql), else prog from PATH when
 * it is new enough.  None: "PostgreSQL 17 server needs pg_dump 17 or newer;
 * install postgresql-client-17".  Free *out.
 */
int pg_client_find(const char *prog, int major, char **out);
int pg_client_find_in(const char *libdir, const char *prog, int major, char **out);

/* The major version in `prog --version` output ("pg_dump (PostgreSQL)
 * 15.8 (Debian ...)"), -1 when there is none. */
int pg_client_version_parse(const char *text);

#endif

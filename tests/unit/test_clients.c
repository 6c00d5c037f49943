/*
 * Which pg_dump serves a server: the newest installed at least as new as
 * the server, PGKEEP_PG_BINDIR's when it is new enough, and a message
 * naming the package to install when there is none; and the one-line
 * refusal of a server version pgkeep does not support.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "common/error.h"
#include "pg/clients.h"
#include "pg/pgconn.h"

static char root[] = "/tmp/pgkeep-test-clients.XXXXXX";

/* ROOT/lib/MAJOR/bin/PROG, a script answering --version as pg_dump does. */
static void install(const char *sub, const char *prog, int major)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "mkdir -p %s/%s", root, sub);
	if (system(path) != 0)
		return;
	snprintf(path, sizeof(path), "%s/%s/%s", root, sub, prog);
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "#!/bin/sh\necho '%s (PostgreSQL) %d.3 (Debian %d.3-1)'\n", prog, major, major);
	fclose(f);
	chmod(path, 0755);
}

static void find(const char *prog, int major, const char *want, const char *why)
{
	char lib[512], *got = NULL, wantpath[512];
	int rc;

	snprintf(lib, sizeof(lib), "%s/lib", root);
	rc = pg_client_find_in(lib, prog, major, &got);
	if (!want) {
		ok(rc < 0, "%s: refused", why);
		return;
	}
	snprintf(wantpath, sizeof(wantpath), "%s/%s", root, want);
	is_str(rc == 0 ? got : pgk_errmsg(), wantpath, "%s", why);
	free(got);
}

static void test_choice(void)
{
	char bindir[512], *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

	unsetenv("PGKEEP_PG_BINDIR");
	install("lib/14/bin", "pg_dump", 14);
	install("lib/16/bin", "pg_dump", 16);
	install("lib/17/bin", "pg_dump", 17);
	install("lib/17/bin", "pg_restore", 17);
	install("lib/notaversion/bin", "pg_dump", 99);
	snprintf(bindir, sizeof(bindir), "%s/own", root);
	install("own", "pg_dump", 16);
	install("own", "pg_restore", 0);
	find("pg_dump", 15, "lib/17/bin/pg_dump", "a 15 server gets the newest, 17");
	find("pg_dump", 17, "lib/17/bin/pg_dump", "a 17 server gets 17");
	find("pg_restore", 16, "lib/17/bin/pg_restore", "pg_restore likewise");
	/* PATH has no pg_dump 18 in the test environment either. */
	setenv("PATH", root, 1);
	find("pg_dump", 18, NULL, "an 18 server with clients up to 17");
	is_str(pgk_errmsg(), "PostgreSQL 18 server needs pg_dump 18 or newer; install "
	       "postgresql-client-18", "  saying which package to install");
	find("pg_dumpall", 16, NULL, "a program no directory has");
	is_str(pgk_errmsg(), "PostgreSQL 16 server needs pg_dumpall 16 or newer; install "
	       "postgresql-client-16", "  naming that program");

	setenv("PGKEEP_PG_BINDIR", bindir, 1);
	find("pg_dump", 15, "own/pg_dump", "PGKEEP_PG_BINDIR's 16 for a 15 server, over 17");
	find("pg_dump", 17, "lib/17/bin/pg_dump", "but not for a 17 server: it is too old");
	find("pg_dump", 18, NULL, "nor for an 18 server");
	find("pg_restore", 17, "own/pg_restore", "one that names no version is taken as told");
	unsetenv("PGKEEP_PG_BINDIR");
	if (path)
		setenv("PATH", path, 1);
	free(path);
}

static void test_versions(void)
{
	is_int(pg_client_version_parse("pg_dump (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)\n"), 15,
	       "pg_dump 15.8's --version");
	is_int(pg_client_version_parse("pg_dump (PostgreSQL) 18beta1\n"), 18, "a beta");
	is_int(pg_client_version_parse("pg_dump (PostgreSQL) 9.6.24\n"), 9, "9.6");
	is_int(pg_client_version_parse("something else 17\n"), -1, "not pg_dump's output");
	is_int(pg_client_version_parse(""), -1, "nothing");

	is_int(pgconn_check_version(150000), 0, "a 15 server is supported");
	is_int(pgconn_check_version(180004), 0, "an 18 server is supported");
	ok(pgconn_check_version(140010) < 0, "a 14 server is refused");
	is_str(pgk_errmsg(), "PostgreSQL 14 (server_version_num 140010) is not supported: pgkeep "
	       "supports PostgreSQL 15, 16, 17 and 18", "  naming the supported versions");
	ok(pgconn_check_version(190000) < 0, "a 19 server is refused");
	is_str(pgk_errmsg(), "PostgreSQL 19 (server_version_num 190000) is not supported: pgkeep "
	       "supports PostgreSQL 15, 16, 17 and 18", "  likewise");
	ok(pgconn_check_version(90624) < 0 && strstr(pgk_errmsg(), "PostgreSQL 9.6 "),
	   "9.6 is named as such: %s", pgk_errmsg());
}

int main(void)
{
	char cmd[600];

	if (!mkdtemp(root)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	test_choice();
	test_versions();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		diag("cannot remove %s", root);
	return done_testing();
}

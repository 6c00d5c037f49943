/*
 * pgkeep: global options, then dispatch to one command.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "cmd/commands.h"
#include "local/keycache.h"
#include "common/log.h"
#include "src/revision.h"

const struct pgk_command pgk_commands[] = {
	{ "init", cmd_init, "create a repository",
	  "  --kdf-n N          scrypt cost (power of two; default 32768)\n" },
	{ "wal-push", cmd_wal_push, "archive a WAL file (archive_command = 'pgkeep wal-push %p')",
	  "  PATH               the file to archive (%p)\n" },
	{ "wal-fetch", cmd_wal_fetch, "restore a WAL file (restore_command = 'pgkeep wal-fetch %f %p')",
	  "  NAME PATH          the file wanted (%f) and where to write it (%p)\n" },
	{ "backup", cmd_backup, "take a base backup (pg_basebackup) or a dump (pg_dump)",
	  "  --type=base|dump   physical base backup, or logical dump of one database\n"
	  "  --db NAME          dump this database (default: the conninfo's)\n"
	  "  --all              dump the globals and every connectable database\n"
	  "  --label TEXT       recorded with the backup\n"
	  "  --progress=MODE    auto (a live line when stderr is a terminal), json (one\n"
	  "                     JSON object per line on stderr) or none\n"
	  "  --jobs N           worker threads (default: jobs in the config, else 4)\n"
	  "  --checksums=ALG    base backups: the server's manifest checksums, sha256 or\n"
	  "                     crc32c (default: checksums in the config, else sha256);\n"
	  "                     restore verifies every file by them\n" },
	{ "restore", cmd_restore, "restore a backup (ID or latest), to a point in time for base backups",
	  "  --pgdata DIR       base backups: a new or empty data directory\n"
	  "  --force            empty a non-empty DIR first / replace an --output file\n"
	  "  --target-time T    stop recovery at this time ('2026-02-20 14:30:00+01')\n"
	  "  --target-lsn LSN   ... at this WAL location\n"
	  "  --target-xid XID   ... after this transaction\n"
	  "  --target-name NAME ... at this pg_create_restore_point() name\n"
	  "  --target-immediate ... as soon as the backup is consistent\n"
	  "  --target-action A  promote (default), pause or shutdown\n"
	  "  --archive-mode M   preserve (default) or off: the restored server archives no WAL\n"
	  "  --tablespace-map OLDDIR=NEWDIR\n"
	  "                     restore the tablespace backed up from OLDDIR into NEWDIR (a new\n"
	  "                     or empty directory; '\\=' for '=' in a path); repeatable\n"
	  "  --dbname NAME      dumps: pg_restore into this database\n"
	  "  --create           create the database first\n"
	  "  --output FILE      dumps: write the dump file itself ('-' for stdout)\n"
	  "  --stream NAME      which stream of a --all dump (globals.sql, DB.dump)\n"
	  "  --progress=MODE    auto (a live line when stderr is a terminal), json (one\n"
	  "                     JSON object per line on stderr) or none\n"
	  "  --jobs N           worker threads (default: jobs in the config, else 4)\n" },
	{ "list", cmd_list, "list the backups of the repository",
	  "  --all-repos        every repository, with the ones each backup is in\n" },
	{ "info", cmd_info, "show backups and the WAL archive (--json for monitoring)",
	  "  --json             print one JSON object\n"
	  "  --all-repos        also every other repository, and where each backup is\n" },
	{ "metrics", cmd_metrics, "write every repository's health in Prometheus text format",
	  "  --output FILE      write FILE atomically (node_exporter textfile collector)\n"
	  "                     instead of stdout; exit 2 when a repository is unreadable\n" },
	{ "import-dump", cmd_import_dump, "store an existing pg_dump file as a dump backup",
	  "  FILE               plain SQL (gzip, bzip2, xz or zstd compressed or not) or\n"
	  "                     custom format (pg_dump -Fc)\n"
	  "  --db NAME          the database it is a dump of (default: the custom\n"
	  "                     header's, else unknown)\n"
	  "  --time T           when it was taken, 'YYYY-MM-DD HH:MM[:SS]' local time (or\n"
	  "                     with Z / +HH[:MM]); default: the custom header's, else the\n"
	  "                     file's modification time\n"
	  "  --label TEXT       recorded with the backup (default: imported)\n"
	  "  --progress=MODE    auto, json or none, as for backup\n" },
	{ "expire", cmd_expire, "apply the retention policy: remove old backups, their chunks and WAL",
	  "  --dry-run          show what would be removed, remove nothing\n"
	  "  --json             print the decisions as JSON\n"
	  "  --grace DURATION   keep unreferenced chunks younger than this (default 1h; 0 = none)\n"
	  "  --lock-wait DUR    wait this long for running commands to finish (default 60)\n"
	  "  --all-repos        every repository of the config in turn, each with its own keep_*\n" },
	{ "pin", cmd_pin, "keep a backup whatever the retention policy says",
	  "  ID                 the backup\n"
	  "  --note TEXT        why it is kept\n" },
	{ "unpin", cmd_unpin, "let the retention policy decide about a backup again",
	  "  ID                 the backup\n" },
	{ "verify", cmd_verify, "check that every backup and the WAL archive are complete",
	  "  --read-data        fetch, decrypt and check every chunk (default: check they exist)\n"
	  "  --json             print the result as JSON\n"
	  "  --all-repos        verify every repository of the config in turn\n" },
	{ "check", cmd_check, "check config, repository, PostgreSQL and WAL archiving end to end",
	  "  --timeout DUR      how long to wait for a switched segment (default archive_timeout, else 60)\n" },
	{ "drill", cmd_drill, "restore the newest base backup into a scratch cluster and check it works",
	  "  --dir DIR          where the scratch directory goes (default /var/tmp)\n"
	  "  --keep             keep the scratch directory afterwards\n"
	  "  --timeout DUR      how long recovery may take (default 3600)\n" },
	{ "copy", cmd_copy, "copy backups and the WAL they need to another repository",
	  "  --to NAME          the repository to copy to (required)\n"
	  "  --from NAME        the repository to copy from (default: --repo, else the default)\n"
	  "  ID... | --missing  these backups ('latest' = the newest), or every one --to lacks\n"
	  "  --lock-wait DUR    wait this long for an exclusive lock to go (default 60)\n" },
	{ "daemon", cmd_daemon, "run the jobs of the [schedule] section (for hosts without systemd)",
	  "  (no options; SIGTERM stops it after the running jobs)\n" },
	{ "schedule", cmd_schedule, "print the next run of every job in [schedule]",
	  "  (no options)\n" },
	{ NULL, NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	const struct pgk_command *c;

	fprintf(out,
		"usage: pgkeep [--config FILE] [--repo NAME] [-v|-q] COMMAND [ARGS]\n"
		"\n"
		"commands:\n");
	for (c = pgk_commands; c->name; c++)
		fprintf(out, "  %-12s %s\n", c->name, c->summary);
	fprintf(out, "\n'pgkeep help COMMAND' shows a command's options.\n");
}

static const struct pgk_command *find_command(const char *name)
{
	const struct pgk_command *c;

	for (c = pgk_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int help(const char *name)
{
	const struct pgk_command *c;

	if (!name) {
		usage(stdout);
		return PGK_EXIT_OK;
	}
	c = find_command(name);
	if (!c) {
		fprintf(stderr, "pgkeep: unknown command '%s'\n", name);
		return PGK_EXIT_USAGE;
	}
	printf("usage: pgkeep %s [OPTIONS]\n%s\n\n%s", c->name, c->summary, c->usage);
	return PGK_EXIT_OK;
}

/*
 * A core file of any command would hold the passphrase and the keys, and a
 * dumpable process lets any other of the same user read its memory.
 */
static void no_core_dumps(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Root takes code only from its config's plugin_dir and the built-in one,
 * also after it has become the owner of a user's files. */
static void root_environment(void)
{
	if (geteuid() == 0)
		unsetenv("PGKEEP_PLUGIN_DIR");
}

/* The release and the source revision it was built from, for bug reports. */
static int print_version(void)
{
	printf("pgkeep %s (revision %s)\n", PACKAGE_VERSION, PGKEEP_REVISION);
	return PGK_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "repo", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct pgk_globals g = { NULL, NULL };
	const struct pgk_command *c;
	int opt;

	no_core_dumps();
	root_environment();
	/* The key cache agent, started by an earlier command (see keycache.h). */
	if (argc >= 2 && strcmp(argv[1], KEYCACHE_AGENT_ARG) == 0)
		return keycache_agent_exec_main(argc, argv);
	keycache_agent_exe = "/proc/self/exe";

	/* '+': stop at the command name, which owns the rest of argv. */
	while ((opt = getopt_long(argc, argv, "+c:r:vqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': g.config_path = optarg; break;
		case 'r': g.repo_name = optarg; break;
		case 'v': if (pgk_log_level < PGKEEP_LOG_DEBUG) pgk_log_level++; break;
		case 'q': pgk_log_level = PGKEEP_LOG_ERROR; break;
		case 'h': usage(stdout); return PGK_EXIT_OK;
		case 'V': return print_version();
		default: usage(stderr); return PGK_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return PGK_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
		return help(optind + 1 < argc ? argv[optind + 1] : NULL);
	if (strcmp(argv[optind], "version") == 0)
		return print_version();
	c = find_command(argv[optind]);
	if (!c) {
		fprintf(stderr, "pgkeep: unknown command '%s' (see 'pgkeep help')\n", argv[optind]);
		return PGK_EXIT_USAGE;
	}
	pgk_log_command = c->name;
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the command's own parsing (GNU: 0 re-initialises) */
	return c->run(&g, argc, argv);
}

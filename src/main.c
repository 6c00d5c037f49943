/*
 * pgkeep: global options, then dispatch to one command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "cmd/commands.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "local/keycache.h"
#include "src/revision.h"

const struct pgk_command pgk_commands[] = {
	{ &init_cli, cmd_init },
	{ &wal_push_cli, cmd_wal_push },
	{ &wal_fetch_cli, cmd_wal_fetch },
	{ &backup_cli, cmd_backup },
	{ &restore_cli, cmd_restore },
	{ &list_cli, cmd_list },
	{ &info_cli, cmd_info },
	{ &metrics_cli, cmd_metrics },
	{ &import_dump_cli, cmd_import_dump },
	{ &expire_cli, cmd_expire },
	{ &pin_cli, cmd_pin },
	{ &unpin_cli, cmd_unpin },
	{ &verify_cli, cmd_verify },
	{ &check_cli, cmd_check },
	{ &drill_cli, cmd_drill },
	{ &copy_cli, cmd_copy },
	{ &daemon_cli, cmd_daemon },
	{ &schedule_cli, cmd_schedule },
	{ NULL, NULL },
};

static void usage(FILE *out)
{
	const struct pgk_command *c;

	fprintf(out,
		"usage: pgkeep [--config FILE] [--repo NAME] [-v|-q] COMMAND [ARGS]\n"
		"\n"
		"commands:\n");
	for (c = pgk_commands; c->spec; c++)
		fprintf(out, "  %-12s %s\n", c->spec->command, c->spec->summary);
	fprintf(out, "\noptions, before the command (all but --version also after it):\n");
	opt_help_globals(out);
	fprintf(out, "\n'pgkeep help COMMAND' or 'pgkeep COMMAND --help' shows a command's options.\n");
}

/* The command called name, or NULL with the message said (and the nearest name). */
static const struct pgk_command *find_command(const char *name)
{
	const char *names[sizeof(pgk_commands) / sizeof(pgk_commands[0])], *near;
	const struct pgk_command *c;
	size_t n = 0;

	for (c = pgk_commands; c->spec; c++) {
		if (strcmp(c->spec->command, name) == 0)
			return c;
		names[n++] = c->spec->command;
	}
	near = opt_nearest(name, names, n);
	if (near)
		fprintf(stderr, "pgkeep: unknown command '%s'; did you mean '%s'?\n", name, near);
	else
		fprintf(stderr, "pgkeep: unknown command '%s' (see 'pgkeep help')\n", name);
	return NULL;
}

/* Every option of every command, for the tests that hold them against
 * the help and the manual. */
static void dump_options(void)
{
	const struct pgk_command *c;

	opt_dump(NULL, stdout);
	for (c = pgk_commands; c->spec; c++)
		opt_dump(c->spec, stdout);
}

static int help(const char *name)
{
	const struct pgk_command *c;

	if (!name) {
		usage(stdout);
		return PGK_EXIT_OK;
	}
	if (strcmp(name, "--dump-options") == 0) {
		dump_options();
		return PGK_EXIT_OK;
	}
	c = find_command(name);
	if (!c)
		return PGK_EXIT_USAGE;
	opt_help(c->spec, stdout);
	return PGK_EXIT_OK;
}

/* Options after the command name: the global ones, --help; then the command. */
static int run_command(const struct pgk_command *c, struct pgk_globals *g, int argc, char **argv)
{
	int ret, end;

	pgk_log_command = c->spec->command;
	ret = opt_globals(c->spec, argc, argv, g, &end);
	if (ret < 0)
		return opt_fail(c->spec);
	if (ret == OPT_HELP_ASKED) {
		opt_help(c->spec, stdout);
		return PGK_EXIT_OK;
	}
	return c->run(g, argc, argv);
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

int main(int argc, char **argv)
{
	struct pgk_globals g = { NULL, NULL };
	const struct pgk_command *c;
	int ret, cmd;

	no_core_dumps();
	root_environment();
	/* The key cache agent, started by an earlier command (see keycache.h). */
	if (argc >= 2 && strcmp(argv[1], KEYCACHE_AGENT_ARG) == 0)
		return keycache_agent_exec_main(argc, argv);
	keycache_agent_exe = "/proc/self/exe";

	ret = opt_globals(NULL, argc, argv, &g, &cmd);
	if (ret < 0) {
		pgk_log_error("%s", pgk_errmsg());
		usage(stderr);
		return PGK_EXIT_USAGE;
	}
	if (ret == OPT_HELP_ASKED) {
		usage(stdout);
		return PGK_EXIT_OK;
	}
	if (ret == OPT_VERSION_ASKED || (cmd < argc && strcmp(argv[cmd], "version") == 0)) {
		printf("pgkeep %s (revision %s)\n", PACKAGE_VERSION, PGKEEP_REVISION);
		return PGK_EXIT_OK;
	}
	if (cmd >= argc) {
		usage(stderr);
		return PGK_EXIT_USAGE;
	}
	if (strcmp(argv[cmd], "help") == 0)
		return help(cmd + 1 < argc ? argv[cmd + 1] : NULL);
	c = find_command(argv[cmd]);
	if (!c)
		return PGK_EXIT_USAGE;
	return run_command(c, &g, argc - cmd, argv + cmd);
}

/*
 * pgkeep pin ID [--note TEXT] / pgkeep unpin ID: keep a backup, and the WAL
 * it needs, whatever the retention policy says.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "common/error.h"
#include "common/log.h"
#include "repo/layout.h"
#include "repo/manifest.h"
#include "repo/pin.h"

static int pin_main(const struct pgk_globals *g, int argc, char **argv, bool pin)
{
	static const struct option opts[] = {
		{ "note", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct pgk_config cfg = { 0 };
	struct repo *r = NULL;
	const char *note = "";
	struct pgkeep_stat st;
	char key[128];
	int c, ret = PGK_EXIT_ERROR;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'n' || !pin)
			return PGK_EXIT_USAGE;
		note = optarg;
	}
	if (optind + 1 != argc) {
		pgk_log_error("usage: pgkeep %s ID%s", pin ? "pin" : "unpin", pin ? " [--note TEXT]" : "");
		return PGK_EXIT_USAGE;
	}
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	if (ctx_open_repo(g, &cfg, &r) < 0)
		goto fail;
	if (pin) {
		layout_manifest_key(argv[optind], key, sizeof(key));
		if (store_stat(r->store, key, &st) < 0) {
			pgk_error(PGKEEP_ENOTFOUND, "no backup %s in repository %s", argv[optind], r->name);
			goto fail;
		}
		if (pin_add(r, argv[optind], note) < 0)
			goto fail;
		printf("pinned %s\n", argv[optind]);
	} else {
		if (pin_remove(r, argv[optind]) < 0)
			goto fail;
		printf("unpinned %s\n", argv[optind]);
	}
	ret = PGK_EXIT_OK;
	goto out;
fail:
	ret = ctx_fail();
out:
	if (r)
		repo_close(r);
	config_free(&cfg);
	return ret;
}

int cmd_pin(const struct pgk_globals *g, int argc, char **argv)
{
	return pin_main(g, argc, argv, true);
}

int cmd_unpin(const struct pgk_globals *g, int argc, char **argv)
{
	return pin_main(g, argc, argv, false);
}

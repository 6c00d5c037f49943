/*
 * pgkeep pin ID [--note TEXT] / pgkeep unpin ID: keep a backup, and the WAL
 * it needs, whatever the retention policy says.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "repo/layout.h"
#include "repo/manifest.h"
#include "repo/pin.h"

struct pin_opts {
	const char *note;
};

static const struct opt_def pin_options[] = {
	OPT_STRING_DEF("note", 0, "TEXT", struct pin_opts, note, "why it is kept"),
	OPT_END,
};

static const struct opt_arg pin_args[] = {
	{ "ID", "the backup" },
	{ NULL, NULL },
};

const struct opt_spec pin_cli = {
	.command = "pin",
	.summary = "keep a backup whatever the retention policy says",
	.synopsis = "ID [OPTIONS]",
	.opts = pin_options,
	.args = pin_args,
	.min_args = 1,
	.max_args = 1,
};

const struct opt_spec unpin_cli = {
	.command = "unpin",
	.summary = "let the retention policy decide about a backup again",
	.synopsis = "ID",
	.args = pin_args,
	.min_args = 1,
	.max_args = 1,
};

static int pin_main(const struct pgk_globals *g, int argc, char **argv, bool pin)
{
	const struct opt_spec *spec = pin ? &pin_cli : &unpin_cli;
	struct pin_opts o = { "" };
	struct opt_args pos;
	struct pgk_config cfg = { 0 };
	struct repo *r = NULL;
	struct pgkeep_stat st;
	char key[128];
	const char *id;
	int ret = PGK_EXIT_ERROR;

	if (opt_parse(spec, argc, argv, &o, &pos) < 0)
		return opt_fail(spec);
	id = pos.argv[0];
	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	if (ctx_open_repo(g, &cfg, &r) < 0)
		goto fail;
	if (pin) {
		layout_manifest_key(id, key, sizeof(key));
		if (store_stat(r->store, key, &st) < 0) {
			pgk_error(PGKEEP_ENOTFOUND, "no backup %s in repository %s", id, r->name);
			goto fail;
		}
		if (pin_add(r, id, o.note) < 0)
			goto fail;
		printf("pinned %s\n", id);
	} else {
		if (pin_remove(r, id) < 0)
			goto fail;
		printf("unpinned %s\n", id);
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

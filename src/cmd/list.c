/*
 * list: the backups of a repository, oldest first, as a table for people.
 * Scripts read `pgkeep info --json` instead.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "cmd/listing.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/manifest.h"

static void print_row_in(const struct manifest *m, const char *in)
{
	char start[32], dur[32], size[32], stored[32], what[80];

	local_time_text(m->start_time, start, sizeof(start));
	human_duration(m->stop_time - m->start_time, dur, sizeof(dur));
	human_size(manifest_size(m), size, sizeof(size));
	human_size(manifest_stored(m), stored, sizeof(stored));
	if (m->type == BACKUP_BASE)
		snprintf(what, sizeof(what), "%s-%s", m->wal_start, m->wal_stop);
	else
		snprintf(what, sizeof(what), "database %s", m->dbname ? m->dbname : "(all)");
	if (in)
		printf("%-26s %-4s  %-19s  %8s  %10s  %10s  %-49s  %s\n", m->id,
		       backup_type_name(m->type), start, dur, size, stored, what, in);
	else
		printf("%-26s %-4s  %-19s  %8s  %10s  %10s  %s\n", m->id,
		       backup_type_name(m->type), start, dur, size, stored, what);
}

static void print_row(const struct manifest *m)
{
	print_row_in(m, NULL);
}

/*
 * --all-repos: the backups of every repository, once each, with the
 * repositories that hold it; a backup missing somewhere is said so.
 */
static int list_all(const struct pgk_globals *g)
{
	struct pgk_config cfg;
	struct repo_set set = { 0 };
	const struct manifest **all;
	const char **names;
	size_t n, i, j, partial = 0;
	int status = PGK_EXIT_OK;

	if (ctx_load_config(g, &cfg) < 0)
		return ctx_fail();
	repo_set_load(&set, &cfg);
	for (i = 0; i < set.n; i++)
		if (set.v[i].error) {
			pgk_log_error("%s", set.v[i].error);
			status = PGK_EXIT_ERROR;
		}
	all = repo_set_union(&set, &n);
	names = xmalloc((set.n ? set.n : 1) * sizeof(*names));
	if (n)
		printf("%-26s %-4s  %-19s  %8s  %10s  %10s  %-49s  %s\n", "ID", "TYPE", "START",
		       "DURATION", "SIZE", "STORED", "WAL RANGE / DATABASE", "IN");
	for (i = 0; i < n; i++) {
		char in[512] = "";
		size_t have = repo_set_holders(&set, all[i]->id, names);

		for (j = 0; j < have; j++)
			snprintf(in + strlen(in), sizeof(in) - strlen(in), "%s%s", j ? "," : "",
				 names[j]);
		if (have < set.n)
			partial++;
		print_row_in(all[i], in);
	}
	if (partial)
		printf("%zu of %zu backup(s) are not in every repository\n", partial, n);
	free(names);
	free(all);
	repo_set_free(&set);
	config_free(&cfg);
	return status;
}

struct list_opts {
	bool all_repos;
};

static const struct opt_def list_options[] = {
	OPT_ALL_REPOS(struct list_opts, all_repos,
		      "every repository, with the ones each backup is in"),
	OPT_END,
};

const struct opt_spec list_cli = {
	.command = "list",
	.summary = "list the backups of the repository",
	.synopsis = "[OPTIONS]",
	.opts = list_options,
};

int cmd_list(const struct pgk_globals *g, int argc, char **argv)
{
	struct list_opts o = { false };
	struct opt_args pos;
	struct listing l;
	size_t i;
	int rc, status;

	if (opt_parse(&list_cli, argc, argv, &o, &pos) < 0)
		return opt_fail(&list_cli);
	if (o.all_repos)
		return list_all(g);
	rc = listing_open(g, &l);
	if (rc == 0 && l.n > 0) {
		printf("%-26s %-4s  %-19s  %8s  %10s  %10s  %s\n", "ID", "TYPE", "START",
		       "DURATION", "SIZE", "STORED", "WAL RANGE / DATABASE");
		for (i = 0; i < l.n; i++)
			print_row(&l.list[i]);
	} else if (rc == 0) {
		pgk_log_info("repository %s has no backups", l.r->name);
	}
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	listing_close(&l);
	return status;
}

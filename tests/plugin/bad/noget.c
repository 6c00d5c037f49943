/* A plugin without the mandatory get call. */
#include "common.h"

static const struct pgkeep_storage_ops ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "noget",
	BAD_CALLS,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	return &ops;
}

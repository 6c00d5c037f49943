/* A plugin built for a storage ABI newer than this pgkeep serves. */
#include "common.h"

static const struct pgkeep_storage_ops ops = {
	.abi_version = 2,
	.struct_size = sizeof(struct pgkeep_storage_ops),
	.name = "abi2",
	BAD_CALLS,
	.get = bad_get,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	return &ops;
}

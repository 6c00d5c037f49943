/*
 * A plugin built against an older header whose table ended after remove:
 * its struct_size says so.  The slots after it hold junk here on purpose;
 * the loader must not copy them, so they come out NULL.
 */
#include <stddef.h>

#include "common.h"

static const struct pgkeep_storage_ops ops = {
	.abi_version = 1,
	.struct_size = offsetof(struct pgkeep_storage_ops, remove) + sizeof(void *),
	.name = "old",
	.features = PGKEEP_FEAT_LOCK,
	BAD_CALLS,
	.get = bad_get,
	.lock_until = bad_lock_until,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	return &ops;
}

/*
 * The local-disk plugin's table, for plugins that wrap it (plugins/fault
 * compiles local.c in with PGK_LOCAL_EMBEDDED, which drops the entry point).
 */
#ifndef PGK_PLUGIN_LOCAL_H
#define PGK_PLUGIN_LOCAL_H

#include <pgkeep/storage.h>

extern const struct pgkeep_storage_ops pgk_local_ops;

#endif

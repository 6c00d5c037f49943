/*
 * An in-memory store for unit tests: a real pgkeep_storage_ops table behind a
 * struct pgk_store, so the store_* wrappers run unchanged, plus the knobs a
 * test needs to damage objects and inject faults.  Thread-safe.
 */
#ifndef PGK_TEST_MEMSTORE_H
#define PGK_TEST_MEMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "repo/store.h"

/* A fresh, empty store.  Free it with memstore_close, not store_close. */
struct pgk_store *memstore_open(void);
void memstore_close(struct pgk_store *st);

/* Objects whose key starts with prefix, and the bytes they hold. */
size_t memstore_count(struct pgk_store *st, const char *prefix);
uint64_t memstore_bytes(struct pgk_store *st, const char *prefix);
/* Committed puts so far (successful ones only). */
uint64_t memstore_puts(struct pgk_store *st);

/* Flip one byte of an object; -1 when the key or offset does not exist. */
int memstore_corrupt(struct pgk_store *st, const char *key, size_t offset);
/* Drop an object; -1 when absent. */
int memstore_delete(struct pgk_store *st, const char *key);
/* Make an object look written at mtime; -1 when absent. */
int memstore_set_mtime(struct pgk_store *st, const char *key, int64_t mtime);

/*
 * Make the nth put_commit from now (1 = the next one) and every later one
 * fail with PGKEEP_EIO; 0 turns the fault off.
 */
void memstore_fail_put(struct pgk_store *st, unsigned nth);
/* Sleep this long in every put_commit, to act as a slow store. */
void memstore_set_put_delay(struct pgk_store *st, unsigned usec);
/* Most put contexts that were open at the same time, since the store was
 * opened or the count last reset. */
unsigned memstore_max_concurrent_puts(struct pgk_store *st);
void memstore_reset_concurrent_puts(struct pgk_store *st);

#endif

/*
 * What manifest.c and manifest_json.c share: the rules a backup id and a
 * manifest's times follow, checked when built and again when read back.
 */
#ifndef PGK_MANIFEST_INT_H
#define PGK_MANIFEST_INT_H

#include <stdbool.h>
#include <stdint.h>

/* Ids become store keys: one key segment of [A-Za-z0-9._-], not "." or "..". */
bool manifest_id_valid(const char *id);
/* Floor and ceiling of microseconds in seconds, for times before the epoch too. */
int64_t manifest_floor_sec(int64_t us);
int64_t manifest_ceil_sec(int64_t us);

#endif

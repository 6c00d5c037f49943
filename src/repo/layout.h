/*
 * The repository's layout: every key the store holds is built and parsed
 * here, and nowhere else.  Changing a key here changes the format.
 *
 *   pgkeep.json                 format, creation time, cipher (clear text, written once)
 *   keys/SLOTID.json            one key slot per passphrase
 *   meta/sysid                  the cluster's system identifier (object, written once)
 *   wal/TTTTTTTT/NAME           WAL segments, .partial, .backup (TTTTTTTT = timeline)
 *   wal/history/TTTTTTTT.history timeline history files
 *   chunks/XX/ID                deduplicated backup chunks (XX = first two hex of ID)
 *   deltas/XX/ID-BASE           chunk ID is stored as a delta of chunk BASE (no content)
 *   lists/SET/STREAM-SEQ        a backup's chunk lists, in pieces (see lists.h), written
 *                               as it runs; SET is random per backup, named by its manifest
 *   backups/ID.manifest         one per completed backup, written last
 *   pins/ID                     a pinned backup, kept whatever the retention policy
 *   locks/KIND-HOST-PID-RANDOM  lock files of running commands
 */
#ifndef PGK_LAYOUT_H
#define PGK_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAYOUT_CONFIG_KEY "pgkeep.json"
#define LAYOUT_SYSID_KEY "meta/sysid"

/* Prefixes to list one kind of object by. */
#define LAYOUT_SLOTS_PREFIX "keys/"
#define LAYOUT_WAL_PREFIX "wal/"
#define LAYOUT_CHUNKS_PREFIX "chunks/"
#define LAYOUT_DELTAS_PREFIX "deltas/"
#define LAYOUT_LISTS_PREFIX "lists/"
#define LAYOUT_BACKUPS_PREFIX "backups/"
#define LAYOUT_PINS_PREFIX "pins/"
#define LAYOUT_LOCKS_PREFIX "locks/"

/* chunks/XX/ID (XX = the id's first two hex digits). */
#define LAYOUT_CHUNK_KEY_MAX 80
void layout_chunk_key(const char *id, char *key, size_t keylen);
/* The 32-byte id of a key chunks/XX/ID; false for anything else. */
bool layout_chunk_key_id(const char *key, uint8_t id[32]);

/* deltas/XX/ID-BASE: chunk id is stored as a delta of base. */
#define LAYOUT_DELTA_KEY_MAX 144
void layout_delta_key(const char *id, const char *base, char *key, size_t keylen);
/* Both ids of a key deltas/XX/ID-BASE; false for anything else. */
bool layout_delta_key_ids(const char *key, uint8_t id[32], uint8_t base[32]);

/* One shard of chunks/ or deltas/ (top, a prefix above): TOPXX/, XX = shard. */
#define LAYOUT_SHARD_PREFIX_MAX 16
void layout_shard_prefix(const char *top, unsigned shard, char *out, size_t outlen);

/*
 * The key of an archivable WAL file name (segment, .partial, .backup:
 * wal/TTTTTTTT/NAME; history file: wal/history/NAME).  PGKEEP_EINVAL for
 * a name that is none of these, or a key longer than outlen.
 */
#define LAYOUT_WAL_KEY_MAX 64
int layout_wal_key(const char *name, char *out, size_t outlen);
/* The file name a WAL key ends in (the key itself when it has no '/'). */
const char *layout_wal_file(const char *key);

/* lists/SET/STREAM-SEQ. */
#define LAYOUT_LIST_SET_LEN 32
#define LAYOUT_LIST_KEY_MAX (sizeof(LAYOUT_LISTS_PREFIX) + LAYOUT_LIST_SET_LEN + 48)
void layout_list_key(const char *set, size_t stream, size_t seq, char *key, size_t keylen);
/* The SET a list key is under (LAYOUT_LIST_SET_LEN characters), or NULL. */
const char *layout_list_key_set(const char *key);

/* backups/ID.manifest, in a buffer or allocated (any id length). */
void layout_manifest_key(const char *id, char *key, size_t keylen);
char *layout_manifest_key_dup(const char *id);
/* The backup id of a manifest key, allocated; NULL for anything else. */
char *layout_manifest_key_id(const char *key);

/* keys/SLOTID.json, allocated; whether a key under keys/ is a slot. */
char *layout_slot_key_dup(const char *slot_id);
bool layout_is_slot_key(const char *key);

/* pins/ID; the id a pin key names. */
void layout_pin_key(const char *id, char *key, size_t keylen);
const char *layout_pin_key_id(const char *key);

/* locks/KIND-HOST-PID-RANDOM, rnd 6 random bytes that make it unique. */
void layout_lock_key(const char *kind, const char *host, long pid, const unsigned char rnd[6],
		     char *key, size_t keylen);

#endif

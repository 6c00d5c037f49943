/*
 * Building and parsing the repository's keys (the list is in layout.h).
 * The strings here are the on-store format: byte for byte what every
 * earlier pgkeep wrote.
 */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "repo/layout.h"

#define MANIFEST_SUFFIX ".manifest"
#define SLOT_SUFFIX ".json"

static bool has_prefix(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

void layout_chunk_key(const char *id, char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_CHUNKS_PREFIX "%.2s/%s", id, id);
}

bool layout_chunk_key_id(const char *key, uint8_t id[32])
{
	const char *name = strrchr(key, '/');

	return has_prefix(key, LAYOUT_CHUNKS_PREFIX) && name && strlen(name + 1) == 64 &&
	       hex_decode(name + 1, 32, id);
}

void layout_delta_key(const char *id, const char *base, char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_DELTAS_PREFIX "%.2s/%s-%s", id, id, base);
}

bool layout_delta_key_ids(const char *key, uint8_t id[32], uint8_t base[32])
{
	const char *name = strrchr(key, '/');
	char hex[65];

	if (!has_prefix(key, LAYOUT_DELTAS_PREFIX) || !name || strlen(name + 1) != 129 ||
	    name[65] != '-')
		return false;
	memcpy(hex, name + 1, 64);
	hex[64] = '\0';
	return hex_decode(hex, 32, id) && hex_decode(name + 66, 32, base);
}

void layout_shard_prefix(const char *top, unsigned shard, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%02x/", top, shard);
}

int layout_wal_key(const char *name, char *out, size_t outlen)
{
	struct wal_name wn;
	int rc, n;

	rc = walname_parse(name, &wn);
	if (rc < 0)
		return rc;
	if (wn.type == WAL_HISTORY)
		n = snprintf(out, outlen, LAYOUT_WAL_PREFIX "history/%s", name);
	else
		n = snprintf(out, outlen, LAYOUT_WAL_PREFIX "%.8s/%s", name, name);
	if (n < 0 || (size_t)n >= outlen)
		return pgk_error(PGKEEP_EINVAL, "repository key for '%s' is too long", name);
	return 0;
}

const char *layout_wal_file(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? slash + 1 : key;
}

void layout_list_key(const char *set, size_t stream, size_t seq, char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_LISTS_PREFIX "%s/%zu-%zu", set, stream, seq);
}

const char *layout_list_key_set(const char *key)
{
	const char *set = key + strlen(LAYOUT_LISTS_PREFIX), *slash;

	if (!has_prefix(key, LAYOUT_LISTS_PREFIX))
		return NULL;
	slash = strchr(set, '/');
	return slash && slash - set == LAYOUT_LIST_SET_LEN ? set : NULL;
}

void layout_manifest_key(const char *id, char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_BACKUPS_PREFIX "%s" MANIFEST_SUFFIX, id);
}

char *layout_manifest_key_dup(const char *id)
{
	return xasprintf(LAYOUT_BACKUPS_PREFIX "%s" MANIFEST_SUFFIX, id);
}

char *layout_manifest_key_id(const char *key)
{
	size_t plen = strlen(LAYOUT_BACKUPS_PREFIX), slen = strlen(MANIFEST_SUFFIX);
	size_t len = strlen(key);

	if (!has_prefix(key, LAYOUT_BACKUPS_PREFIX) || len <= plen + slen ||
	    strcmp(key + len - slen, MANIFEST_SUFFIX) != 0 || strchr(key + plen, '/'))
		return NULL;
	return xstrndup(key + plen, len - plen - slen);
}

char *layout_slot_key_dup(const char *slot_id)
{
	return xasprintf(LAYOUT_SLOTS_PREFIX "%s" SLOT_SUFFIX, slot_id);
}

bool layout_is_slot_key(const char *key)
{
	size_t len = strlen(key), slen = strlen(SLOT_SUFFIX);

	return len >= slen && strcmp(key + len - slen, SLOT_SUFFIX) == 0;
}

void layout_pin_key(const char *id, char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_PINS_PREFIX "%s", id);
}

const char *layout_pin_key_id(const char *key)
{
	return has_prefix(key, LAYOUT_PINS_PREFIX) ? key + strlen(LAYOUT_PINS_PREFIX) : key;
}

void layout_lock_key(const char *kind, const char *host, long pid, const unsigned char rnd[6],
		     char *key, size_t keylen)
{
	snprintf(key, keylen, LAYOUT_LOCKS_PREFIX "%s-%s-%ld-%02x%02x%02x%02x%02x%02x", kind, host,
		 pid, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

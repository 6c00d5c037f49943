/*
 * libFuzzer target: the manifest reader, and the reader of list objects.
 * Whatever JSON arrives, it is either refused with a message or read into a
 * manifest that keeps its own invariants, writes back out and reads again to
 * the same thing.  An input that starts as a list object's plaintext does is
 * checked and decoded as one: refused or read, never misread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "repo/lists.h"
#include "repo/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a format 2 stream promises before any list object is read. */
static void check_listed(const struct manifest_stream *s)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < s->nlists; i++) {
		if (s->lists[i].count == 0 || s->lists[i].count > LIST_CHUNKS_MAX)
			abort();
		sum += s->lists[i].count;
	}
	if (sum != s->nchunks || s->chunks || s->nchunks > s->size || s->max_chunk > s->size ||
	    (s->nchunks && (uint64_t)s->max_chunk * s->nchunks < s->size))
		abort();
}

static void list_input(const uint8_t *data, size_t size)
{
	struct manifest_stream s;
	struct manifest_list_ref ref;
	struct manifest_chunk c;
	struct pgk_buf plain = { (uint8_t *)data, size, size };
	uint8_t md[32];
	unsigned mdlen = 0;
	uint32_t n = 0, i;

	/* A list the manifest would record as it is, count from its header. */
	memset(&s, 0, sizeof(s));
	s.name = "fuzz";
	memset(s.list_set, 'a', MANIFEST_LIST_SET_LEN);
	s.max_chunk = 1u << 24;
	memset(&ref, 0, sizeof(ref));
	if (size >= LIST_HEADER_LEN)
		ref.count = (uint32_t)data[12] | (uint32_t)data[13] << 8 |
			    (uint32_t)data[14] << 16 | (uint32_t)data[15] << 24;
	EVP_Digest(data, size, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), ref.sha256);
	s.lists = &ref;
	s.nlists = 1;
	if (list_check(&s, 0, &plain, &n) != 0)
		return;
	if ((size_t)n * LIST_ENTRY_LEN + LIST_HEADER_LEN != size)
		abort();
	for (i = 0; i < n; i++)
		if (list_entry(&s, 0, &plain, i, &c) == 0 && (c.size == 0 || c.size > s.max_chunk))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m, again;
	struct pgk_buf out = PGK_BUF_INIT, out2 = PGK_BUF_INIT;
	size_t i;

	if (size >= 7 && memcmp(data, "PGKLIST", 7) == 0) {
		list_input(data, size);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	if (manifest_from_json(&m, (const char *)data, size, "fuzz") != 0)
		return 0;
	for (i = 0; i < m.nstreams; i++)
		if (m.streams[i].listed)
			check_listed(&m.streams[i]);
	if (manifest_to_json(&m, &out) != 0)
		abort();
	memset(&again, 0, sizeof(again));
	if (manifest_from_json(&again, (const char *)out.data, out.len, "fuzz-again") != 0)
		abort();
	if (manifest_to_json(&again, &out2) != 0)
		abort();
	if (out.len != out2.len || memcmp(out.data, out2.data, out.len) != 0)
		abort();
	manifest_free(&m);
	manifest_free(&again);
	buf_free(&out);
	buf_free(&out2);
	return 0;
}

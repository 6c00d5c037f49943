/*
 * libFuzzer target: the object reader.  Arbitrary bytes must be refused
 * cleanly (never crash, never return plaintext that did not verify), their
 * header either refused or given a bound within its kind's, and any input
 * sealed as plaintext must open back to itself, under its own name only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/keys.h"
#include "repo/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct repo_keys k;
	static int ready;
	struct pgk_buf plain = PGK_BUF_INIT, sealed = PGK_BUF_INIT;

	if (!ready) {
		memset(k.master, 0x42, sizeof(k.master));
		keys_derive(&k);
		ready = 1;
	}
	/* As a stored object: must fail unless it is a genuine one. */
	if (obj_open(&k, OBJ_CHUNK, "fuzz", data, size, &plain) == 0 && size < OBJ_OVERHEAD)
		abort();
	buf_free(&plain);
	if (size >= OBJ_HEADER_LEN) {
		uint64_t max;

		if (obj_check_head(OBJ_WAL, "fuzz", data, size, &max) == 0 &&
		    (max < OBJ_OVERHEAD || obj_plain_len(data, size) > OBJ_WAL_PLAIN_MAX ||
		     max > 2 * OBJ_WAL_PLAIN_MAX))
			abort();
	}

	/* As plaintext: seal, open, compare. */
	if (obj_seal(&k, OBJ_WAL, "fuzz", size & 1 ? 3 : 0, data, size, &sealed) != 0)
		abort();
	if (obj_open(&k, OBJ_WAL, "fuzz", sealed.data, sealed.len, &plain) != 0)
		abort();
	if (plain.len != size || (size && memcmp(plain.data, data, size) != 0))
		abort();
	buf_reset(&plain);
	if (obj_open(&k, OBJ_WAL, "fuzz2", sealed.data, sealed.len, &plain) == 0 || plain.len)
		abort();
	/* Any single flipped byte of the sealed object must be caught. */
	if (sealed.len) {
		struct pgk_buf again = PGK_BUF_INIT;

		sealed.data[size % sealed.len] ^= 0x80;
		if (obj_open(&k, OBJ_WAL, "fuzz", sealed.data, sealed.len, &again) == 0)
			abort();
		buf_free(&again);
	}
	buf_free(&plain);
	buf_free(&sealed);
	return 0;
}

/*
 * libFuzzer target: the manifest reader.  Whatever JSON arrives, it is
 * either refused with a message or read into a manifest that writes back out
 * and reads again to the same thing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m, again;
	struct pgk_buf out = PGK_BUF_INIT, out2 = PGK_BUF_INIT;

	memset(&m, 0, sizeof(m));
	if (manifest_from_json(&m, (const char *)data, size, "fuzz") != 0)
		return 0;
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

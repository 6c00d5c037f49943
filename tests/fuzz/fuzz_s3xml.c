/*
 * libFuzzer target: the S3 plugin's XML reader (plugins/s3/xml.c), fed the
 * way the plugin feeds it a server's reply: the ListObjectsV2 walk over
 * <Contents>, and the single fields of error, multipart and retention
 * replies.  It must never read outside the reply, and escape/decode must
 * give any text back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each field is read from an exactly sized copy, so ASan sees any overread. */
static void read_field(const char *s, size_t len, const char *name)
{
	char *v = xml_text(s, len, name);

	if (v && strlen(v) > len)
		abort();	/* decoding never grows the text */
	free(v);
}

static void walk_listing(const char *s, size_t len)
{
	static const char *const fields[] = { "Key", "Size", "LastModified", "ETag" };
	size_t pos = 0, n, last = 0, i;
	const char *inner;

	while (xml_next(s, len, "Contents", &pos, &inner, &n)) {
		/* Forward progress, and the element lies inside the reply. */
		if (pos <= last || pos > len || inner < s || inner + n > s + len)
			abort();
		last = pos;
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			read_field(inner, n, fields[i]);
	}
}

static void check_escape_round_trip(const char *s, size_t len)
{
	char *text = strndup(s, len), *esc, *back;

	if (!text)
		return;
	esc = xml_escape(text);
	if (!esc)
		goto out_text;
	back = xml_decode(esc, strlen(esc));
	if (!back || strcmp(back, text) != 0)
		abort();
	free(back);
	free(esc);
out_text:
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const single[] = {
		"Code", "Message", "UploadId", "IsTruncated", "NextContinuationToken",
		"RetainUntilDate", "Mode", "KeyCount",
	};
	char *s = malloc(size ? size : 1);
	size_t i;

	if (!s)
		return 0;
	memcpy(s, data, size);
	walk_listing(s, size);
	for (i = 0; i < sizeof(single) / sizeof(single[0]); i++)
		read_field(s, size, single[i]);
	check_escape_round_trip(s, size);
	free(s);
	return 0;
}

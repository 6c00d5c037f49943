/*
 * B2 file-name percent-encoding.  B2 decodes '+' as a space, so a literal
 * '+' must go out as %2B; everything outside the minimal safe set is encoded.
 */
#include <stdlib.h>
#include <string.h>

#include "b2name.h"

static int b2_name_safe(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("/-._~!$'()*;=:@", c) != NULL;
}

char *b2_name_encode(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *out, *o;

	out = malloc(strlen(name) * 3 + 1);
	if (!out)
		return NULL;
	o = out;
	for (p = (const unsigned char *)name; *p; p++) {
		if (b2_name_safe(*p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int b2_name_valid(const char *name)
{
	size_t len = strlen(name), seg = 0;
	const unsigned char *p;

	if (len == 0 || len > 1024)
		return 0;
	for (p = (const unsigned char *)name; *p; p++) {
		if (*p < 32 || *p == 127)
			return 0;
		seg = *p == '/' ? 0 : seg + 1;
		if (seg > 250)
			return 0;
	}
	return 1;
}

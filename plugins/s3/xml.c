/*
 * A small, careful XML element reader for S3 replies; see xml.h for what it
 * assumes.  Never reads past the given length, whatever the input.
 */
#include "xml.h"

#include <stdlib.h>
#include <string.h>

static const char *find(const char *s, size_t len, size_t from, const char *needle)
{
	size_t n = strlen(needle), i;

	if (n > len)
		return NULL;
	for (i = from; i + n <= len; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, n) == 0)
			return s + i;
	return NULL;
}

int xml_next(const char *s, size_t len, const char *name, size_t *pos,
	     const char **inner, size_t *inner_len)
{
	size_t n = strlen(name), at = *pos;
	const char *open, *gt, *close;
	char endtag[128];

	if (n + 4 > sizeof(endtag))
		return 0;
	for (;;) {
		open = find(s, len, at, "<");
		if (!open)
			return 0;
		at = (size_t)(open - s) + 1;
		if (at + n >= len || memcmp(open + 1, name, n) != 0)
			continue;
		/* "<Key>" or "<Key attr=...>", not "<KeyCount>". */
		if (open[1 + n] != '>' && open[1 + n] != ' ' && open[1 + n] != '/' &&
		    open[1 + n] != '\t' && open[1 + n] != '\n' && open[1 + n] != '\r')
			continue;
		gt = find(s, len, at, ">");
		if (!gt)
			return 0;
		if (gt[-1] == '/') { /* <Name/> */
			*inner = gt;
			*inner_len = 0;
			*pos = (size_t)(gt - s) + 1;
			return 1;
		}
		endtag[0] = '<';
		endtag[1] = '/';
		memcpy(endtag + 2, name, n);
		endtag[n + 2] = '>';
		endtag[n + 3] = '\0';
		close = find(s, len, (size_t)(gt - s) + 1, endtag);
		if (!close)
			return 0;
		*inner = gt + 1;
		*inner_len = (size_t)(close - gt - 1);
		*pos = (size_t)(close - s) + n + 3;
		return 1;
	}
}

static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

char *xml_decode(const char *s, size_t len)
{
	static const struct { const char *name; char c; } named[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	char *out = malloc(len + 1), *o = out;
	size_t i = 0, k;

	if (!out)
		return NULL;
	while (i < len) {
		if (s[i] != '&') {
			*o++ = s[i++];
			continue;
		}
		for (k = 0; k < 5; k++) {
			size_t n = strlen(named[k].name);

			if (i + 1 + n <= len && !memcmp(s + i + 1, named[k].name, n)) {
				*o++ = named[k].c;
				i += 1 + n;
				break;
			}
		}
		if (k < 5)
			continue;
		if (i + 2 < len && s[i + 1] == '#') {
			int hex = s[i + 2] == 'x' || s[i + 2] == 'X';
			size_t j = i + 2 + (size_t)hex, start = j;
			unsigned long cp = 0;

			while (j < len && j - start < 8 &&
			       ((s[j] >= '0' && s[j] <= '9') ||
				(hex && ((s[j] | 32) >= 'a' && (s[j] | 32) <= 'f')))) {
				int d = s[j] <= '9' ? s[j] - '0' : (s[j] | 32) - 'a' + 10;

				cp = cp * (hex ? 16 : 10) + (unsigned long)d;
				j++;
			}
			/* A reference never yields more bytes than its own text. */
			if (j > start && j < len && s[j] == ';' && cp > 0 && cp <= 0x10ffff &&
			    j + 1 - i >= 4) {
				o += put_utf8(o, cp);
				i = j + 1;
				continue;
			}
		}
		*o++ = s[i++];
	}
	*o = '\0';
	return out;
}

char *xml_text(const char *s, size_t len, const char *name)
{
	size_t pos = 0, n;
	const char *inner;

	if (!xml_next(s, len, name, &pos, &inner, &n))
		return NULL;
	return xml_decode(inner, n);
}

char *xml_escape(const char *s)
{
	size_t n = 0;
	const char *p;
	char *out, *o;

	for (p = s; *p; p++)
		n += (*p == '<' || *p == '>') ? 4 : *p == '&' ? 5 : (*p == '"' || *p == '\'') ? 6 : 1;
	out = o = malloc(n + 1);
	if (!out)
		return NULL;
	for (p = s; *p; p++) {
		const char *rep = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" :
				  *p == '&' ? "&amp;" : *p == '"' ? "&quot;" :
				  *p == '\'' ? "&apos;" : NULL;

		if (rep) {
			memcpy(o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/*
 * Just enough XML reading for S3's replies (ListObjectsV2, errors, multipart
 * and retention): find elements by name and decode their text.  S3's replies
 * are flat, namespace-free in practice and never nest an element in one of
 * the same name, which is all this reader relies on.
 */
#ifndef PGK_S3_XML_H
#define PGK_S3_XML_H

#include <stddef.h>

/*
 * Find the next element called name in s[*pos, len).  On success point
 * *inner at its content, set *inner_len, move *pos past its end tag and
 * return 1; return 0 when there is none.
 */
int xml_next(const char *s, size_t len, const char *name, size_t *pos,
	     const char **inner, size_t *inner_len);

/* The decoded text of the first element called name, malloc'd; NULL if absent. */
char *xml_text(const char *s, size_t len, const char *name);

/* Decode character references and the five named entities; malloc'd. */
char *xml_decode(const char *s, size_t len);

/* Escape text for an XML body; malloc'd. */
char *xml_escape(const char *s);

#endif

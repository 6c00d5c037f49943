/*
 * Percent-encoding of B2 file names for headers and download URLs, kept
 * apart from the plugin so that a unit test can check it byte by byte.
 */
#ifndef PGK_B2NAME_H
#define PGK_B2NAME_H

#include <stddef.h>

/*
 * Encode name as B2 specifies: '/' and the safe set
 * A-Z a-z 0-9 - . _ ~ ! $ ' ( ) * ; = : @ stay as they are, every other byte
 * (space, '+', '%', UTF-8 bytes >= 0x80 ...) becomes %XX in upper-case hex.
 * Returns a malloc'ed string, or NULL when out of memory.
 */
char *b2_name_encode(const char *name);

/* Whether name is a valid B2 file name (UTF-8 not checked): 1..1024 bytes,
 * no control character or DEL, no segment over 250 bytes. */
int b2_name_valid(const char *name);

#endif

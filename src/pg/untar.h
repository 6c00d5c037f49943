/*
 * Extracting a base backup's tar into a data directory without ever writing
 * outside it, whatever the tar holds: members are created relative to a
 * descriptor of the data directory, with PostgreSQL's own modes.
 */
#ifndef PGK_UNTAR_H
#define PGK_UNTAR_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/libarchive_api.h"

/* Modes of everything extracted, whatever the tar says (see untar.c). */
#define UNTAR_DIR_MODE 0700
#define UNTAR_FILE_MODE 0600

struct untar {
	int rootfd;		/* the data directory, opened without following links */
	char *root;		/* its path, for messages */
	char err[1024];		/* why untar_entry failed (it runs off the main thread) */
	uint64_t entries;
};

/* Open root (an existing directory, not a link); a pgk_error on failure. */
int untar_open(struct untar *u, const char *root);

/*
 * Create the member e, whose data is read from in, under the name `as`
 * (NULL: its own name).  Safe to call off the main thread: an error is left
 * in u->err only, and the return value is negative.
 */
int untar_entry(struct untar *u, struct archive *in, struct archive_entry *e, const char *as);

/* After the last member: the root is still a directory of ours, mode 0700. */
int untar_check_root(struct untar *u);

void untar_close(struct untar *u);

/*
 * A member's name without its leading "./" (PostgreSQL writes some names so:
 * ./pg_wal/archive_status/).
 */
const char *untar_strip(const char *name);

/*
 * After untar_strip, a relative name with no '.', '..' or empty component
 * (one trailing '/' allowed): "./" and "." are not safe.
 */
bool untar_name_safe(const char *name);

/*
 * May the member `name` be a symbolic link to `target`?  Only where
 * PostgreSQL makes links (pg_wal, pg_tblspc/OID), and only to a relative
 * target that stays inside the data directory.
 */
bool untar_link_allowed(const char *name, const char *target);

#endif

/*
 * Running as root where another user's files are written: become the owner
 * of the target first, so that nothing is created as root.
 */
#ifndef PGK_PRIVDROP_H
#define PGK_PRIVDROP_H

/*
 * When the process runs as root, switch (groups, then gid, then uid, for
 * good) to the owner of path, or of its nearest existing parent when path
 * does not exist yet; refuse when that owner is root.  Does nothing for any
 * other user.  Call it before reading or writing anything.
 */
int privdrop_to_owner(const char *path, const char *command);

/*
 * The same switch when path (or its nearest existing parent) is owned by
 * another user than root; nothing when root owns it or the process is not
 * root.  For a user's config and a user's local repository: what root does
 * there, their owner could have done, and it leaves files they can read.
 */
int privdrop_follow_owner(const char *path, const char *command);

#endif

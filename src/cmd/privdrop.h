/*
 * Running as root where PostgreSQL's files are written: become the owner of
 * the target directory first, so that nothing is created as root.
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

#endif

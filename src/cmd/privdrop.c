/*
 * Dropping root where another user's files are read or written: a data
 * directory full of root-owned files will not start, a repository with
 * root-owned files fails its owner's next command, and root has no business
 * running a user's passphrase command or plugins on that user's behalf.
 */
#include "cmd/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

/* stat of path, or of its nearest existing parent; *where names which. */
static int owner_of(const char *path, struct stat *st, char **where)
{
	char *p = xasprintf("%s", path), *parent;

	for (;;) {
		if (stat(p, st) == 0) {
			*where = p;
			return 0;
		}
		if (errno != ENOENT || strcmp(p, "/") == 0 || strcmp(p, ".") == 0) {
			int rc = pgk_error(PGKEEP_EIO, "cannot use %s: %s", p, strerror(errno));

			free(p);
			return rc;
		}
		parent = xasprintf("%s", dirname(p));
		free(p);
		p = parent;
	}
}

/* The process environment should name the user it now runs as. */
static void set_user_env(const struct passwd *pw)
{
	setenv("HOME", pw->pw_dir, 1);
	setenv("USER", pw->pw_name, 1);
	setenv("LOGNAME", pw->pw_name, 1);
}

/* For good: groups, then gid, then uid; and check that root cannot come back. */
static int become(uid_t uid, gid_t fallback_gid, const char *command, const char *where)
{
	struct passwd *pw = getpwuid(uid);
	gid_t gid = pw ? pw->pw_gid : fallback_gid;

	/* Groups first: after setuid there is no permission left to change them. */
	if ((pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) < 0 || setgid(gid) < 0 ||
	    setuid(uid) < 0)
		return pgk_error(PGKEEP_EIO, "%s as root: cannot become uid %u (owner of %s): %s",
				 command, (unsigned)uid, where, strerror(errno));
	/* A drop that could be undone is no drop. */
	if (setuid(0) == 0 || geteuid() != uid)
		return pgk_error(PGKEEP_EIO, "%s as root: could not give up root", command);
	if (pw)
		set_user_env(pw);
	pgk_log_info("%s: running as %s (uid %u), the owner of %s, instead of root", command,
		     pw ? pw->pw_name : "?", (unsigned)uid, where);
	return 0;
}

int privdrop_to_owner(const char *path, const char *command)
{
	struct stat st;
	char *where = NULL;
	int rc;

	if (geteuid() != 0)
		return 0;
	rc = owner_of(path, &st, &where);
	if (rc < 0)
		return rc;
	if (st.st_uid == 0)
		rc = pgk_error(PGKEEP_EINVAL,
			       "%s as root: %s is owned by root; run it as the PostgreSQL user "
			       "(e.g. runuser -u postgres -- pgkeep ...) or give %s to that user",
			       command, where, where);
	else
		rc = become(st.st_uid, st.st_gid, command, where);
	free(where);
	return rc;
}

int privdrop_follow_owner(const char *path, const char *command)
{
	struct stat st;
	char *where = NULL;
	int rc;

	if (geteuid() != 0)
		return 0;
	rc = owner_of(path, &st, &where);
	if (rc == 0 && st.st_uid != 0)
		rc = become(st.st_uid, st.st_gid, command, where);
	free(where);
	return rc;
}

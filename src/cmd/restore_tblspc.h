/*
 * Tablespaces on restore: where each tablespace's tar goes (its original
 * location, or where --tablespace-map OLDDIR=NEWDIR says), and the
 * pg_tblspc links that restore itself writes to match.
 */
#ifndef PGK_RESTORE_TBLSPC_H
#define PGK_RESTORE_TBLSPC_H

#include <stddef.h>

#include "pg/untar.h"
#include "repo/manifest.h"

struct tblspc_map {
	char *old_dir;
	char *new_dir;
};

struct tblspc_maps {
	struct tblspc_map *v;
	size_t n;
};

/*
 * One --tablespace-map OLDDIR=NEWDIR, spelt as pg_basebackup's -T ('\='
 * for a '=' in a path): both absolute, no '.' or '..' component, and no
 * OLDDIR or NEWDIR given twice.
 */
int tblspc_map_parse(struct tblspc_maps *maps, const char *arg);
void tblspc_maps_free(struct tblspc_maps *maps);

/*
 * OLDDIR as --tablespace-map reads it: '=' written '\='.  (A path with
 * "\=" in it cannot be spelt, as with pg_basebackup -T.)
 */
char *tblspc_map_escape(const char *dir);

struct tblspc_target {
	const struct manifest_stream *s;	/* the tablespace's tar */
	char *dir;				/* where it goes */
	struct untar u;				/* open once prepared */
};

struct tblspc_plan {
	struct tblspc_target *v;
	size_t n;
};

/*
 * Where each tablespace stream of m goes.  Refused: a map whose OLDDIR is
 * no tablespace of the backup, and a target that exists and is not empty
 * (whatever --force says: it may be the live cluster's tablespace).
 * Nothing is created yet.
 */
int tblspc_plan(const struct manifest *m, const struct tblspc_maps *maps,
		struct tblspc_plan *p);

/*
 * Create each target (mode 0700) and open it for extraction; each must be
 * a directory of its own, not the data directory nor another target.
 */
int tblspc_prepare(struct tblspc_plan *p, const struct untar *data);

/*
 * After extraction: pg_tblspc/OID in the data directory links to each
 * target's absolute path, and the tar's tablespace_map is removed, so that
 * PostgreSQL keeps these links rather than re-create the old ones.  A
 * tablespace_map naming a tablespace the backup does not hold is refused.
 */
int tblspc_link(const struct tblspc_plan *p, const struct untar *data);

/* Every target's file system synced. */
int tblspc_sync(const struct tblspc_plan *p);

/* The targets, for a message: "DIR, DIR" (the caller frees). */
char *tblspc_dirs_text(const struct tblspc_plan *p);

void tblspc_plan_free(struct tblspc_plan *p);

#endif

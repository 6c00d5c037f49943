/*
 * Backup ids: the one allocator backup and import-dump share, so that every
 * id has the same shape and two writers racing for one id never both win.
 */
#ifndef PGK_BACKUP_ID_H
#define PGK_BACKUP_ID_H

struct manifest;
struct repo;

/*
 * Set m->id to the first id from attempt on that no manifest in r has:
 * YYYYMMDDTHHMMSSZ-TYPE (m's start time and type), then -2, -3 ...
 * Returns the attempt it took, or a negative error.
 */
int backup_id_choose(struct repo *r, struct manifest *m, int attempt);

/*
 * Save m under the id chosen at attempt; another backup may have taken the
 * id meanwhile, and then m moves to the next free one.
 */
int backup_id_save_manifest(struct repo *r, struct manifest *m, int attempt);

#endif

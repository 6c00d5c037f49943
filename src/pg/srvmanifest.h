/*
 * The server's backup_manifest checked against a restored data directory,
 * as pg_verifybackup checks a backup: the manifest's own SHA-256, then every
 * file it lists present with its size and checksum, and no file it does not
 * list.
 */
#ifndef PGK_SRVMANIFEST_H
#define PGK_SRVMANIFEST_H

/*
 * Check the tree under rootfd (root names it in messages) against its
 * backup_manifest; tablespaces are reached through their pg_tblspc/OID
 * links, as the manifest names them.  control_as, when not NULL, is where
 * global/pg_control is while the restore withholds it.  Skipped as
 * pg_verifybackup skips them: backup_manifest, pg_wal, postgresql.auto.conf,
 * recovery.signal, standby.signal; and a tablespace_map that restore removed
 * because it wrote the tablespaces' links itself.  A directory without a
 * backup_manifest (a backup taken before pgkeep kept it) passes.  The error
 * names the file and backup_id.
 */
int srvmanifest_verify(int rootfd, const char *root, const char *backup_id,
		       const char *control_as);

#endif

/*
 * Putting a file into a repository: its bytes sealed as one object and
 * stored if absent; an object already there is accepted only when it holds
 * exactly these bytes, so a retried put is harmless and a different file
 * under a stored name is refused.
 */
#ifndef PGK_REPO_PUT_H
#define PGK_REPO_PUT_H

#include <stdint.h>

#include "repo/object.h"
#include "repo/repo.h"

/*
 * For a caller that bounds how much is sealed and held at once (each may be
 * NULL; payload is theirs).  worst is the most the sealed object can take.
 */
struct repo_put_hooks {
	/* Before sealing: may wait for room. */
	void (*seal_begin)(void *payload, uint64_t worst);
	/* After sealing: sealed bytes (0 on failure) are held until stored. */
	void (*seal_end)(void *payload, uint64_t worst, uint64_t sealed);
	/* After the store call: the sealed bytes are freed. */
	void (*stored)(void *payload, uint64_t sealed);
	void *payload;
};

/*
 * Seal size bytes of fd (named path in messages) as an object of kind under
 * key and store it in r if absent.  sha256, if not NULL, gets the SHA-256 of
 * the bytes sealed.  An object already stored under key is read back and
 * compared with the file: identical is success, anything else
 * PGKEEP_EEXISTS.  hooks may be NULL.
 */
int repo_put_fd(struct repo *r, enum obj_kind kind, const char *key, int fd, uint64_t size,
		const char *path, uint8_t sha256[32], const struct repo_put_hooks *hooks);

#endif

/*
 * repo_put_fd: a file through sealing into the store, with the comparison
 * that makes storing the same bytes twice a success.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/put.h"
#include "repo/store.h"

/* The object exists: the put succeeds only if it holds exactly the file's bytes. */
static int compare_stored(struct repo *r, enum obj_kind kind, const char *key, int fd,
			  const char *path)
{
	struct pgk_buf stored = PGK_BUF_INIT, data = PGK_BUF_INIT;
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		return pgk_error(PGKEEP_EIO, "cannot stat %s: %s", path, strerror(errno));
	buf_reserve(&data, (size_t)st.st_size);
	rc = pread_full(fd, data.data, (size_t)st.st_size, 0, path);
	if (rc < 0)
		goto out_free;
	data.len = (size_t)st.st_size;
	rc = repo_get(r, key, kind, &stored);
	if (rc < 0) {
		pgk_error_wrap(rc, "object %s exists but cannot be read back to compare", key);
		goto out_free;
	}
	if (stored.len != data.len || memcmp(stored.data, data.data, data.len) != 0) {
		rc = pgk_error(PGKEEP_EEXISTS, "object %s exists with different content", key);
		goto out_free;
	}
	pgk_log_info("%s already archived with identical content in repository %s", key, r->name);
out_free:
	buf_free(&stored);
	buf_free(&data);
	return rc;
}

int repo_put_fd(struct repo *r, enum obj_kind kind, const char *key, int fd, uint64_t size,
		const char *path, uint8_t sha256[32], const struct repo_put_hooks *hooks)
{
	static const struct repo_put_hooks none = { 0 };
	struct pgk_buf obj = PGK_BUF_INIT;
	uint64_t worst = size + OBJ_OVERHEAD + (size >> 7) + 65536;
	int rc;

	if (!hooks)
		hooks = &none;
	if (hooks->seal_begin)
		hooks->seal_begin(hooks->payload, worst);
	rc = obj_seal_fd(&r->keys, kind, key, r->compress_level, fd, size, path, &obj, sha256);
	if (hooks->seal_end)
		hooks->seal_end(hooks->payload, worst, obj.len);
	if (rc == 0)
		rc = store_put(r->store, key, obj.data, obj.len, PGKEEP_PUT_IF_ABSENT);
	if (hooks->stored)
		hooks->stored(hooks->payload, obj.len);
	buf_free(&obj);
	if (rc == PGKEEP_EEXISTS)
		rc = compare_stored(r, kind, key, fd, path);
	else if (rc == 0)
		pgk_log_debug("archived %s as %s in repository %s (%llu bytes)", path, key, r->name,
			      (unsigned long long)size);
	return rc;
}

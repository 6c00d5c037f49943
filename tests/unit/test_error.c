/*
 * The per-thread error message and the plugin calls around it: a store call
 * writes into its own buffer, so cleanup after an error (a successful call,
 * or a lock release whose delete fails) leaves the first error in place.
 */
#include <string.h>

#include "common/error.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "memstore.h"
#include "tap.h"

static const struct kdf_params fast = { 1024, 8, 1 };

static void noop_close(void *handle)
{
	(void)handle;
}

static int refuse_remove(void *handle, const char *key, char *err)
{
	(void)handle;
	return pgkeep_fail(err, PGKEEP_EIO, "memory: cannot delete %s", key);
}

/* A second handle on the memory store, whose calls a test may replace. */
static struct pgk_store *view(struct pgk_store *ms)
{
	struct pgk_store *st = xzalloc(sizeof(*st));

	st->ops = ms->ops;
	st->ops.close = noop_close;
	st->handle = ms->handle;
	st->path = xstrdup("memory");
	st->repo_name = xstrdup("test");
	return st;
}

static void test_save_restore(void)
{
	struct pgk_error_saved saved;

	pgk_error(PGKEEP_EIO, "first");
	pgk_error_save(&saved);
	pgk_error(PGKEEP_EIO, "second");
	pgk_error_restore(&saved);
	is_str(pgk_errmsg(), "first", "restore brings back the saved message");
	pgk_error_clear();
	pgk_error_save(&saved);
	pgk_error(PGKEEP_EIO, "third");
	pgk_error_restore(&saved);
	is_str(pgk_errmsg(), "", "and an empty one stays empty");
}

static void test_store_calls(struct pgk_store *ms)
{
	struct pgkeep_stat sb;
	int ret;

	ret = store_put(ms, "a/b", "x", 1, 0);
	is_int(ret, 0, "put into the memory store");
	pgk_error(PGKEEP_ECORRUPT, "the first error");
	ret = store_stat(ms, "a/b", &sb);
	is_int(ret, 0, "a store call that succeeds after an error");
	is_str(pgk_errmsg(), "the first error", "leaves the error as it was");
	ret = store_remove(ms, "a/b");
	is_str(pgk_errmsg(), "the first error", "and so does a successful delete");
	ret = store_stat(ms, "a/b", &sb);
	is_int(ret, PGKEEP_ENOTFOUND, "a store call that fails");
	ok(strncmp(pgk_errmsg(), "repository ", 11) == 0 && strstr(pgk_errmsg(), "stat a/b: "),
	   "sets the message, with context: %s", pgk_errmsg());
}

static void test_lock_release(struct pgk_store *ms)
{
	struct repo_lock *lock = NULL;
	struct repo *r = NULL;
	int ret;

	ret = repo_init(ms, "test", "hunter2", &fast);
	is_int(ret, 0, "init: %s", ret ? pgk_errmsg() : "ok");
	ret = repo_open(&r, view(ms), "test", "hunter2", 0, NULL);
	is_int(ret, 0, "open: %s", ret ? pgk_errmsg() : "ok");
	if (ret)
		return;
	ret = lock_acquire(&lock, r, LOCK_SHARED, "test", 0);
	is_int(ret, 0, "take a lock: %s", ret ? pgk_errmsg() : "ok");
	if (ret == 0) {
		r->store->ops.remove = refuse_remove;
		pgk_error(PGKEEP_ENOSPC, "backup 1 failed: no space left");
		lock_release(lock);
		is_str(pgk_errmsg(), "backup 1 failed: no space left",
		       "a lock release whose delete fails keeps the error being reported");
		is_int(memstore_count(ms, "locks/"), 1, "(the delete did fail: the lock is still there)");
	}
	repo_close(r);
}

int main(void)
{
	struct pgk_store *ms = memstore_open();

	test_save_restore();
	test_store_calls(ms);
	test_lock_release(ms);
	memstore_close(ms);
	return done_testing();
}

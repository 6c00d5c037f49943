/*
 * The plugin loader and the store wrappers: refusals of broken plugins (built
 * in tests/plugin/bad), the search path, message context, and who retries
 * (the plugin, never the wrappers), driven through the fault plugin with a
 * counter file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/store.h"
#include "tap.h"

static char *tmpdir;
static const char *plugin_dir;
static char *bad_dir;

static char *bad_path(const char *name)
{
	return xasprintf("%s/%s.so", bad_dir, name);
}

static void test_not_elf(void)
{
	struct pgk_store *st = NULL;
	char *path = xasprintf("%s/text.so", tmpdir);
	FILE *f = fopen(path, "w");
	int ret;

	fputs("this is not an ELF file\n", f);
	fclose(f);
	ret = store_load(&st, path);
	is_int(ret, PGKEEP_EINVAL, "a text file is refused");
	ok(strncmp(pgk_errmsg(), "cannot load storage plugin: ", 28) == 0 &&
		   strstr(pgk_errmsg(), path),
	   "with dlopen's reason naming the file: %s", pgk_errmsg());
	ok(st == NULL, "and no store comes back");
	free(path);
}

/* want: the message expected after the file's path */
static void test_refused(const char *name, const char *before, const char *after)
{
	struct pgk_store *st = NULL;
	char *path = bad_path(name), *want;
	int ret;

	want = xasprintf("%s%s%s", before, path, after);
	ret = store_load(&st, path);
	is_int(ret, PGKEEP_EINVAL, "plugin %s is refused", name);
	is_str(pgk_errmsg(), want, "plugin %s: the message says why", name);
	if (ret == 0)
		store_close(st);
	free(want);
	free(path);
}

static void test_old_plugin(void)
{
	struct pgk_store *st = NULL;
	char *path = bad_path("old");
	struct pgkeep_stat sb;
	int ret;

	ret = store_load(&st, path);
	is_int(ret, 0, "a plugin with a smaller struct_size loads");
	if (ret) {
		diag("%s", pgk_errmsg());
		free(path);
		return;
	}
	ok(st->ops.get && st->ops.remove, "its calls up to struct_size are there");
	ok(st->ops.lock_until == NULL, "the slot past its struct_size comes out NULL");
	ok(st->ops.locked_until == NULL, "and so does the one after it");
	store_close(st);

	ret = store_open(&st, "old", path, NULL, NULL, 0);
	is_int(ret, 0, "a plugin given by path (with '/') is opened without search");
	if (ret == 0) {
		ret = store_lock_until(st, "k", 1);
		is_int(ret, PGKEEP_EUNSUPPORTED, "lock_until on it is EUNSUPPORTED");
		is_str(pgk_errmsg(), "repository old: lock k: plugin old cannot lock objects",
		       "and says so");
		ret = store_stat(st, "some/key", &sb);
		is_int(ret, PGKEEP_ENOTFOUND, "a plugin's code passes through the wrapper");
		is_str(pgk_errmsg(),
		       "repository old: stat some/key: plugin old failed (not found) without a message",
		       "a failure without a message still gets one, with context");
		ret = store_put(st, "a/b", "x", 1, 0);
		is_str(pgk_errmsg(), "repository old: put a/b: bad plugin cannot store a/b",
		       "the plugin's message is prefixed with repository, call and key");
		store_close(st);
	}
	free(path);
}

/* ------------------------------------------------------------ the root */

static int count_key(void *payload, const char *key, const struct pgkeep_stat *sb);

/*
 * Only init makes a repository's directory: a missing one (unmounted,
 * vanished) fails every other open and every call that finds it gone, and
 * never reads as "not found".
 */
static void test_local_root(void)
{
	struct pgkeep_option opts[2] = { { "path", NULL }, { "create", "yes" } };
	struct pgk_buf b = PGK_BUF_INIT;
	struct pgk_store *st = NULL;
	char *repo = xasprintf("%s/repo", tmpdir), *want;
	struct stat sb;
	int ret, n = 0;

	opts[0].value = repo;
	ret = store_open(&st, "r", "local", plugin_dir, opts, 1);
	is_int(ret, PGKEEP_EIO, "local refuses a repository directory that does not exist");
	want = xasprintf("repository r: open: local: repository directory %s does not exist", repo);
	is_str(pgk_errmsg(), want, "naming it");
	free(want);
	ok(stat(repo, &sb) < 0, "and does not create it");
	ret = store_open(&st, "r", "local", plugin_dir, opts, 2);
	is_int(ret, PGKEEP_EINVAL, "a config cannot ask for create");
	ok(stat(repo, &sb) < 0, "  nothing created");

	ret = store_open_flags(&st, "r", "local", plugin_dir, opts, 1, STORE_OPEN_CREATE);
	is_int(ret, 0, "init's open creates it");
	ok(stat(repo, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700,
	   "  a directory, mode 0700");
	if (ret)
		goto out;
	ok(store_has_feature(st, PGKEEP_FEAT_CREATE_ROOT), "local says it can create its root");
	ok(rmdir(repo) == 0, "the directory goes away under an open store");
	ret = store_get(st, "wal/00000001/000000010000000000000001", &b);
	is_int(ret, PGKEEP_EIO, "get: an error, not ENOTFOUND");
	ret = store_stat(st, "pgkeep.json", &(struct pgkeep_stat){ 0 });
	is_int(ret, PGKEEP_EIO, "stat: an error, not ENOTFOUND");
	ret = store_list(st, "keys/", count_key, &n);
	is_int(ret, PGKEEP_EIO, "list: an error, not an empty listing");
	ret = store_put(st, "wal/00000001/x", "x", 1, 0);
	ok(ret < 0 && stat(repo, &sb) < 0, "put fails and does not re-create it: %s", pgk_errmsg());
	store_close(st);
	ok(mkdir(repo, 0700) == 0, "the directory is back");
out:
	buf_free(&b);
	free(repo);
}

/* ------------------------------------------------------------ search path */

static void test_search(void)
{
	struct pgkeep_option opt = { "path", NULL };
	struct pgk_store *st = NULL;
	char *repo = xasprintf("%s/repo", tmpdir), *want;
	int ret;

	opt.value = repo;
	ret = store_open(&st, "r", "Bad-Name", plugin_dir, &opt, 1);
	is_int(ret, PGKEEP_EINVAL, "a plugin name outside [a-z0-9_] is refused");
	is_str(pgk_errmsg(), "repository r: invalid storage plugin name 'Bad-Name' (expected [a-z0-9_]+)",
	       "naming it");

	unsetenv("PGKEEP_PLUGIN_DIR");
	ret = store_open(&st, "r", "nosuch", tmpdir, &opt, 1);
	is_int(ret, PGKEEP_EINVAL, "a plugin found nowhere is refused");
	want = xasprintf("repository r: storage plugin 'nosuch' not found (looked for nosuch.so in %s, %s)",
			 tmpdir, PGKEEP_PKGLIBDIR);
	is_str(pgk_errmsg(), want, "naming every directory searched");
	free(want);

	ret = store_open(&st, "r", "local", plugin_dir, &opt, 1);
	is_int(ret, 0, "local is found in the given plugin_dir");
	if (ret == 0) {
		is_str(st->ops.name, "local", "and it is the local plugin");
		ok(store_has_feature(st, PGKEEP_FEAT_RANGE_GET | PGKEEP_FEAT_IF_ABSENT_ATOMIC),
		   "with ranged get and atomic if-absent");
		ok(!store_has_feature(st, PGKEEP_FEAT_LOCK), "and without locks");
		store_close(st);
	}

	setenv("PGKEEP_PLUGIN_DIR", plugin_dir, 1);
	ret = store_open(&st, "r", "local", tmpdir, &opt, 1);
	if (geteuid() == 0) {
		/* Root loads code only from its config's plugin_dir and the built-in one. */
		is_int(ret, PGKEEP_EINVAL, "as root, $PGKEEP_PLUGIN_DIR is ignored");
		want = xasprintf("repository r: storage plugin 'local' not found (looked for local.so in %s, %s)",
				 tmpdir, PGKEEP_PKGLIBDIR);
		is_str(pgk_errmsg(), want, "it is not even searched");
		free(want);
		if (ret == 0)
			store_close(st);
	} else {
		is_int(ret, 0, "a plugin_dir without it falls through to $PGKEEP_PLUGIN_DIR");
		if (ret == 0) {
			want = xasprintf("%s/local.so", plugin_dir);
			is_str(st->path, want, "which supplied the file");
			free(want);
			store_close(st);
		}
		ret = store_open(&st, "r", "local", NULL, &opt, 1);
		is_int(ret, 0, "no plugin_dir at all uses $PGKEEP_PLUGIN_DIR");
		if (ret == 0)
			store_close(st);
	}
	unsetenv("PGKEEP_PLUGIN_DIR");

	/* A bad plugin found by name is refused by name of its file. */
	ret = store_open(&st, "r", "abi2", bad_dir, &opt, 1);
	want = xasprintf("repository r: plugin %s/abi2.so was built for storage ABI 2, this pgkeep serves up to 1",
			 bad_dir);
	is_str(pgk_errmsg(), want, "a refused plugin found by search says which repository");
	free(want);
	free(repo);
}

static void test_local_messages(void)
{
	struct pgkeep_option opts[2] = { { "path", NULL }, { "bogus", "1" } };
	struct pgk_buf b = PGK_BUF_INIT;
	struct pgk_store *st = NULL;
	char *repo = xasprintf("%s/repo", tmpdir), *want;
	int ret;

	opts[0].value = repo;
	ret = store_open(&st, "r", "local", plugin_dir, opts, 2);
	is_int(ret, PGKEEP_EINVAL, "local refuses an unknown option");
	is_str(pgk_errmsg(), "repository r: open: local: unknown option 'bogus'", "naming it");
	ret = store_open(&st, "r", "local", plugin_dir, opts + 1, 0);
	is_str(pgk_errmsg(), "repository r: open: local: option 'path' is required",
	       "local needs a path");

	ret = store_open(&st, "r", "local", plugin_dir, opts, 1);
	is_int(ret, 0, "local opens");
	if (ret)
		goto out;
	ret = store_get(st, "wal/nope", &b);
	is_int(ret, PGKEEP_ENOTFOUND, "get of a missing key is ENOTFOUND");
	want = xasprintf("repository r: get wal/nope: %s/wal/nope does not exist", repo);
	is_str(pgk_errmsg(), want, "message: repository, call, key, then the plugin's words");
	free(want);
	ret = store_put(st, "../escape", "x", 1, 0);
	is_int(ret, PGKEEP_EINVAL, "a key with '..' is refused");
	ret = store_put(st, "/abs", "x", 1, 0);
	is_int(ret, PGKEEP_EINVAL, "an absolute key is refused");
	store_close(st);
out:
	buf_free(&b);
	free(repo);
}

/* ------------------------------------------------------------ retries */

static long state_count(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/*
 * Open the fault plugin over tmpdir/frepo with the given failure settings;
 * retries is the plugin's own count of further attempts (NULL: its default).
 */
static struct pgk_store *fault_open_r(const char *ops, const char *code, const char *at,
				      const char *every, const char *retries, char **state)
{
	struct pgkeep_option o[7];
	struct pgk_store *st = NULL;
	char *repo;
	size_t n = 0;

	repo = xasprintf("%s/frepo", tmpdir);
	mkdir(repo, 0700);
	free(*state);
	*state = xasprintf("%s/state.%s.%s", tmpdir, ops, code);
	unlink(*state);
	o[n++] = (struct pgkeep_option){ "path", repo };
	o[n++] = (struct pgkeep_option){ "fail_ops", ops };
	o[n++] = (struct pgkeep_option){ "fail_code", code };
	o[n++] = (struct pgkeep_option){ "fail_state", *state };
	if (at)
		o[n++] = (struct pgkeep_option){ "fail_at", at };
	if (every)
		o[n++] = (struct pgkeep_option){ "fail_every", every };
	if (retries)
		o[n++] = (struct pgkeep_option){ "retries", retries };
	if (store_open(&st, "f", "fault", plugin_dir, o, n) < 0) {
		diag("%s", pgk_errmsg());
		st = NULL;
	}
	free(repo);
	return st;
}

static struct pgk_store *fault_open(const char *ops, const char *code, const char *at,
				    const char *every, char **state)
{
	return fault_open_r(ops, code, at, every, NULL, state);
}

static int count_key(void *payload, const char *key, const struct pgkeep_stat *sb)
{
	(*(int *)payload)++;
	return 0;
}

static void test_retries(void)
{
	struct pgk_buf b = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	struct pgk_store *st;
	char *state = NULL;
	double t0, ms;
	int ret, keys = 0;

	/* One transient failure of a commit: the plugin sends it again. */
	st = fault_open("put_commit", "retry", "1", NULL, &state);
	if (!ok(st != NULL, "fault plugin opens")) {
		free(state);
		return;
	}
	ret = store_put(st, "dir/obj", "hello", 5, 0);
	is_int(ret, 0, "a put whose commit fails once with ERETRY succeeds on retry");
	is_int(state_count(state), 2, "after exactly two commits");
	store_close(st);

	/* A plugin that has given up: the wrappers add no attempt of their own. */
	st = fault_open_r("put_commit", "retry", NULL, "1", "0", &state);
	ret = store_put(st, "dir/obj2", "hello", 5, 0);
	is_int(ret, PGKEEP_ERETRY, "a put the plugin gives up on fails with ERETRY");
	is_int(state_count(state), 1, "after the plugin's one attempt: the wrapper does not retry");
	store_close(st);
	st = fault_open_r("get", "retry", NULL, "1", "0", &state);
	ret = store_get(st, "dir/obj", &b);
	is_int(ret, PGKEEP_ERETRY, "so does a get");
	is_int(state_count(state), 1, "... after one attempt");
	store_close(st);
	st = fault_open_r("list", "retry", NULL, "1", "0", &state);
	ret = store_list(st, "dir/", count_key, &keys);
	is_int(ret, PGKEEP_ERETRY, "and a list");
	is_int(state_count(state), 1, "... after one attempt");
	store_close(st);
	st = fault_open_r("stat", "retry", NULL, "1", "0", &state);
	ret = store_stat(st, "dir/obj", &sb);
	is_int(state_count(state), 1, "and a stat, after one attempt");
	store_close(st);
	st = fault_open_r("remove", "retry", NULL, "1", "0", &state);
	ret = store_remove(st, "dir/obj2");
	is_int(state_count(state), 1, "and a delete, after one attempt");
	store_close(st);
	keys = 0;

	st = fault_open("get", "retry", "1", NULL, &state);
	buf_append(&b, "stale", 5);
	ret = store_get(st, "dir/obj", &b);
	ok(ret == 0 && b.len == 5 && memcmp(b.data, "hello", 5) == 0,
	   "a get that fails once is retried, and the result holds the object once");
	store_close(st);

	st = fault_open("list", "retry", "1", NULL, &state);
	ret = store_list(st, "dir/", count_key, &keys);
	ok(ret == 0 && keys == 1, "a list that fails before delivering anything is retried");
	store_close(st);

	st = fault_open("stat", "retry", NULL, "1", &state);
	t0 = now_ms();
	ret = store_stat(st, "dir/obj", &sb);
	ms = now_ms() - t0;
	is_int(ret, PGKEEP_ERETRY, "a stat that keeps failing with ERETRY gives up with ERETRY");
	is_int(state_count(state), PGKEEP_RETRY_ATTEMPTS,
	       "after the plugin's %d attempts, and no more", PGKEEP_RETRY_ATTEMPTS);
	ok(ms >= 700 && ms < 3500, "backing off exponentially from about 100 ms (%.0f ms)", ms);
	ok(strncmp(pgk_errmsg(), "repository f: stat dir/obj: fault: injected failure", 51) == 0,
	   "the last failure is reported with context: %s", pgk_errmsg());
	store_close(st);

	st = fault_open("remove", "retry", "1", NULL, &state);
	ret = store_remove(st, "dir/obj");
	is_int(ret, 0, "a delete that fails once is retried");
	store_close(st);

	st = fault_open("stat", "auth", NULL, "1", &state);
	ret = store_stat(st, "dir/obj", &sb);
	is_int(ret, PGKEEP_EAUTH, "EAUTH comes back as it is");
	is_int(state_count(state), 1, "without a retry");
	store_close(st);

	st = fault_open("put", "io", NULL, "1", &state);
	ret = store_put(st, "dir/obj", "x", 1, 0);
	is_int(ret, PGKEEP_EIO, "EIO comes back as it is");
	is_int(state_count(state), 1, "without a retry");
	store_close(st);

	st = fault_open("stat", "nospc", NULL, "1", &state);
	ret = store_stat(st, "dir/obj", &sb);
	is_int(ret, PGKEEP_ENOSPC, "ENOSPC comes back as it is");
	is_int(state_count(state), 1, "without a retry");
	store_close(st);

	buf_free(&b);
	free(state);
}

int main(void)
{
	const char *top = getenv("top_builddir");
	char *cmd;

	plugin_dir = getenv("PGKEEP_TEST_PLUGIN_DIR");
	if (!top || !plugin_dir) {
		printf("Bail out! run through make check (top_builddir, PGKEEP_TEST_PLUGIN_DIR)\n");
		return 1;
	}
	tmpdir = xasprintf("%s/pgkeep-test-store.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	bad_dir = xasprintf("%s/tests/plugin/bad/.libs", top);

	test_not_elf();
	test_refused("nosym", "",
		     " is not a pgkeep storage plugin: no symbol pgkeep_storage_plugin_init");
	test_refused("abi2", "plugin ", " was built for storage ABI 2, this pgkeep serves up to 1");
	test_refused("noget", "plugin ", " lacks the mandatory call 'get'");
	test_old_plugin();
	test_local_root();
	test_search();
	test_local_messages();
	test_retries();

	cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("could not remove %s", tmpdir);
	free(cmd);
	free(tmpdir);
	free(bad_dir);
	return done_testing();
}

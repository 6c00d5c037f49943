/*
 * The repository on an in-memory store: init, open, sealed put/get, the
 * cluster's system identifier, and the ways opening one goes wrong.
 */
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "repo/repo.h"
#include "memstore.h"
#include "tap.h"

static const struct kdf_params fast = { 1024, 8, 1 };

static void noop_close(void *handle)
{
	(void)handle;
}

/*
 * Another handle on the same memory store, as a second process would open
 * the same bucket: repo_open takes ownership of its store and closes it,
 * and the objects must outlive that.
 */
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

static bool has_text(struct pgk_store *ms, const char *key, const char *text)
{
	struct pgk_buf raw = PGK_BUF_INIT;
	bool found = false;
	size_t n = strlen(text), i;

	if (store_get(ms, key, &raw) == 0)
		for (i = 0; i + n <= raw.len && !found; i++)
			found = memcmp(raw.data + i, text, n) == 0;
	buf_free(&raw);
	return found;
}

static void init_and_open(struct pgk_store *ms)
{
	struct pgk_buf plain = PGK_BUF_INIT, json = PGK_BUF_INIT;
	struct repo *r = NULL;
	int ret;

	ret = repo_init(ms, "test", "hunter2", &fast);
	is_int(ret, 0, "init: %s", ret ? pgk_errmsg() : "ok");
	is_int(memstore_count(ms, "keys/"), 1, "one key slot");
	is_int(memstore_count(ms, "pgkeep.json"), 1, "pgkeep.json written");
	ok(store_get(ms, "pgkeep.json", &json) == 0 && strstr((char *)json.data, "\"format\":1"),
	   "pgkeep.json says format 1");
	ok(!has_text(ms, "pgkeep.json", "hunter2"), "passphrase not in pgkeep.json");
	buf_free(&json);

	ret = repo_init(ms, "test", "hunter2", &fast);
	is_int(ret, PGKEEP_EEXISTS, "init twice is refused");
	is_str(pgk_errmsg(), "repository test already initialised", "  message");
	is_int(memstore_count(ms, "keys/"), 1, "  and writes no second slot");

	ret = repo_open(&r, view(ms), "test", "hunter2", 3, NULL);
	is_int(ret, 0, "open: %s", ret ? pgk_errmsg() : "ok");
	if (ret)
		return;
	is_int(repo_put(r, "meta/note", OBJ_META, "a secret note", 13, 0), 0, "put");
	ok(!has_text(ms, "meta/note", "secret note") && has_text(ms, "meta/note", "PGKEEP"),
	   "stored as a sealed object, not in clear");
	is_int(repo_get(r, "meta/note", OBJ_META, &plain), 0, "get");
	ok(plain.len == 13 && memcmp(plain.data, "a secret note", 13) == 0, "same bytes back");
	buf_reset(&plain);
	is_int(repo_put(r, "meta/note", OBJ_META, "other", 5, PGKEEP_PUT_IF_ABSENT), PGKEEP_EEXISTS,
	       "put if-absent over an existing key: EEXISTS");
	is_int(repo_get(r, "meta/missing", OBJ_META, &plain), PGKEEP_ENOTFOUND, "get of a missing key: ENOTFOUND");
	is_int(repo_get(r, "meta/note", OBJ_CHUNK, &plain), PGKEEP_ECORRUPT, "get as the wrong kind: ECORRUPT");
	memstore_corrupt(ms, "meta/note", 45);
	ret = repo_get(r, "meta/note", OBJ_META, &plain);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "meta/note"), "damaged object: %s", pgk_errmsg());
	is_int(plain.len, 0, "nothing returned from a damaged object");
	repo_close(r);
	buf_free(&plain);

	/* An object written under this key, read back by a second open. */
	r = NULL;
	ret = repo_open(&r, view(ms), "test", "hunter2", 0, NULL);
	if (ret == 0) {
		repo_put(r, "meta/again", OBJ_META, "persist", 7, 0);
		repo_close(r);
	}
	ret = repo_open(&r, view(ms), "test", "hunter2", 0, NULL);
	ok(ret == 0 && repo_get(r, "meta/again", OBJ_META, &plain) == 0 && plain.len == 7,
	   "a later open reads what an earlier one wrote");
	if (ret == 0)
		repo_close(r);
	buf_free(&plain);
}

static void wrong_open(struct pgk_store *ms)
{
	struct pgk_store *empty = memstore_open();
	struct repo *r = NULL;
	int ret;

	ret = repo_open(&r, view(ms), "test", "hunter3", 3, NULL);
	is_int(ret, PGKEEP_EAUTH, "wrong passphrase: EAUTH");
	is_str(pgk_errmsg(), "wrong passphrase for repository test", "  message");
	ok(r == NULL, "  no repository returned");

	/* A store with no repository in it is not an object's absence: wal-fetch
	 * would end recovery on it. */
	ret = repo_open(&r, view(empty), "blank", "hunter2", 3, NULL);
	is_int(ret, PGKEEP_EINVAL, "empty store: EINVAL, never ENOTFOUND");
	is_str(pgk_errmsg(), "repository blank has no pgkeep.json: not a pgkeep repository "
	       "(not initialised, or not mounted?)", "  message");

	/* pgkeep.json without its key slots (a half-copied repository). */
	{
		struct pgk_buf json = PGK_BUF_INIT;

		store_get(ms, "pgkeep.json", &json);
		store_put(empty, "pgkeep.json", json.data, json.len, 0);
		buf_free(&json);
	}
	ret = repo_open(&r, view(empty), "slotless", "hunter2", 3, NULL);
	ok(ret < 0 && ret != PGKEEP_ENOTFOUND, "no key slot: an error, never ENOTFOUND (%d)", ret);
	is_str(pgk_errmsg(), "repository slotless has no key slot", "  message");

	store_put(empty, "pgkeep.json", "{\"format\":2}", 12, 0);
	ret = repo_open(&r, view(empty), "future", "hunter2", 3, NULL);
	ok(ret == PGKEEP_EUNSUPPORTED && strstr(pgk_errmsg(), "format 2"),
	   "newer format refused: %s", pgk_errmsg());
	store_put(empty, "pgkeep.json", "not json", 8, 0);
	ret = repo_open(&r, view(empty), "junk", "hunter2", 3, NULL);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "pgkeep.json is damaged"),
	   "damaged pgkeep.json: %s", pgk_errmsg());
	memstore_close(empty);
}

static void sysid(struct pgk_store *ms)
{
	struct pgk_buf raw = PGK_BUF_INIT;
	struct repo *r = NULL, *r2 = NULL;
	int ret;

	if (repo_open(&r, view(ms), "test", "hunter2", 3, NULL) || repo_open(&r2, view(ms), "test", "hunter2", 3, NULL)) {
		ok(0, "open for the sysid tests: %s", pgk_errmsg());
		return;
	}
	is_int(memstore_count(ms, "meta/sysid"), 0, "no system identifier before first use");
	ret = repo_check_sysid(r, 7000000000000000001ULL);
	is_int(ret, 0, "first use records the cluster: %s", ret ? pgk_errmsg() : "ok");
	ok(store_get(ms, "meta/sysid", &raw) == 0 && raw.len > OBJ_OVERHEAD &&
	   memcmp(raw.data, "PGKEEP", 6) == 0 && raw.data[8] == OBJ_META, "meta/sysid is a sealed metadata object");
	is_int(repo_check_sysid(r, 7000000000000000001ULL), 0, "same cluster again: fine");
	/* r2 was opened before the record existed and has not seen it. */
	ret = repo_check_sysid(r2, 7000000000000000002ULL);
	ok(ret < 0 && strcmp(pgk_errmsg(),
			     "repository test belongs to cluster 7000000000000000001, not 7000000000000000002") == 0,
	   "another cluster is refused: %s", pgk_errmsg());
	is_int(repo_check_sysid(r2, 7000000000000000001ULL), 0, "the recorded cluster is accepted");
	repo_close(r);
	repo_close(r2);
	buf_free(&raw);
}

static int first_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	*(char **)payload = xstrdup(key);
	return 1;
}

/* An init that died between its key slot and pgkeep.json is simply run again. */
static void interrupted_init(void)
{
	struct pgk_store *ms = memstore_open();
	struct pgk_buf json = PGK_BUF_INIT, slot = PGK_BUF_INIT;
	struct json_object *obj = NULL, *v;
	struct repo *r = NULL;
	char want[2 * PGK_KEY_ID_LEN + 1], *stale = NULL;
	int ret, i;

	memstore_fail_put(ms, 2);
	ret = repo_init(ms, "test", "hunter2", &fast);
	ok(ret < 0, "init fails when pgkeep.json cannot be written");
	ok(memstore_count(ms, "keys/") == 1 && memstore_count(ms, "pgkeep.json") == 0,
	   "  leaving a key slot and no repository");
	ret = repo_open(&r, view(ms), "test", "hunter2", 3, NULL);
	is_int(ret, PGKEEP_EINVAL, "  which does not open");
	memstore_fail_put(ms, 0);
	/* Rename the stale slot so that open meets it first. */
	store_list(ms, "keys/", first_key, &stale);
	store_get(ms, stale, &slot);
	memstore_delete(ms, stale);
	store_put(ms, "keys/0.json", slot.data, slot.len, 0);
	ret = repo_init(ms, "test", "hunter2", &fast);
	is_int(ret, 0, "init again succeeds: %s", ret ? pgk_errmsg() : "ok");
	is_int(memstore_count(ms, "keys/"), 2, "  beside the stale slot");
	ret = repo_open(&r, view(ms), "test", "hunter2", 3, NULL);
	is_int(ret, 0, "the repository opens: %s", ret ? pgk_errmsg() : "ok");
	if (ret == 0) {
		/* The stale slot opens with the passphrase too, but holds another key. */
		for (i = 0; i < PGK_KEY_ID_LEN; i++)
			sprintf(want + 2 * i, "%02x", r->keys.key_id[i]);
		store_get(ms, "pgkeep.json", &json);
		buf_append(&json, "", 1);
		obj = json_tokener_parse((char *)json.data);
		ok(json_object_object_get_ex(obj, "key_id", &v) &&
		   strcmp(json_object_get_string(v), want) == 0,
		   "open uses the key pgkeep.json records, not the stale slot's");
		repo_close(r);
	}
	json_object_put(obj);
	buf_free(&json);
	buf_free(&slot);
	free(stale);
	memstore_close(ms);
}

int main(void)
{
	struct pgk_store *ms = memstore_open();

	init_and_open(ms);
	wrong_open(ms);
	sysid(ms);
	interrupted_init();
	memstore_close(ms);
	return done_testing();
}

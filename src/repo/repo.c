/*
 * A repository on a store: creating one (key slot first, pgkeep.json last, so
 * an interrupted init leaves no repository and can simply be run again),
 * unlocking it with a passphrase, the cluster it belongs to, and sealed
 * object I/O.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "common/log.h"
#include "local/keycache.h"
#include "repo/layout.h"
#include "repo/repo.h"

#define REPO_FORMAT 1
/* pgkeep.json is a few lines; a store that serves more is refused unread. */
#define REPO_JSON_MAX_LEN 65536

/* ---- init ---- */

static void repo_json(const struct repo_keys *k, struct pgk_buf *out)
{
	char key_id[2 * PGK_KEY_ID_LEN + 1];
	struct json_object *obj = json_object_new_object();

	hex_encode(k->key_id, PGK_KEY_ID_LEN, key_id);
	json_object_object_add(obj, "format", json_object_new_int(REPO_FORMAT));
	json_object_object_add(obj, "created", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(obj, "cipher", json_object_new_string("aes-256-gcm"));
	json_object_object_add(obj, "compression", json_object_new_string("zstd"));
	/* Public: every object header carries it.  It lets open skip slots
	 * left by an init that did not finish. */
	json_object_object_add(obj, "key_id", json_object_new_string(key_id));
	buf_printf(out, "%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

static int write_slot(struct pgk_store *store, const struct repo_keys *k, const char *pass,
		      const struct kdf_params *kp, char **slot_key)
{
	struct pgk_buf slot = PGK_BUF_INIT;
	uint8_t id[8];
	char idhex[17];
	int ret;

	if (RAND_bytes(id, sizeof(id)) != 1)
		return pgk_error(PGKEEP_EIO, "cannot get random bytes for a key slot id");
	hex_encode(id, sizeof(id), idhex);
	ret = keyslot_wrap(k, pass, kp, &slot);
	if (ret < 0)
		return ret;
	*slot_key = layout_slot_key_dup(idhex);
	ret = store_put(store, *slot_key, slot.data, slot.len, PGKEEP_PUT_IF_ABSENT);
	buf_free(&slot);
	if (ret < 0) {
		free(*slot_key);
		*slot_key = NULL;
	}
	return ret;
}

int repo_init(struct pgk_store *store, const char *name, const char *pass,
	      const struct kdf_params *kp)
{
	struct pgk_buf json = PGK_BUF_INIT;
	struct pgkeep_stat sb;
	struct repo_keys k;
	char *slot_key = NULL;
	int ret;

	ret = store_stat(store, LAYOUT_CONFIG_KEY, &sb);
	if (ret == 0)
		return pgk_error(PGKEEP_EEXISTS, "repository %s already initialised", name);
	if (ret != PGKEEP_ENOTFOUND)
		return ret;

	ret = keys_generate(&k);
	if (ret < 0)
		goto out_wipe;
	ret = write_slot(store, &k, pass, kp, &slot_key);
	if (ret < 0)
		goto out_wipe;
	repo_json(&k, &json);
	ret = store_put(store, LAYOUT_CONFIG_KEY, json.data, json.len, PGKEEP_PUT_IF_ABSENT);
	if (ret == PGKEEP_EEXISTS) {
		/* Someone else's init won the race; our slot would only confuse. */
		store_remove(store, slot_key);
		ret = pgk_error(PGKEEP_EEXISTS, "repository %s already initialised", name);
	}
	buf_free(&json);
	free(slot_key);
out_wipe:
	keys_wipe(&k);
	return ret;
}

/* ---- open ---- */

static int read_repo_json(struct pgk_store *store, const char *name,
			  uint8_t key_id[PGK_KEY_ID_LEN])
{
	struct pgk_buf buf = PGK_BUF_INIT;
	struct json_object *obj = NULL, *v;
	const char *s;
	int ret, i;

	ret = store_get_capped(store, LAYOUT_CONFIG_KEY, &(struct store_cap){ .max = REPO_JSON_MAX_LEN },
			       &buf);
	/* Not a missing object but a missing repository (unmounted, moved,
	 * never initialised): callers must not take it for "no such object". */
	if (ret == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_EINVAL,
				 "repository %s has no %s: not a pgkeep repository (not initialised, or not mounted?)",
				 name, LAYOUT_CONFIG_KEY);
	if (ret < 0)
		return ret;
	buf_append(&buf, "", 1);
	obj = json_tokener_parse((const char *)buf.data);
	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "format", &v) || !json_object_is_type(v, json_type_int)) {
		ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s is damaged", name, LAYOUT_CONFIG_KEY);
		goto out_free;
	}
	if (json_object_get_int64(v) != REPO_FORMAT) {
		ret = pgk_error(PGKEEP_EUNSUPPORTED,
				"repository %s has format %" PRId64 "; this pgkeep reads format %d",
				name, json_object_get_int64(v), REPO_FORMAT);
		goto out_free;
	}
	if (!json_object_object_get_ex(obj, "key_id", &v) ||
	    !(s = json_object_get_string(v)) || strlen(s) != 2 * PGK_KEY_ID_LEN) {
		ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s has no valid key_id", name,
				LAYOUT_CONFIG_KEY);
		goto out_free;
	}
	for (i = 0; i < PGK_KEY_ID_LEN; i++) {
		unsigned int byte;

		if (sscanf(s + 2 * i, "%2x", &byte) != 1) {
			ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s has no valid key_id",
					name, LAYOUT_CONFIG_KEY);
			goto out_free;
		}
		key_id[i] = (uint8_t)byte;
	}
out_free:
	json_object_put(obj);
	buf_free(&buf);
	return ret;
}

struct slot_list {
	char **keys;
	int64_t *mtime;	/* when each was stored, 0 when the store cannot tell */
	size_t n;
	struct pgk_buf *body;	/* fetched once, on first need */
	int *err;		/* 0 until fetched; the fetch's result after */
	char **msg;		/* ... and its message when it failed */
};

/* Slot i's bytes, fetched from the store the first time they are needed. */
static int slot_body(struct pgk_store *store, struct slot_list *l, size_t i)
{
	if (!l->body) {
		l->body = xzalloc(l->n * sizeof(*l->body));
		l->err = xzalloc(l->n * sizeof(*l->err));
		l->msg = xzalloc(l->n * sizeof(*l->msg));
	}
	if (l->err[i] == 0 && !l->body[i].data) {
		l->err[i] = store_get_capped(store, l->keys[i],
					     &(struct store_cap){ .max = PGK_KEYSLOT_MAX_LEN },
					     &l->body[i]);
		if (l->err[i] < 0)
			l->msg[i] = xstrdup(pgk_errmsg());
		else
			l->err[i] = 1;
	}
	if (l->err[i] < 0)
		return pgk_error(l->err[i], "%s", l->msg[i]);
	return 0;
}

static int collect_slot(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct slot_list *l = payload;

	if (!layout_is_slot_key(key))
		return 0;
	l->keys = xrealloc(l->keys, (l->n + 1) * sizeof(*l->keys));
	l->mtime = xrealloc(l->mtime, (l->n + 1) * sizeof(*l->mtime));
	l->mtime[l->n] = st ? st->mtime : 0;
	l->keys[l->n++] = xstrdup(key);
	return 0;
}

/*
 * Oldest first, then by name: a repository's slot was written by its init,
 * before anything planted in the store later (which cannot backdate an
 * S3 or B2 object), so the slot limit costs a real slot nothing.
 */
struct slot_ref {
	char *key;
	int64_t mtime;
};

static int cmp_slot(const void *a, const void *b)
{
	const struct slot_ref *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void sort_slots(struct slot_list *l)
{
	struct slot_ref *refs = xmalloc((l->n ? l->n : 1) * sizeof(*refs));
	size_t i;

	for (i = 0; i < l->n; i++)
		refs[i] = (struct slot_ref){ l->keys[i], l->mtime[i] };
	qsort(refs, l->n, sizeof(*refs), cmp_slot);
	for (i = 0; i < l->n; i++) {
		l->keys[i] = refs[i].key;
		l->mtime[i] = refs[i].mtime;
	}
	free(refs);
}

/* Try one slot; 0 and k filled when it opens this repository's key, which
 * then goes to the key cache. */
static int try_slot(const char *key, const struct pgk_buf *slot, const char *pass,
		    const uint8_t key_id[PGK_KEY_ID_LEN], struct repo_keys *k,
		    struct keycache *kc)
{
	int ret;

	ret = keyslot_unwrap(k, pass, slot->data, slot->len);
	if (ret < 0 && ret != PGKEEP_EAUTH)
		pgk_error_wrap(ret, "key slot %s", key);
	if (ret == 0 && memcmp(k->key_id, key_id, PGK_KEY_ID_LEN) != 0) {
		keys_wipe(k);
		pgk_log_debug("key slot %s belongs to an unfinished init; ignored", key);
		ret = pgk_error(PGKEEP_EAUTH, "key slot %s holds another repository's key", key);
	}
	if (ret == 0) {
		pgk_log_debug("key slot %s: key unwrapped with scrypt", key);
		keycache_store(kc, pass, slot->data, slot->len, k->master);
	}
	return ret;
}

/*
 * Ask the key cache about one slot: 0 when its answer is this repository's
 * key.  A wrong answer is only a miss (PGKEEP_ENOTFOUND); any other code
 * means the cache cannot help this time.
 */
static int try_cached_slot(const char *key, const struct pgk_buf *slot, const char *pass,
			   const uint8_t key_id[PGK_KEY_ID_LEN], struct repo_keys *k,
			   struct keycache *kc)
{
	int ret;

	ret = keycache_lookup(kc, pass, slot->data, slot->len, k->master);
	if (ret < 0)
		return ret;
	if (keys_derive(k) == 0 && memcmp(k->key_id, key_id, PGK_KEY_ID_LEN) == 0) {
		pgk_log_debug("key slot %s: key from the cache", key);
		return 0;
	}
	keys_wipe(k);
	pgk_log_debug("key slot %s: the key cache's answer does not fit; ignored", key);
	return PGKEEP_ENOTFOUND;
}

static int unlock(struct pgk_store *store, const char *name, const char *pass,
		  const uint8_t key_id[PGK_KEY_ID_LEN], const struct repo_key_agent *agent,
		  struct repo_keys *k)
{
	struct slot_list l = { NULL, NULL, 0, NULL, NULL, NULL };
	char bad_msg[PGKEEP_ERRLEN] = "";
	struct keycache kc;
	int ret, bad = 0;
	bool wrong_pass = false;
	size_t i, ntry;

	keycache_init(&kc, agent ? agent->spool_dir : NULL, agent ? agent->ttl : 0);
	ret = store_list(store, LAYOUT_SLOTS_PREFIX, collect_slot, &l);
	if (ret < 0)
		goto out_free;
	sort_slots(&l);
	ntry = l.n;
	if (ntry > PGK_KEYSLOT_TRY_MAX) {
		pgk_log_warning("repository %s has %zu key slots; only the %d oldest are tried", name,
				l.n, PGK_KEYSLOT_TRY_MAX);
		ntry = PGK_KEYSLOT_TRY_MAX;
	}
	/* The cache first, for every slot: scrypt on one slot that is not
	 * ours would cost what the cache saves. */
	for (i = 0; i < ntry && keycache_enabled(&kc); i++) {
		ret = slot_body(store, &l, i);
		if (ret == 0)
			ret = try_cached_slot(l.keys[i], &l.body[i], pass, key_id, k, &kc);
		if (ret == 0)
			goto out_free;
		if (ret != PGKEEP_ENOTFOUND)
			break;
	}
	ret = PGKEEP_ENOTFOUND;
	for (i = 0; i < ntry && ret != 0; i++) {
		ret = slot_body(store, &l, i);
		if (ret == 0)
			ret = try_slot(l.keys[i], &l.body[i], pass, key_id, k, &kc);
		if (ret == PGKEEP_EAUTH) {
			wrong_pass = true;
		} else if (ret < 0 && (!bad || bad == PGKEEP_ECORRUPT)) {
			/* Keep the first store failure over any damaged slot. */
			bad = ret;
			snprintf(bad_msg, sizeof(bad_msg), "%s", pgk_errmsg());
		}
	}
	if (ret == 0)
		goto out_free;
	/* A slot the store would not give us may have been the right one. */
	if (bad && bad != PGKEEP_ECORRUPT && bad != PGKEEP_EUNSUPPORTED)
		ret = pgk_error(bad, "repository %s: %s", name, bad_msg);
	else if (wrong_pass && ntry < l.n)
		ret = pgk_error(PGKEEP_EAUTH,
				"wrong passphrase for repository %s (for the %zu oldest of its %zu key slots)",
				name, ntry, l.n);
	else if (wrong_pass)
		ret = pgk_error(PGKEEP_EAUTH, "wrong passphrase for repository %s", name);
	else if (bad)
		ret = pgk_error(bad, "repository %s: no usable key slot: %s", name, bad_msg);
	else
		ret = pgk_error(PGKEEP_ECORRUPT, "repository %s has no key slot", name);
out_free:
	keycache_close(&kc);
	for (i = 0; i < l.n; i++) {
		free(l.keys[i]);
		if (l.body) {
			buf_free(&l.body[i]);
			free(l.msg[i]);
		}
	}
	free(l.keys);
	free(l.mtime);
	free(l.body);
	free(l.err);
	free(l.msg);
	return ret;
}

int repo_open(struct repo **out, struct pgk_store *store, const char *name, const char *pass,
	      int compress_level, const struct repo_key_agent *agent)
{
	uint8_t key_id[PGK_KEY_ID_LEN];
	struct repo *r;
	int ret;

	*out = NULL;
	ret = read_repo_json(store, name, key_id);
	if (ret < 0)
		goto out_close;
	r = xzalloc(sizeof(*r));
	ret = unlock(store, name, pass, key_id, agent, &r->keys);
	if (ret < 0) {
		secure_free(r, sizeof(*r));
		goto out_close;
	}
	r->store = store;
	r->name = xstrdup(name);
	r->compress_level = compress_level;
	*out = r;
	return 0;
out_close:
	store_close(store);
	/* Whatever vanished while opening (a key slot listed, then gone), the
	 * repository did not open: that is never an object's "not found". */
	if (ret == PGKEEP_ENOTFOUND)
		ret = pgk_error_wrap(PGKEEP_EIO, "repository %s cannot be opened", name);
	return ret;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	store_close(r->store);
	free(r->name);
	keys_wipe(&r->keys);
	free(r);
}

/* ---- sealed objects ---- */

int repo_put(struct repo *r, const char *key, enum obj_kind kind, const void *data, size_t len,
	     unsigned flags)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	int ret;

	ret = obj_seal(&r->keys, kind, key, r->compress_level, data, len, &obj);
	if (ret == 0)
		ret = store_put(r->store, key, obj.data, obj.len, flags);
	buf_free(&obj);
	return ret;
}

int repo_get(struct repo *r, const char *key, enum obj_kind kind, struct pgk_buf *plain)
{
	struct pgk_buf obj = PGK_BUF_INIT;
	int ret;

	ret = obj_fetch(r->store, key, kind, &obj);
	if (ret == 0)
		ret = obj_open(&r->keys, kind, key, obj.data, obj.len, plain);
	buf_free(&obj);
	return ret;
}

/* ---- the cluster ---- */

static int read_sysid(struct repo *r, uint64_t *sysid)
{
	struct pgk_buf text = PGK_BUF_INIT;
	char *end;
	int ret;

	ret = repo_get(r, LAYOUT_SYSID_KEY, OBJ_META, &text);
	if (ret < 0)
		goto out_free;
	buf_append(&text, "", 1);
	*sysid = strtoull((const char *)text.data, &end, 10);
	if (end == (const char *)text.data || (*end != '\0' && *end != '\n'))
		ret = pgk_error(PGKEEP_ECORRUPT, "repository %s: %s does not hold a system identifier",
				r->name, LAYOUT_SYSID_KEY);
out_free:
	buf_free(&text);
	return ret;
}

int repo_check_sysid(struct repo *r, uint64_t sysid)
{
	uint64_t stored;
	char text[32];
	int ret;

	if (r->sysid && r->sysid == sysid)
		return 0;
	/* Read first: the common case is an existing record, and a read is cheap. */
	ret = read_sysid(r, &stored);
	if (ret == PGKEEP_ENOTFOUND) {
		snprintf(text, sizeof(text), "%" PRIu64 "\n", sysid);
		ret = repo_put(r, LAYOUT_SYSID_KEY, OBJ_META, text, strlen(text), PGKEEP_PUT_IF_ABSENT);
		if (ret == 0) {
			pgk_log_info("repository %s now belongs to cluster %" PRIu64, r->name, sysid);
			r->sysid = sysid;
			return 0;
		}
		/* Another first user got there first: compare with theirs. */
		if (ret == PGKEEP_EEXISTS)
			ret = read_sysid(r, &stored);
	}
	if (ret < 0)
		return ret;
	if (stored != sysid)
		return pgk_error(PGKEEP_EINVAL, "repository %s belongs to cluster %" PRIu64 ", not %" PRIu64,
				 r->name, stored, sysid);
	r->sysid = sysid;
	return 0;
}

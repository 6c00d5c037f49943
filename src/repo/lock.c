/*
 * Locks stored in the repository (see lock.h for the protocol).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/layout.h"
#include "repo/lock.h"

struct repo_lock {
	struct repo *repo;
	char key[256];
	enum lock_kind kind;
	char *command;
	int64_t started;
	pthread_t refresher;
	bool refreshing;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

struct lock_info {
	enum lock_kind kind;
	char host[128];
	long pid;
	char command[64];
	int64_t started;
	int64_t refreshed;
};

static const char *kind_name(enum lock_kind k)
{
	return k == LOCK_EXCLUSIVE ? "exclusive" : "shared";
}

static void host_name(char *out, size_t len)
{
	size_t i;

	if (gethostname(out, len) != 0)
		snprintf(out, len, "unknown");
	out[len - 1] = '\0';
	/* Keys allow [A-Za-z0-9._-] only. */
	for (i = 0; out[i]; i++)
		if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') ||
		      (out[i] >= '0' && out[i] <= '9') || out[i] == '.' || out[i] == '-'))
			out[i] = '_';
}

static int lock_write(struct repo_lock *l)
{
	struct json_object *o = json_object_new_object();
	char host[128];
	const char *text;
	int rc;

	host_name(host, sizeof(host));
	json_object_object_add(o, "kind", json_object_new_string(kind_name(l->kind)));
	json_object_object_add(o, "host", json_object_new_string(host));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "command", json_object_new_string(l->command));
	json_object_object_add(o, "started", json_object_new_int64(l->started));
	json_object_object_add(o, "refreshed", json_object_new_int64(time(NULL)));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	rc = repo_put(l->repo, l->key, OBJ_META, text, strlen(text), 0);
	json_object_put(o);
	return rc;
}

static int lock_read(struct repo *r, const char *key, struct lock_info *li)
{
	struct pgk_buf b = PGK_BUF_INIT;
	struct json_object *o = NULL, *v;
	int rc;

	rc = repo_get(r, key, OBJ_META, &b);
	if (rc < 0)
		goto out;
	buf_append(&b, "", 1);
	o = json_tokener_parse((const char *)b.data);
	if (!o || !json_object_is_type(o, json_type_object)) {
		rc = pgk_error(PGKEEP_ECORRUPT, "lock %s is not valid JSON", key);
		goto out;
	}
	memset(li, 0, sizeof(*li));
	li->kind = json_object_object_get_ex(o, "kind", &v) &&
			   strcmp(json_object_get_string(v), "exclusive") == 0
		   ? LOCK_EXCLUSIVE
		   : LOCK_SHARED;
	if (json_object_object_get_ex(o, "host", &v))
		snprintf(li->host, sizeof(li->host), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "pid", &v))
		li->pid = (long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "command", &v))
		snprintf(li->command, sizeof(li->command), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "started", &v))
		li->started = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "refreshed", &v))
		li->refreshed = json_object_get_int64(v);
out:
	json_object_put(o);
	buf_free(&b);
	return rc;
}

static bool lock_is_stale(const struct lock_info *li)
{
	char host[128];

	if (time(NULL) - li->refreshed > PGK_LOCK_STALE)
		return true;
	host_name(host, sizeof(host));
	if (strcmp(host, li->host) == 0 && li->pid > 0 && kill((pid_t)li->pid, 0) != 0 &&
	    errno == ESRCH)
		return true;
	return false;
}

struct scan {
	struct repo *repo;
	const char *own;
	enum lock_kind kind;
	bool clean;
	int conflicts;
	int removed;
	struct lock_info holder;
	char **keys;
	size_t nkeys;
};

static int collect(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct scan *s = payload;

	(void)st;
	s->keys = xrealloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = xstrdup(key);
	return 0;
}

/* Look at every lock but our own; count the live ones that conflict. */
static int scan_locks(struct scan *s)
{
	size_t i;
	int rc;

	rc = store_list(s->repo->store, LAYOUT_LOCKS_PREFIX, collect, s);
	for (i = 0; rc == 0 && i < s->nkeys; i++) {
		struct lock_info li;
		int grc;

		if (s->own && strcmp(s->keys[i], s->own) == 0)
			continue;
		grc = lock_read(s->repo, s->keys[i], &li);
		if (grc == PGKEEP_ENOTFOUND)
			continue; /* released while we looked */
		if (grc < 0) {
			/* An unreadable lock might be anyone's: treat it as live. */
			pgk_log_warning("%s", pgk_errmsg());
			s->conflicts++;
			continue;
		}
		if (lock_is_stale(&li)) {
			if (s->clean && store_remove(s->repo->store, s->keys[i]) == 0) {
				pgk_log_info("removed stale %s lock of %s (host %s, pid %ld)",
					     kind_name(li.kind), li.command, li.host, li.pid);
				s->removed++;
			}
			continue;
		}
		if (s->kind == LOCK_EXCLUSIVE || li.kind == LOCK_EXCLUSIVE) {
			s->conflicts++;
			s->holder = li;
		}
	}
	for (i = 0; i < s->nkeys; i++)
		free(s->keys[i]);
	free(s->keys);
	s->keys = NULL;
	s->nkeys = 0;
	return rc;
}

/*
 * Remove our lock object once the outcome is decided: its failure is worth
 * a warning at most, and the caller may be returning an error that must
 * stay the one reported.
 */
static void remove_quietly(struct repo *r, const char *key, bool warn)
{
	struct pgk_error_saved saved;

	pgk_error_save(&saved);
	if (store_remove(r->store, key) < 0 && warn)
		pgk_log_warning("cannot remove lock %s: %s", key, pgk_errmsg());
	pgk_error_restore(&saved);
}

static void *refresh_main(void *arg)
{
	struct repo_lock *l = arg;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PGK_LOCK_REFRESH;
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT && !l->stop) {
			pthread_mutex_unlock(&l->mu);
			if (lock_write(l) < 0)
				pgk_log_warning("cannot refresh lock %s: %s", l->key, pgk_errmsg());
			pthread_mutex_lock(&l->mu);
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int lock_acquire(struct repo_lock **out, struct repo *r, enum lock_kind kind,
		 const char *command, int wait_seconds)
{
	struct repo_lock *l = xzalloc(sizeof(*l));
	time_t deadline = time(NULL) + wait_seconds;
	unsigned char rnd[6];
	char host[128];
	int rc;

	host_name(host, sizeof(host));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	layout_lock_key(kind_name(kind), host, (long)getpid(), rnd, l->key, sizeof(l->key));
	l->repo = r;
	l->kind = kind;
	l->command = xstrdup(command);
	l->started = time(NULL);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);

	for (;;) {
		struct scan s = { .repo = r, .own = l->key, .kind = kind, .clean = true };

		rc = lock_write(l);
		if (rc < 0)
			goto fail;
		rc = scan_locks(&s);
		if (rc < 0)
			goto fail_remove;
		if (s.conflicts == 0)
			break;
		store_remove(r->store, l->key);
		if (time(NULL) >= deadline) {
			if (s.holder.pid)
				rc = pgk_error(PGKEEP_ERETRY,
					       "repository %s is locked by %s (host %s, pid %ld, for %lld s)",
					       r->name, s.holder.command, s.holder.host, s.holder.pid,
					       (long long)(time(NULL) - s.holder.started));
			else
				rc = pgk_error(PGKEEP_ERETRY, "repository %s is locked by another command",
					       r->name);
			goto fail;
		}
		sleep(1);
	}

	if (pthread_create(&l->refresher, NULL, refresh_main, l) == 0)
		l->refreshing = true;
	*out = l;
	return 0;

fail_remove:
	remove_quietly(r, l->key, false);
fail:
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l->command);
	free(l);
	return rc;
}

void lock_release(struct repo_lock *l)
{
	if (!l)
		return;
	if (l->refreshing) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->refresher, NULL);
	}
	remove_quietly(l->repo, l->key, true);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l->command);
	free(l);
}

int lock_clean_stale(struct repo *r)
{
	struct scan s = { .repo = r, .own = NULL, .kind = LOCK_SHARED, .clean = true };
	int rc = scan_locks(&s);

	return rc < 0 ? rc : s.removed;
}

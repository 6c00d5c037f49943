/*
 * list for the sftp plugin: a walk of the remote directories below the
 * prefix, hiding (and sweeping, when stale) the temporary files of puts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sftp.h"

#define TEMP_MAX_AGE 3600			/* seconds before a temp is litter */

/* ---- list ------------------------------------------------------------------ */

struct dir_entry {
	char *name;
	bool dir;
	bool reg;
	struct pgkeep_stat st;
};

struct dir_list {
	struct dir_entry *e;
	size_t n, cap;
};

static void dir_list_clear(struct dir_list *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	memset(d, 0, sizeof(*d));
}

static int dir_list_add(struct dir_list *d, const char *name, const LIBSSH2_SFTP_ATTRIBUTES *a)
{
	struct dir_entry *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		e = realloc(d->e, cap * sizeof(*e));
		if (!e)
			return -1;
		d->e = e;
		d->cap = cap;
	}
	e = &d->e[d->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -1;
	if (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		e->dir = LIBSSH2_SFTP_S_ISDIR(a->permissions);
		e->reg = LIBSSH2_SFTP_S_ISREG(a->permissions);
	}
	e->st.size = (a->flags & LIBSSH2_SFTP_ATTR_SIZE) ? a->filesize : 0;
	e->st.mtime = (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a->mtime : 0;
	d->n++;
	return 0;
}

/* Read one whole directory, so that a retry never repeats a callback. */
static int read_dir(struct sftp_store *st, struct sftp_conn *c, const char *path,
		    struct dir_list *d, char *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *dh;
	char name[1024];
	int rc = PGKEEP_OK;

	dir_list_clear(d);
	dh = libssh2_sftp_open_ex(c->sftp, path, (unsigned)strlen(path), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!dh) {
		rc = sftp_fail(st, c, err, "opendir", path);
		/* a prefix nobody has written under yet */
		return rc == PGKEEP_ENOTFOUND ? PGKEEP_OK : rc;
	}
	for (;;) {
		int n = libssh2_sftp_readdir_ex(dh, name, sizeof(name), NULL, 0, &a);

		if (n == 0)
			break;
		if (n < 0) {
			rc = sftp_fail(st, c, err, "readdir", path);
			break;
		}
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (dir_list_add(d, name, &a)) {
			rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
			break;
		}
	}
	if (!c->broken)
		libssh2_sftp_close_handle(dh);
	return rc;
}

struct str_stack {
	char **s;
	size_t n, cap;
};

static int stack_push(struct str_stack *k, const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *s;

	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		char **ns = realloc(k->s, cap * sizeof(*ns));

		if (!ns)
			return -1;
		k->s = ns;
		k->cap = cap;
	}
	s = malloc(len);
	if (!s)
		return -1;
	snprintf(s, len, "%s%s%s", a, b, *b ? "/" : "");
	k->s[k->n++] = s;
	return 0;
}

static void stack_free(struct str_stack *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->s[i]);
	free(k->s);
}

/* Crash leftovers: temp files older than an hour go away during list. */
static void sweep_temps(struct sftp_store *st, const char *rel, struct dir_list *d, time_t now)
{
	struct sftp_conn *c = NULL;
	char err[PGKEEP_ERRLEN];

	for (size_t i = 0; i < d->n; i++) {
		struct dir_entry *e = &d->e[i];
		char *rk, *path;

		if (!e->reg || !sftp_is_temp_name(e->name) || !e->st.mtime ||
		    e->st.mtime > (int64_t)now - TEMP_MAX_AGE)
			continue;
		if (!c && sftp_conn_acquire(st, &c, err))
			return;
		if (asprintf(&rk, "%s%s", rel, e->name) < 0)
			break;
		path = sftp_remote_join(st, rk);
		free(rk);
		if (!path)
			break;
		if (libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path)))
			sftp_log(PGKEEP_LOG_DEBUG, "sftp: cannot remove stale temp %s:%s", st->where, path);
		else
			sftp_log(PGKEEP_LOG_INFO, "sftp: removed stale temp %s:%s", st->where, path);
		free(path);
		if (c->broken)
			break;
	}
	sftp_conn_release(st, c);
}

/* Emit the objects of one directory and queue its subdirectories. */
static int list_emit(const char *rel, const char *prefix, struct dir_list *d,
		     struct str_stack *todo, pgkeep_list_fn cb, void *payload, char *err)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < d->n; i++) {
		struct dir_entry *e = &d->e[i];
		char *key;
		size_t klen;
		int rc;

		if (asprintf(&key, "%s%s%s", rel, e->name, e->dir ? "/" : "") < 0)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
		klen = strlen(key);
		/* a directory is worth entering if it and the prefix agree so far */
		if (e->dir && !strncmp(key, prefix, klen < plen ? klen : plen)) {
			rc = stack_push(todo, rel, e->name) ? PGKEEP_ENOMEM : 0;
		} else if (e->reg && !sftp_is_temp_name(e->name) && !strncmp(key, prefix, plen)) {
			rc = cb(payload, key, &e->st);
		} else {
			rc = 0;
		}
		free(key);
		if (rc == PGKEEP_ENOMEM)
			return pgkeep_fail(err, rc, "sftp: out of memory");
		if (rc)
			return rc;
	}
	return PGKEEP_OK;
}

int sftp_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload,
	      char *err)
{
	struct sftp_store *st = handle;
	struct str_stack todo = { 0 };
	struct dir_list d = { 0 };
	struct sftp_conn *c;
	const char *slash;
	time_t now = time(NULL);
	int rc;

	rc = sftp_key_check(prefix, true, err);
	if (rc)
		return rc;
	/* start in the deepest directory the prefix names */
	slash = strrchr(prefix, '/');
	if (stack_push(&todo, slash ? strndupa(prefix, (size_t)(slash - prefix + 1)) : "", ""))
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	while (todo.n) {
		char *rel = todo.s[--todo.n], *path = NULL;

		/* rel is "" or "a/b/"; the remote directory drops the slash */
		path = sftp_remote_join(st, rel);
		if (!path) {
			free(rel);
			rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
			break;
		}
		WITH_RETRY(st, c, err, rc, read_dir(st, c, path, &d, err));
		free(path);
		if (!rc)
			rc = list_emit(rel, prefix, &d, &todo, cb, payload, err);
		if (!rc)
			sweep_temps(st, rel, &d, now);
		free(rel);
		if (rc)
			break;
	}
	dir_list_clear(&d);
	stack_free(&todo);
	return rc;
}

/*
 * Pins, stored as small metadata objects pins/ID holding a JSON note.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/layout.h"
#include "repo/pin.h"


int pin_add(struct repo *r, const char *id, const char *note)
{
	struct json_object *o = json_object_new_object();
	char key[128];
	const char *text;
	int rc;

	layout_pin_key(id, key, sizeof(key));
	json_object_object_add(o, "note", json_object_new_string(note ? note : ""));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	rc = repo_put(r, key, OBJ_META, text, strlen(text), 0);
	json_object_put(o);
	return rc;
}

int pin_remove(struct repo *r, const char *id)
{
	struct pgkeep_stat st;
	char key[128];
	int rc;

	layout_pin_key(id, key, sizeof(key));
	rc = store_stat(r->store, key, &st);
	if (rc == PGKEEP_ENOTFOUND)
		return pgk_error(PGKEEP_ENOTFOUND, "backup %s is not pinned", id);
	if (rc < 0)
		return rc;
	return store_remove(r->store, key);
}

struct collect {
	char **keys;
	size_t n;
};

static int collect_key(void *payload, const char *key, const struct pgkeep_stat *st)
{
	struct collect *c = payload;

	(void)st;
	c->keys = xrealloc(c->keys, (c->n + 1) * sizeof(*c->keys));
	c->keys[c->n++] = xstrdup(key);
	return 0;
}

int pin_list(struct repo *r, struct pin **out, size_t *n)
{
	struct collect c = { NULL, 0 };
	struct pin *pins;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	rc = store_list(r->store, LAYOUT_PINS_PREFIX, collect_key, &c);
	pins = xzalloc((c.n ? c.n : 1) * sizeof(*pins));
	for (i = 0; rc == 0 && i < c.n; i++) {
		struct pgk_buf b = PGK_BUF_INIT;
		struct json_object *o, *v;

		rc = repo_get(r, c.keys[i], OBJ_META, &b);
		if (rc == PGKEEP_ENOTFOUND) { /* unpinned meanwhile */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		buf_append(&b, "", 1);
		o = json_tokener_parse((const char *)b.data);
		pins[*n].id = xstrdup(layout_pin_key_id(c.keys[i]));
		pins[*n].note = xstrdup(o && json_object_object_get_ex(o, "note", &v)
						? json_object_get_string(v) : "");
		pins[*n].created = o && json_object_object_get_ex(o, "created", &v)
					   ? (long long)json_object_get_int64(v) : 0;
		(*n)++;
		json_object_put(o);
		buf_free(&b);
	}
	for (i = 0; i < c.n; i++)
		free(c.keys[i]);
	free(c.keys);
	if (rc < 0) {
		pin_list_free(pins, *n);
		*n = 0;
		return rc;
	}
	*out = pins;
	return 0;
}

void pin_list_free(struct pin *p, size_t n)
{
	size_t i;

	for (i = 0; p && i < n; i++) {
		free(p[i].id);
		free(p[i].note);
	}
	free(p);
}

bool pin_find(const struct pin *p, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(p[i].id, id) == 0)
			return true;
	return false;
}

/*
 * A backup manifest's JSON form (json-c, every 64-bit value exact), both
 * ways.  A manifest read back is checked field by field, so restore never
 * acts on a half-valid one.
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/mem.h"
#include "repo/lists.h"
#include "repo/manifest.h"
#include "repo/manifest_int.h"

/*
 * The JSON layout's own version, refused when newer than this code.  1:
 * chunk lists inline; 2: chunk lists in list objects (repo/lists.h).  Either
 * may carry start_time_us and stop_time_us, optional members that readers
 * from before them ignore: the seconds beside them never overstate.  3: as
 * 2, with streams that carry tablespace_oid and tablespace_location (a
 * tablespace's tar), both or neither.  A backup with tablespaces is written
 * as 3, so that a pgkeep from before them refuses it rather than restore
 * its data directory alone; one without is still written as 2, and a 2
 * that names a tablespace is refused.  (Inline lists, which pgkeep no
 * longer writes, stay 1 either way.)
 */
#define MANIFEST_VERSION 3
#define MANIFEST_VERSION_LISTS 2
#define MANIFEST_VERSION_INLINE 1

/* ---- to JSON ---- */

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void add_i64(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

/*
 * Chunks as [id, size, stored, anchor], or [id, size, stored] when the
 * anchor is not known: arrays, because a base backup can have a million.
 */
static struct json_object *stream_to_json(const struct manifest_stream *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *chunks, *c;
	size_t i;

	add_str(o, "name", s->name);
	add_u64(o, "size", s->size);
	add_u64(o, "stored", s->stored);
	add_str(o, stream_sum_name(s->sum_alg), s->sum);
	if (s->tblspc_oid) {
		add_u64(o, "tablespace_oid", s->tblspc_oid);
		add_str(o, "tablespace_location", s->tblspc_location);
	}
	if (s->listed) {
		/* Format 2: what the list objects must be, not what they hold. */
		add_u64(o, "nchunks", s->nchunks);
		add_u64(o, "max_chunk", s->max_chunk);
		chunks = json_object_new_array_ext((int)s->nlists);
		for (i = 0; i < s->nlists; i++) {
			c = json_object_new_array_ext(2);
			json_object_array_add(c, json_object_new_uint64(s->lists[i].count));
			json_object_array_add(c, json_object_new_string(s->lists[i].sha256));
			json_object_array_add(chunks, c);
		}
		json_object_object_add(o, "lists", chunks);
		return o;
	}
	chunks = json_object_new_array_ext((int)s->nchunks);
	for (i = 0; i < s->nchunks; i++) {
		const struct manifest_chunk *mc = &s->chunks[i];
		char anchor[17];

		c = json_object_new_array_ext(mc->known ? 4 : 3);
		json_object_array_add(c, json_object_new_string(mc->id));
		json_object_array_add(c, json_object_new_uint64(mc->size));
		json_object_array_add(c, json_object_new_uint64(mc->stored));
		if (mc->known) {
			snprintf(anchor, sizeof(anchor), "%016llx", (unsigned long long)mc->anchor);
			json_object_array_add(c, json_object_new_string(anchor));
		}
		json_object_array_add(chunks, c);
	}
	json_object_object_add(o, "chunks", chunks);
	return o;
}

int manifest_to_json(const struct manifest *m, struct pgk_buf *out)
{
	struct json_object *o = json_object_new_object();
	struct json_object *streams = json_object_new_array();
	const char *text;
	size_t i, len, listed = 0, tablespaces = 0;

	for (i = 0; i < m->nstreams; i++) {
		listed += m->streams[i].listed;
		tablespaces += m->streams[i].tblspc_oid != 0;
	}
	if (listed && listed != m->nstreams) {
		json_object_put(o);
		json_object_put(streams);
		return pgk_error(PGKEEP_EINVAL, "manifest %s: some streams listed, some not", m->id);
	}
	add_i64(o, "manifest", !listed ? MANIFEST_VERSION_INLINE :
			       tablespaces ? MANIFEST_VERSION : MANIFEST_VERSION_LISTS);
	add_str(o, "id", m->id);
	add_str(o, "type", backup_type_name(m->type));
	add_u64(o, "sysid", m->sysid);
	add_i64(o, "pg_version", m->pg_version);
	add_u64(o, "timeline", m->timeline);
	add_u64(o, "start_lsn", m->start_lsn);
	add_u64(o, "stop_lsn", m->stop_lsn);
	add_str(o, "wal_start", m->wal_start);
	add_str(o, "wal_stop", m->wal_stop);
	add_i64(o, "start_time", m->start_time);
	add_i64(o, "stop_time", m->stop_time);
	/* Optional: older readers go by the seconds, which never overstate. */
	if (m->start_us)
		add_i64(o, "start_time_us", m->start_us);
	if (m->stop_us)
		add_i64(o, "stop_time_us", m->stop_us);
	add_str(o, "dbname", m->dbname);
	add_str(o, "label", m->label);
	add_str(o, "format", m->format);
	/* Only when true: older readers ignore it, and a primary's backup is unchanged. */
	if (m->from_standby)
		json_object_object_add(o, "from_standby", json_object_new_boolean(1));
	if (listed)
		add_str(o, "list_set", m->list_set);
	for (i = 0; i < m->nstreams; i++)
		json_object_array_add(streams, stream_to_json(&m->streams[i]));
	json_object_object_add(o, "streams", streams);

	text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	if (!text) {
		json_object_put(o);
		return pgk_error(PGKEEP_ENOMEM, "manifest %s: cannot serialise", m->id);
	}
	buf_append(out, text, len);
	json_object_put(o);
	return 0;
}

/* ---- from JSON: every field checked, errors name the object and field ---- */

struct parse {
	const char *what;
	int err;
};

static int bad(struct parse *p, const char *field, const char *why)
{
	if (!p->err)
		p->err = pgk_error(PGKEEP_ECORRUPT, "manifest %s: field \"%s\" %s", p->what,
				   field, why);
	return p->err;
}

/* A member of o, NULL when absent or null. */
static struct json_object *member(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

/*
 * json-c saturates integers too large for 64 bits to the type's limit, so the
 * limits themselves are refused: no field legitimately holds them.
 */
static int get_u64(struct parse *p, struct json_object *o, const char *k, uint64_t max,
		   uint64_t *out)
{
	struct json_object *v = member(o, k);
	uint64_t u;

	if (!v)
		return bad(p, k, "is missing");
	if (!json_object_is_type(v, json_type_int))
		return bad(p, k, "is not an integer");
	if (json_object_get_int64(v) < 0)
		return bad(p, k, "is negative");
	u = json_object_get_uint64(v);
	if (u == UINT64_MAX || u > max)
		return bad(p, k, "is out of range");
	*out = u;
	return 0;
}

static int get_i64(struct parse *p, struct json_object *o, const char *k, int64_t min,
		   int64_t max, int64_t *out)
{
	struct json_object *v = member(o, k);
	int64_t i;

	if (!v)
		return bad(p, k, "is missing");
	if (!json_object_is_type(v, json_type_int))
		return bad(p, k, "is not an integer");
	i = json_object_get_int64(v);
	if (i == INT64_MIN || i < min || i > max ||
	    (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX))
		return bad(p, k, "is out of range");
	*out = i;
	return 0;
}

/* A string member; *out NULL when absent or null and optional. */
static int get_str(struct parse *p, struct json_object *o, const char *k, bool required,
		   const char **out)
{
	struct json_object *v = member(o, k);

	*out = NULL;
	if (!v)
		return required ? bad(p, k, "is missing") : 0;
	if (!json_object_is_type(v, json_type_string))
		return bad(p, k, "is not a string");
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return bad(p, k, "contains a NUL byte");
	return 0;
}

static bool is_hex(const char *s, size_t len, bool upper)
{
	size_t i;

	if (strlen(s) != len)
		return false;
	for (i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		if (isalpha((unsigned char)s[i]) && (upper ? !isupper((unsigned char)s[i]) :
							     !islower((unsigned char)s[i])))
			return false;
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int get_opt_text(struct parse *p, struct json_object *o, const char *k, char **out)
{
	const char *s;

	if (get_str(p, o, k, false, &s))
		return p->err;
	if (s)
		*out = xstrdup(s);
	return 0;
}

/* An optional boolean: false when absent or null. */
static int get_opt_bool(struct parse *p, struct json_object *o, const char *k, bool *out)
{
	struct json_object *v = member(o, k);

	*out = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return bad(p, k, "is not true or false");
	*out = json_object_get_boolean(v);
	return 0;
}

static int parse_chunk(struct parse *p, struct json_object *c, struct manifest_stream *s)
{
	struct manifest_chunk *mc;
	struct json_object *v, *a;
	uint64_t size, stored;
	const char *id, *anchor = NULL;
	size_t n;

	n = json_object_is_type(c, json_type_array) ? json_object_array_length(c) : 0;
	if (n != 3 && n != 4)
		return bad(p, "chunks", "has an entry that is not [id, size, stored(, anchor)]");
	if (n == 4) {
		a = json_object_array_get_idx(c, 3);
		if (!json_object_is_type(a, json_type_string) ||
		    !is_hex(anchor = json_object_get_string(a), 16, false))
			return bad(p, "chunks", "has an entry whose anchor is not 16 hex digits");
	}
	v = json_object_array_get_idx(c, 0);
	if (!json_object_is_type(v, json_type_string) ||
	    !is_hex(id = json_object_get_string(v), 64, false))
		return bad(p, "chunks", "has an entry whose id is not 64 hex digits");
	v = json_object_array_get_idx(c, 1);
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
	    (size = json_object_get_uint64(v)) > UINT32_MAX)
		return bad(p, "chunks", "has an entry with an impossible size");
	v = json_object_array_get_idx(c, 2);
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
	    (stored = json_object_get_uint64(v)) > UINT32_MAX)
		return bad(p, "chunks", "has an entry with an impossible stored size");
	mc = manifest_stream_add_chunk(s, id, (uint32_t)size, (uint32_t)stored);
	if (anchor) {
		mc->known = true;
		mc->anchor = strtoull(anchor, NULL, 16);
	}
	return 0;
}

/* Format 2: the chunk count, the largest chunk, and each list object's count and digest. */
static int parse_lists(struct parse *p, struct json_object *o, struct manifest_stream *s)
{
	struct json_object *lists, *e, *v;
	uint64_t nchunks, max, sum = 0, count;
	const char *sha;
	size_t i, n;

	if (member(o, "chunks"))
		return bad(p, "chunks", "is inline in a manifest of format 2");
	if (get_u64(p, o, "nchunks", UINT64_MAX, &nchunks) ||
	    get_u64(p, o, "max_chunk", UINT32_MAX, &max))
		return p->err;
	lists = member(o, "lists");
	if (!lists || !json_object_is_type(lists, json_type_array))
		return bad(p, "lists", "is missing or not an array");
	n = json_object_array_length(lists);
	s->lists = xzalloc((n ? n : 1) * sizeof(*s->lists));
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(lists, i);
		if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 2)
			return bad(p, "lists", "has an entry that is not [count, sha256]");
		v = json_object_array_get_idx(e, 0);
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
		    (count = json_object_get_uint64(v)) > LIST_CHUNKS_MAX)
			return bad(p, "lists", "has an entry with an impossible count");
		v = json_object_array_get_idx(e, 1);
		if (!json_object_is_type(v, json_type_string) ||
		    !is_hex(sha = json_object_get_string(v), 64, false))
			return bad(p, "lists", "has an entry whose sha256 is not 64 hex digits");
		s->lists[i].count = (uint32_t)count;
		memcpy(s->lists[i].sha256, sha, 65);
		s->nlists++;
		sum += count;
	}
	if (sum != nchunks)
		return bad(p, "nchunks", "does not match the lists' counts");
	/* Every chunk holds 1 to max_chunk bytes. */
	if (nchunks > s->size || (nchunks == 0) != (max == 0) || max > s->size ||
	    (max && (s->size - 1) / max >= nchunks))
		return bad(p, "max_chunk", "does not fit the stream's size and chunk count");
	s->nchunks = (size_t)nchunks;
	s->max_chunk = (uint32_t)max;
	s->listed = true;
	return 0;
}

/* Optional: a tablespace's tar names where it goes back. */
static int parse_tablespace(struct parse *p, struct json_object *o, struct manifest_stream *s,
			    int64_t version)
{
	const char *loc;
	uint64_t oid;

	if (!member(o, "tablespace_oid") && !member(o, "tablespace_location"))
		return 0;
	if (version == MANIFEST_VERSION_LISTS)
		return bad(p, "tablespace_oid", "is in a manifest of format 2, before tablespaces");
	if (get_u64(p, o, "tablespace_oid", UINT32_MAX, &oid) ||
	    get_str(p, o, "tablespace_location", true, &loc))
		return p->err;
	if (oid == 0)
		return bad(p, "tablespace_oid", "is 0");
	if (!manifest_tablespace_location_ok(loc))
		return bad(p, "tablespace_location", "is not an absolute path without '.' or '..'");
	manifest_stream_set_tablespace(s, (uint32_t)oid, loc);
	return 0;
}

static int parse_stream(struct parse *p, struct json_object *o, struct manifest *m,
			int64_t version)
{
	struct manifest_stream *s;
	struct json_object *chunks;
	const char *name, *sha;
	uint64_t sum = 0;
	size_t i, n;

	if (!json_object_is_type(o, json_type_object))
		return bad(p, "streams", "has an entry that is not an object");
	if (get_str(p, o, "name", true, &name))
		return p->err;
	if (!*name || !printable(name))
		return bad(p, "name", "is not a valid stream name");
	for (i = 0; i < m->nstreams; i++)
		if (strcmp(m->streams[i].name, name) == 0)
			return bad(p, "name", "repeats a stream name");
	s = manifest_add_stream(m, name);
	if (get_u64(p, o, "size", UINT64_MAX, &s->size) ||
	    get_u64(p, o, "stored", UINT64_MAX, &s->stored))
		return p->err;
	/* One whole-stream checksum: XXH3-128, or SHA-256 in older manifests. */
	if (member(o, "xxh3_128") && member(o, "sha256"))
		return bad(p, "sha256", "is given together with xxh3_128");
	s->sum_alg = member(o, "sha256") ? SUM_SHA256 : SUM_XXH3_128;
	if (get_str(p, o, stream_sum_name(s->sum_alg), true, &sha))
		return p->err;
	if (!is_hex(sha, stream_sum_hexlen(s->sum_alg), false))
		return bad(p, stream_sum_name(s->sum_alg), s->sum_alg == SUM_SHA256 ?
			   "is not 64 lower-case hex digits" : "is not 32 lower-case hex digits");
	memcpy(s->sum, sha, stream_sum_hexlen(s->sum_alg) + 1);
	if (parse_tablespace(p, o, s, version))
		return p->err;
	if (version >= 2)
		return parse_lists(p, o, s);
	chunks = member(o, "chunks");
	if (!chunks || !json_object_is_type(chunks, json_type_array))
		return bad(p, "chunks", "is missing or not an array");
	n = json_object_array_length(chunks);
	for (i = 0; i < n; i++) {
		if (parse_chunk(p, json_object_array_get_idx(chunks, i), s))
			return p->err;
		sum += s->chunks[i].size;
	}
	if (sum != s->size)
		return bad(p, "size", "does not match the sum of the chunk sizes");
	return 0;
}

static int parse_type(struct parse *p, struct json_object *o, struct manifest *m)
{
	const char *t;

	if (get_str(p, o, "type", true, &t))
		return p->err;
	if (strcmp(t, "base") == 0)
		m->type = BACKUP_BASE;
	else if (strcmp(t, "dump") == 0)
		m->type = BACKUP_DUMP;
	else
		return bad(p, "type", "is neither \"base\" nor \"dump\"");
	return 0;
}

static int parse_wal_name(struct parse *p, struct json_object *o, const char *k, char out[25])
{
	const char *s;

	if (get_str(p, o, k, true, &s))
		return p->err;
	if (*s && !is_hex(s, 24, true))
		return bad(p, k, "is not a WAL segment name");
	snprintf(out, 25, "%s", s);
	return 0;
}

/* start_time_us and stop_time_us, when present, must agree with the seconds. */
static int parse_exact_times(struct parse *p, struct json_object *o, struct manifest *m)
{
	if (member(o, "start_time_us")) {
		if (get_i64(p, o, "start_time_us", 1, INT64_MAX, &m->start_us))
			return p->err;
		if (manifest_floor_sec(m->start_us) != m->start_time)
			return bad(p, "start_time_us", "does not match start_time");
	}
	if (member(o, "stop_time_us")) {
		if (get_i64(p, o, "stop_time_us", 1, INT64_MAX, &m->stop_us))
			return p->err;
		if (manifest_ceil_sec(m->stop_us) != m->stop_time)
			return bad(p, "stop_time_us", "does not match stop_time");
	}
	return 0;
}

static int parse_header(struct parse *p, struct json_object *o, struct manifest *m,
			int64_t *version_out)
{
	int64_t version, pgv, tli;
	const char *id, *set;

	if (get_i64(p, o, "manifest", 1, INT32_MAX, &version))
		return p->err;
	*version_out = version;
	if (version > MANIFEST_VERSION)
		return bad(p, "manifest", "is a newer format than this pgkeep reads");
	if (get_str(p, o, "id", true, &id))
		return p->err;
	if (!manifest_id_valid(id))
		return bad(p, "id", "is not a valid backup id");
	snprintf(m->id, sizeof(m->id), "%s", id);
	if (parse_type(p, o, m) ||
	    get_u64(p, o, "sysid", UINT64_MAX, &m->sysid) ||
	    get_i64(p, o, "pg_version", 0, INT_MAX, &pgv) ||
	    get_i64(p, o, "timeline", 0, UINT32_MAX, &tli) ||
	    get_u64(p, o, "start_lsn", UINT64_MAX, &m->start_lsn) ||
	    get_u64(p, o, "stop_lsn", UINT64_MAX, &m->stop_lsn) ||
	    parse_wal_name(p, o, "wal_start", m->wal_start) ||
	    parse_wal_name(p, o, "wal_stop", m->wal_stop) ||
	    get_i64(p, o, "start_time", INT64_MIN + 1, INT64_MAX, &m->start_time) ||
	    get_i64(p, o, "stop_time", INT64_MIN + 1, INT64_MAX, &m->stop_time) ||
	    get_opt_text(p, o, "dbname", &m->dbname) ||
	    get_opt_text(p, o, "label", &m->label) ||
	    get_opt_text(p, o, "format", &m->format) ||
	    get_opt_bool(p, o, "from_standby", &m->from_standby))
		return p->err;
	if (parse_exact_times(p, o, m))
		return p->err;
	if (version >= 2) {
		if (get_str(p, o, "list_set", true, &set))
			return p->err;
		if (!is_hex(set, MANIFEST_LIST_SET_LEN, false))
			return bad(p, "list_set", "is not 32 lower-case hex digits");
		memcpy(m->list_set, set, sizeof(m->list_set));
	}
	m->pg_version = (int)pgv;
	m->timeline = (uint32_t)tli;
	if (m->stop_lsn < m->start_lsn)
		return bad(p, "stop_lsn", "is before start_lsn");
	return 0;
}

static int parse_manifest(struct parse *p, struct json_object *o, struct manifest *m)
{
	struct json_object *streams;
	int64_t version = 0;
	size_t i, n;

	if (!json_object_is_type(o, json_type_object))
		return pgk_error(PGKEEP_ECORRUPT, "manifest %s: not a JSON object", p->what);
	if (parse_header(p, o, m, &version))
		return p->err;
	streams = member(o, "streams");
	if (!streams || !json_object_is_type(streams, json_type_array))
		return bad(p, "streams", "is missing or not an array");
	n = json_object_array_length(streams);
	for (i = 0; i < n; i++)
		if (parse_stream(p, json_object_array_get_idx(streams, i), m, version))
			return p->err;
	return 0;
}

static bool only_space(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

int manifest_from_json(struct manifest *m, const char *json, size_t len, const char *what)
{
	struct parse p = { .what = what, .err = 0 };
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;
	int ret;

	memset(m, 0, sizeof(*m));
	if (len > INT_MAX)
		return pgk_error(PGKEEP_ECORRUPT, "manifest %s: too large (%zu bytes)", what, len);
	tok = json_tokener_new();
	if (!tok)
		return pgk_error(PGKEEP_ENOMEM, "manifest %s: cannot allocate a JSON parser", what);
	o = json_tokener_parse_ex(tok, json, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* A bare value at the very end needs an explicit end of input. */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		end = len;
	}
	if (!o) {
		/* json-c returns NULL without an error for the literal null */
		ret = json_tokener_get_error(tok) == json_tokener_success ?
			pgk_error(PGKEEP_ECORRUPT, "manifest %s: not a JSON object", what) :
			pgk_error(PGKEEP_ECORRUPT, "manifest %s: invalid JSON: %s", what,
				  json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out_free_tok;
	}
	if (end < len && !only_space(json + end, len - end)) {
		ret = pgk_error(PGKEEP_ECORRUPT, "manifest %s: trailing data after the JSON",
				what);
		goto out_put;
	}
	ret = parse_manifest(&p, o, m);
	if (ret)
		manifest_free(m);
out_put:
	json_object_put(o);
out_free_tok:
	json_tokener_free(tok);
	return ret;
}


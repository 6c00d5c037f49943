/*
 * Manifests: every field survives JSON exactly (64-bit values included), bad
 * documents are refused naming the object and field, and listing orders
 * backups by what they recorded, not by their names.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "repo/manifest.h"
#include "tap.h"

static struct repo repo;

static void chunk_id(unsigned n, char out[65])
{
	snprintf(out, 65, "%064x", n * 2654435761u);
}

static void fill_manifest(struct manifest *m)
{
	struct manifest_stream *s;
	char id[65];
	unsigned i;

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "20260220T143000Z-base");
	m->type = BACKUP_BASE;
	m->sysid = 0xfedcba9876543210ULL;		/* above 2^63 */
	m->pg_version = 150004;
	m->timeline = 0xfffffffeu;
	m->start_lsn = (1ULL << 53) + 1;		/* not exact as a double */
	m->stop_lsn = 0x7fffffffffffffffULL + 10;
	snprintf(m->wal_start, sizeof(m->wal_start), "00000001000000A000000042");
	snprintf(m->wal_stop, sizeof(m->wal_stop), "00000001000000A0000000FF");
	m->start_time = 1771597800;
	m->stop_time = (int64_t)1 << 55;
	m->dbname = xstrdup("shop \"main\" \xc3\xa9");
	m->label = xstrdup("weekly\tlabel");
	m->format = xstrdup("custom");

	s = manifest_add_stream(m, "base.tar");
	for (i = 0; i < 5; i++) {
		struct manifest_chunk *mc;

		chunk_id(i, id);
		mc = manifest_stream_add_chunk(s, id, i == 4 ? UINT32_MAX : 1000 + i, i * 7);
		/* 0: an entry from before anchors */
		if (i > 0) {
			mc->known = true;
			mc->anchor = 0xf00dfacecafebeefULL * i;
		}
		s->size += i == 4 ? UINT32_MAX : 1000 + i;
		s->stored += i * 7;
	}
	memset(s->sum, 'a', 32);	/* XXH3-128, what new streams carry */
	s = manifest_add_stream(m, "16384.tar");
	s->sum_alg = SUM_SHA256;	/* as streams written before it did */
	memset(s->sum, '0', 64);
	manifest_stream_set_tablespace(s, 16384, "/srv/spc \"one\"=x");
}

static bool same_opt(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_stream(const struct manifest_stream *a, const struct manifest_stream *b)
{
	size_t i;

	if (strcmp(a->name, b->name) || a->size != b->size || a->stored != b->stored ||
	    a->sum_alg != b->sum_alg || strcmp(a->sum, b->sum) || a->nchunks != b->nchunks ||
	    a->tblspc_oid != b->tblspc_oid || !same_opt(a->tblspc_location, b->tblspc_location))
		return false;
	for (i = 0; i < a->nchunks; i++)
		if (strcmp(a->chunks[i].id, b->chunks[i].id) || a->chunks[i].size != b->chunks[i].size ||
		    a->chunks[i].stored != b->chunks[i].stored ||
		    a->chunks[i].known != b->chunks[i].known ||
		    a->chunks[i].anchor != b->chunks[i].anchor)
			return false;
	return true;
}

static void test_round_trip(void)
{
	struct manifest m, back;
	struct pgk_buf json = PGK_BUF_INIT, again = PGK_BUF_INIT;
	int ret;

	fill_manifest(&m);
	is_int(manifest_to_json(&m, &json), 0, "serialise a manifest with every field set");
	ok(strstr((char *)json.data, "18364758544493064720") != NULL,
	   "  sysid written as an exact integer");
	ret = manifest_from_json(&back, (const char *)json.data, json.len, "t");
	is_int(ret, 0, "  parse it back: %s", ret ? pgk_errmsg() : "ok");
	is_str(back.id, m.id, "  id");
	is_int(back.type, BACKUP_BASE, "  type");
	ok(back.sysid == m.sysid, "  sysid above 2^63");
	is_int(back.pg_version, 150004, "  pg_version");
	ok(back.timeline == 0xfffffffeu, "  timeline");
	ok(back.start_lsn == m.start_lsn, "  start_lsn above 2^53");
	ok(back.stop_lsn == m.stop_lsn, "  stop_lsn above 2^63");
	is_str(back.wal_start, m.wal_start, "  wal_start");
	is_str(back.wal_stop, m.wal_stop, "  wal_stop");
	ok(back.start_time == m.start_time && back.stop_time == m.stop_time, "  times");
	is_str(back.dbname, m.dbname, "  dbname with quotes and UTF-8");
	is_str(back.label, m.label, "  label with a tab");
	is_str(back.format, "custom", "  format");
	is_int(back.nstreams, 2, "  two streams");
	ok(back.nstreams == 2 && same_stream(&back.streams[0], &m.streams[0]) &&
	   same_stream(&back.streams[1], &m.streams[1]), "  streams and chunk lists identical");
	ok(manifest_size(&back) == manifest_size(&m) && manifest_size(&m) == 4006ULL + UINT32_MAX,
	   "  logical size %llu", (unsigned long long)manifest_size(&back));
	is_int(manifest_stored(&back), 70, "  stored bytes");
	manifest_to_json(&back, &again);
	ok(again.len == json.len && memcmp(again.data, json.data, json.len) == 0,
	   "  serialising the parsed manifest gives the same text");
	manifest_free(&back);
	buf_free(&again);
	buf_free(&json);

	free(m.dbname);
	free(m.label);
	free(m.format);
	m.dbname = m.label = m.format = NULL;
	m.type = BACKUP_DUMP;
	manifest_to_json(&m, &json);
	ret = manifest_from_json(&back, (const char *)json.data, json.len, "t");
	ok(ret == 0 && back.type == BACKUP_DUMP && !back.dbname && !back.label && !back.format,
	   "absent dbname, label and format stay absent");
	ok(same_opt(back.label, NULL), "  label NULL");
	manifest_free(&back);
	buf_free(&json);
	manifest_free(&m);
	is_str(backup_type_name(BACKUP_BASE), "base", "type name base");
	is_str(backup_type_name(BACKUP_DUMP), "dump", "type name dump");
}

/* A backup from a standby says so; one from a primary carries no field. */
static void test_from_standby(void)
{
	struct manifest m, back;
	struct pgk_buf json = PGK_BUF_INIT;
	int ret;

	fill_manifest(&m);
	manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	ok(!strstr((char *)json.data, "from_standby"), "a primary's backup has no from_standby");
	ret = manifest_from_json(&back, (const char *)json.data, json.len - 1, "t");
	ok(ret == 0 && !back.from_standby, "  and reads back as not from a standby");
	manifest_free(&back);
	buf_free(&json);
	m.from_standby = true;
	m.timeline = 3;
	manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	ok(strstr((char *)json.data, "\"from_standby\":true") != NULL,
	   "a standby's backup records from_standby");
	ret = manifest_from_json(&back, (const char *)json.data, json.len - 1, "t");
	ok(ret == 0 && back.from_standby && back.timeline == 3,
	   "  read back with its timeline: %s", ret ? pgk_errmsg() : "ok");
	manifest_free(&back);
	buf_free(&json);
	manifest_free(&m);
}

/* A valid document as a json-c tree, for tests that break one thing. */
static struct json_object *valid_tree(void)
{
	struct pgk_buf json = PGK_BUF_INIT;
	struct manifest m;
	struct json_object *o;

	fill_manifest(&m);
	manifest_to_json(&m, &json);
	buf_append(&json, "", 1);
	o = json_tokener_parse((const char *)json.data);
	buf_free(&json);
	manifest_free(&m);
	return o;
}

/* Parse o under the name "backups/x.manifest"; expect a refusal naming field. */
static void expect_refused(struct json_object *o, const char *field, const char *why)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	struct manifest m;
	int ret;

	ret = manifest_from_json(&m, text, strlen(text), "backups/x.manifest");
	is_int(ret, PGKEEP_ECORRUPT, "%s: refused", why);
	ok(strstr(pgk_errmsg(), "backups/x.manifest") && strstr(pgk_errmsg(), field),
	   "  message names the object and \"%s\": %s", field, pgk_errmsg());
	ok(m.nstreams == 0 && m.streams == NULL && m.dbname == NULL, "  nothing left allocated");
	json_object_put(o);
}

static void test_missing_fields(void)
{
	static const char *const required[] = {
		"manifest", "id", "type", "sysid", "pg_version", "timeline", "start_lsn",
		"stop_lsn", "wal_start", "wal_stop", "start_time", "stop_time", "streams",
	};
	static const char *const stream_required[] = { "name", "size", "xxh3_128", "chunks" };
	struct json_object *o, *s;
	char why[80];
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		o = valid_tree();
		json_object_object_del(o, required[i]);
		snprintf(why, sizeof(why), "missing %s", required[i]);
		expect_refused(o, required[i], why);
	}
	for (i = 0; i < sizeof(stream_required) / sizeof(stream_required[0]); i++) {
		o = valid_tree();
		s = json_object_array_get_idx(json_object_object_get(o, "streams"), 0);
		json_object_object_del(s, stream_required[i]);
		snprintf(why, sizeof(why), "stream without %s", stream_required[i]);
		expect_refused(o, stream_required[i], why);
	}
}

static void set(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static struct json_object *first_stream(struct json_object *o)
{
	return json_object_array_get_idx(json_object_object_get(o, "streams"), 0);
}

static struct json_object *first_chunk(struct json_object *o)
{
	return json_object_array_get_idx(json_object_object_get(first_stream(o), "chunks"), 0);
}

static void test_bad_values(void)
{
	struct json_object *o;

	o = valid_tree();
	set(o, "sysid", json_object_new_int64(-5));
	expect_refused(o, "sysid", "negative sysid");
	o = valid_tree();
	set(o, "sysid", json_object_new_string("123"));
	expect_refused(o, "sysid", "sysid as a string");
	o = valid_tree();
	set(o, "start_lsn", json_object_new_double(1.5));
	expect_refused(o, "start_lsn", "fractional LSN");
	o = valid_tree();
	set(o, "timeline", json_object_new_int64(1LL << 32));
	expect_refused(o, "timeline", "timeline above 32 bits");
	o = valid_tree();
	set(o, "from_standby", json_object_new_string("yes"));
	expect_refused(o, "from_standby", "from_standby as a string");
	o = valid_tree();
	set(o, "type", json_object_new_string("incremental"));
	expect_refused(o, "type", "unknown type");
	o = valid_tree();
	set(o, "id", json_object_new_string("../../etc"));
	expect_refused(o, "id", "id that is not a key segment");
	o = valid_tree();
	set(o, "manifest", json_object_new_int64(3));
	expect_refused(o, "manifest", "a newer manifest format");
	o = valid_tree();
	set(o, "wal_start", json_object_new_string("00000001000000a000000042"));
	expect_refused(o, "wal_start", "lower-case WAL name");
	o = valid_tree();
	set(o, "stop_lsn", json_object_new_int64(5));
	expect_refused(o, "stop_lsn", "stop before start");
	o = valid_tree();
	set(first_stream(o), "size", json_object_new_int64(12));
	expect_refused(o, "size", "stream size that disagrees with its chunks");
	o = valid_tree();
	set(first_stream(o), "xxh3_128", json_object_new_string("abc"));
	expect_refused(o, "xxh3_128", "short stream checksum");
	o = valid_tree();
	set(first_stream(o), "xxh3_128", json_object_new_string("0123456789abcdef0123456789ABCDEF"));
	expect_refused(o, "xxh3_128", "upper-case stream checksum");
	o = valid_tree();
	set(first_stream(o), "sha256", json_object_new_string("0123456789abcdef0123456789abcdef"));
	expect_refused(o, "sha256", "two stream checksums");
	o = valid_tree();
	set(json_object_array_get_idx(json_object_object_get(o, "streams"), 1), "sha256",
	    json_object_new_string("0123456789abcdef0123456789abcdef"));
	expect_refused(o, "sha256", "SHA-256 of 32 digits");
	o = valid_tree();
	json_object_array_put_idx(first_chunk(o), 0, json_object_new_string("zz"));
	expect_refused(o, "chunks", "chunk id that is not hex");
	o = valid_tree();
	json_object_array_put_idx(first_chunk(o), 1, json_object_new_int64(0));
	expect_refused(o, "chunks", "empty chunk");
	o = valid_tree();
	json_object_array_put_idx(first_chunk(o), 1, json_object_new_int64(1LL << 32));
	expect_refused(o, "chunks", "chunk above 4 GiB");
	o = valid_tree();
	json_object_array_del_idx(first_chunk(o), 2, 1);
	expect_refused(o, "chunks", "chunk entry with two fields");
	o = valid_tree();
	json_object_array_add(first_chunk(o), json_object_new_string("0123456789abcdeg"));
	expect_refused(o, "chunks", "anchor that is not hex");
	o = valid_tree();
	json_object_array_add(first_chunk(o), json_object_new_string("0123456789abcdef"));
	json_object_array_add(first_chunk(o), json_object_new_string("0123456789abcdef"));
	expect_refused(o, "chunks", "chunk entry with five fields");
	o = valid_tree();
	json_object_object_add(json_object_array_get_idx(json_object_object_get(o, "streams"), 1),
			       "name", json_object_new_string("base.tar"));
	expect_refused(o, "name", "two streams with one name");
}

/* A tablespace's stream: OID and location survive; without them, as before. */
static void test_tablespace(void)
{
	struct json_object *o, *spc;
	const char *text;
	struct manifest m;
	int ret;

	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	json_object_object_del(spc, "tablespace_oid");
	json_object_object_del(spc, "tablespace_location");
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	ret = manifest_from_json(&m, text, strlen(text), "t");
	ok(ret == 0 && m.nstreams == 2 && m.streams[1].tblspc_oid == 0 &&
	   !m.streams[1].tblspc_location && !m.streams[0].tblspc_location,
	   "a manifest from before tablespaces reads, its streams none");
	manifest_free(&m);
	json_object_put(o);

	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	set(spc, "tablespace_oid", json_object_new_int64(0));
	expect_refused(o, "tablespace_oid", "tablespace OID 0");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	set(spc, "tablespace_oid", json_object_new_int64(1LL << 32));
	expect_refused(o, "tablespace_oid", "tablespace OID above 32 bits");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	json_object_object_del(spc, "tablespace_location");
	expect_refused(o, "tablespace_location", "tablespace OID without a location");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	json_object_object_del(spc, "tablespace_oid");
	expect_refused(o, "tablespace_oid", "tablespace location without an OID");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	set(spc, "tablespace_location", json_object_new_string("srv/spc"));
	expect_refused(o, "tablespace_location", "relative tablespace location");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	set(spc, "tablespace_location", json_object_new_string("/srv/../etc"));
	expect_refused(o, "tablespace_location", "tablespace location with '..'");
	o = valid_tree();
	spc = json_object_array_get_idx(json_object_object_get(o, "streams"), 1);
	set(spc, "tablespace_location", json_object_new_string("/srv/a\nb"));
	expect_refused(o, "tablespace_location", "tablespace location with a newline");

	ok(manifest_tablespace_location_ok("/srv/spc") &&
	   manifest_tablespace_location_ok("/srv/spc/") &&
	   manifest_tablespace_location_ok("/a b/c=d"), "absolute locations are accepted");
	ok(!manifest_tablespace_location_ok("/") && !manifest_tablespace_location_ok("") &&
	   !manifest_tablespace_location_ok("/a//b") && !manifest_tablespace_location_ok("/a/.") &&
	   !manifest_tablespace_location_ok("/./a") && !manifest_tablespace_location_ok("a/b"),
	   "'/', empty components, '.', '..' and relative paths are not");
}

static void test_bad_text(void)
{
	static const char *const texts[] = {
		"", "{", "[]", "null", "42", "{\"manifest\":1", "{} {}",
	};
	struct json_object *o;
	struct manifest m;
	char *text, *p;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ret = manifest_from_json(&m, texts[i], strlen(texts[i]), "backups/y.manifest");
		ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "backups/y.manifest"),
		   "'%s' refused: %s", texts[i], pgk_errmsg());
	}

	/* json-c saturates an integer too large for 64 bits; it must not pass */
	o = valid_tree();
	text = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	p = strstr(text, "18364758544493064720");
	ok(p != NULL, "sysid found in the text");
	if (p) {
		memcpy(p, "99999999999999999999", 20);
		ret = manifest_from_json(&m, text, strlen(text), "backups/y.manifest");
		ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "sysid"),
		   "a sysid beyond 64 bits is refused: %s", pgk_errmsg());
		memcpy(p, "18446744073709551615", 20);
		ret = manifest_from_json(&m, text, strlen(text), "backups/y.manifest");
		ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "sysid"),
		   "2^64 - 1, the saturated value, is refused too");
		memcpy(p, "18446744073709551614", 20);
		ret = manifest_from_json(&m, text, strlen(text), "backups/y.manifest");
		ok(ret == 0 && m.sysid == UINT64_MAX - 1, "2^64 - 2 is read exactly");
		manifest_free(&m);
	}
	free(text);
}

/* A manifest as written before times were kept to the microsecond. */
static const char old_manifest[] =
	"{\"manifest\":1,\"id\":\"20261207T101500Z-base\",\"type\":\"base\","
	"\"sysid\":7412345678901234567,\"pg_version\":150010,\"timeline\":1,"
	"\"start_lsn\":33554472,\"stop_lsn\":33554744,\"wal_start\":\"000000010000000000000002\","
	"\"wal_stop\":\"000000010000000000000002\",\"start_time\":1796638500,"
	"\"stop_time\":1796638503,\"dbname\":null,\"label\":null,\"format\":null,"
	"\"streams\":[{\"name\":\"base.tar\",\"size\":1000,\"stored\":900,"
	"\"xxh3_128\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"chunks\":"
	"[[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",1000,900]]}]}";

static void test_exact_times(void)
{
	struct pgk_buf json = PGK_BUF_INIT;
	struct json_object *o;
	struct manifest m, back;
	int ret;

	ret = manifest_from_json(&back, old_manifest, strlen(old_manifest), "old");
	is_int(ret, 0, "a manifest without exact times still reads: %s", ret ? pgk_errmsg() : "ok");
	ok(back.start_us == 0 && back.stop_us == 0, "  no exact times recorded");
	ok(manifest_start_us(&back) == 1796638500000000LL &&
	   manifest_stop_us(&back) == 1796638503000000LL, "  its times in microseconds are the seconds");
	manifest_to_json(&back, &json);
	ok(json.len == strlen(old_manifest) && memcmp(json.data, old_manifest, json.len) == 0,
	   "  and it is written back unchanged");
	buf_free(&json);
	manifest_free(&back);

	fill_manifest(&m);
	manifest_set_start(&m, 1796638500250000LL);
	manifest_set_stop(&m, 1796638502300001LL);
	ok(m.start_time == 1796638500 && m.stop_time == 1796638503,
	   "the start's second rounds down, the stop's up (%lld, %lld)", (long long)m.start_time,
	   (long long)m.stop_time);
	manifest_to_json(&m, &json);
	ok(strstr((char *)json.data, "\"start_time_us\":1796638500250000") &&
	   strstr((char *)json.data, "\"stop_time_us\":1796638502300001") &&
	   strstr((char *)json.data, "\"stop_time\":1796638503"),
	   "  written exactly, beside the seconds older readers use");
	ret = manifest_from_json(&back, (const char *)json.data, json.len, "t");
	ok(ret == 0 && back.start_us == 1796638500250000LL && back.stop_us == 1796638502300001LL &&
	   back.start_time == 1796638500 && back.stop_time == 1796638503,
	   "  read back exactly: %s", ret ? pgk_errmsg() : "ok");
	ok(manifest_stop_us(&back) == 1796638502300001LL, "  the stop to the microsecond");
	/* what restore asks: did it finish at or before a target 0.3 s after it? */
	ok(manifest_stop_us(&back) <= 1796638502600000LL,
	   "  a target 0.3 s after the stop is after it, though in the same second");
	manifest_free(&back);
	buf_free(&json);
	manifest_set_stop(&m, 1796638503000000LL);
	ok(m.stop_time == 1796638503, "a stop on a whole second stays that second");
	manifest_set_start(&m, -1500000);
	ok(m.start_time == -2, "a start before the epoch rounds down too");
	manifest_free(&m);

	o = valid_tree();
	set(o, "stop_time_us", json_object_new_int64(1771597900000000LL));
	expect_refused(o, "stop_time_us", "exact stop that disagrees with stop_time");
	o = valid_tree();
	set(o, "start_time_us", json_object_new_int64(1771597801000000LL));
	expect_refused(o, "start_time_us", "exact start a second after start_time");
	o = valid_tree();
	set(o, "start_time_us", json_object_new_string("1771597800000000"));
	expect_refused(o, "start_time_us", "exact start as a string");
	o = valid_tree();
	set(o, "start_time_us", json_object_new_int64(0));
	expect_refused(o, "start_time_us", "exact start of zero");
	o = valid_tree();
	set(o, "start_time_us", json_object_new_int64(1771597800999999LL));
	{
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

		ret = manifest_from_json(&back, text, strlen(text), "t");
		ok(ret == 0 && back.start_us == 1771597800999999LL,
		   "an exact start within start_time's second is accepted");
		if (ret == 0)
			manifest_free(&back);
	}
	json_object_put(o);
}

static void save_one(const char *id, int64_t start, uint64_t stop_lsn)
{
	struct manifest m;
	int ret;

	fill_manifest(&m);
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.start_time = start;
	m.stop_time = start + 60;
	m.start_lsn = 0;
	m.stop_lsn = stop_lsn;
	ret = manifest_save(&repo, &m);
	is_int(ret, 0, "save %s: %s", id, ret ? pgk_errmsg() : "ok");
	manifest_free(&m);
}

static void test_store(void)
{
	struct manifest m, *list;
	size_t n;
	int ret;

	/* ids sort the opposite way to the times the backups recorded */
	save_one("c-oldest", 1000, 50);
	save_one("b-middle-late", 2000, 90);
	save_one("a-newest", 3000, 10);
	save_one("z-middle-early", 2000, 70);
	ok(memstore_count(repo.store, "backups/") == 4, "four manifests stored");
	ret = manifest_save(&repo, &(struct manifest){ .id = "c-oldest", .type = BACKUP_DUMP });
	is_int(ret, PGKEEP_EEXISTS, "saving an existing backup id is refused");
	ok(strstr(pgk_errmsg(), "c-oldest") != NULL, "  naming it: %s", pgk_errmsg());

	ret = manifest_load(&repo, "a-newest", &m);
	ok(ret == 0 && strcmp(m.id, "a-newest") == 0 && m.start_time == 3000 &&
	   m.sysid == 0xfedcba9876543210ULL, "load a-newest");
	manifest_free(&m);
	ret = manifest_load(&repo, "nope", &m);
	is_int(ret, PGKEEP_ENOTFOUND, "loading an unknown backup: not found");
	ok(strstr(pgk_errmsg(), "nope") != NULL, "  naming it: %s", pgk_errmsg());
	ret = manifest_load(&repo, "../keys", &m);
	is_int(ret, PGKEEP_EINVAL, "an id that is not a key segment is refused");

	/* junk next to the manifests is not a backup */
	store_put(repo.store, "backups/README", "x", 1, 0);
	store_put(repo.store, "backups/sub/x.manifest", "x", 1, 0);
	ret = manifest_list(&repo, &list, &n);
	is_int(ret, 0, "list: %s", ret ? pgk_errmsg() : "ok");
	ok(n == 4 && strcmp(list[0].id, "c-oldest") == 0 &&
	   strcmp(list[1].id, "z-middle-early") == 0 &&
	   strcmp(list[2].id, "b-middle-late") == 0 && strcmp(list[3].id, "a-newest") == 0,
	   "  sorted by start time, then stop LSN; not by id");
	manifest_list_free(list, n);
	ret = manifest_list_summary(&repo, &list, &n);
	ok(ret == 0 && n == 4 && strcmp(list[0].id, "c-oldest") == 0 &&
	   strcmp(list[3].id, "a-newest") == 0 && list[0].nstreams == 2 &&
	   list[0].summary && list[0].streams[0].nchunks == 5 && !list[0].streams[0].chunks &&
	   list[0].streams[0].size == 4006ULL + UINT32_MAX,
	   "summary list: same order, stream sizes and chunk counts kept, chunk lists dropped");
	{
		struct manifest_cursor *c = NULL;
		const struct manifest_chunk *mc;
		char want[65];
		unsigned got = 0, right = 0;

		ret = manifest_cursor_open(&repo, &list[0], 0, &c);
		is_int(ret, 0, "cursor over a summary's stream: %s", ret ? pgk_errmsg() : "ok");
		while (c && (ret = manifest_cursor_next(c, &mc)) == 1) {
			chunk_id(got, want);
			right += strcmp(mc->id, want) == 0 && mc->stored == got * 7;
			got++;
		}
		ok(ret == 0 && got == 5 && right == 5, "  yields the five chunks in order (%u, %u)",
		   got, right);
		manifest_cursor_close(c);
		ret = manifest_cursor_open(&repo, &list[0], 1, &c);
		ok(ret == 0 && manifest_cursor_next(c, &mc) == 0, "  an empty stream ends at once");
		manifest_cursor_close(c);
		ret = manifest_cursor_open(&repo, &list[0], 2, &c);
		ok(ret == PGKEEP_EINVAL && !c, "  a stream that does not exist is refused");
	}
	manifest_list_free(list, n);

	/* a manifest copied under another name was moved or forged */
	{
		struct pgk_buf obj = PGK_BUF_INIT;

		store_get(repo.store, "backups/a-newest.manifest", &obj);
		store_put(repo.store, "backups/x-forged.manifest", obj.data, obj.len, 0);
		buf_free(&obj);
	}
	ret = manifest_load(&repo, "x-forged", &m);
	is_int(ret, PGKEEP_ECORRUPT, "a manifest under another backup's name is refused");
	ret = manifest_list(&repo, &list, &n);
	is_int(ret, PGKEEP_ECORRUPT, "  and fails the listing");
	ok(strstr(pgk_errmsg(), "x-forged") != NULL, "  naming it: %s", pgk_errmsg());
	memstore_delete(repo.store, "backups/x-forged.manifest");

	memstore_corrupt(repo.store, "backups/b-middle-late.manifest", 60);
	ret = manifest_list(&repo, &list, &n);
	is_int(ret, PGKEEP_ECORRUPT, "a damaged manifest fails the listing");
	ok(strstr(pgk_errmsg(), "b-middle-late") != NULL, "  naming it: %s", pgk_errmsg());
}

int main(void)
{
	repo.store = memstore_open();
	repo.name = "test";
	repo.compress_level = 3;
	if (keys_generate(&repo.keys)) {
		diag("keys: %s", pgk_errmsg());
		return 1;
	}
	test_round_trip();
	test_from_standby();
	test_missing_fields();
	test_bad_values();
	test_tablespace();
	test_bad_text();
	test_exact_times();
	test_store();
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

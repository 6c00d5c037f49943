/*
 * The replication client's reading of BASE_BACKUP's copy messages (what a
 * server sends, and what a broken or hostile one could), and the server
 * versions it accepts.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "common/error.h"
#include "pg/basebackup.h"

struct seen {
	char name[64], location[64];
	char data[64];
	size_t ndata;
	int archives, manifests, progresses;
	uint64_t done;
};

static int on_archive(void *payload, const char *name, const char *location)
{
	struct seen *s = payload;

	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->location, sizeof(s->location), "%s", location);
	s->archives++;
	return 0;
}

static int on_data(void *payload, const void *buf, size_t len)
{
	struct seen *s = payload;

	memcpy(s->data + s->ndata, buf, len);
	s->ndata += len;
	return 0;
}

static int on_manifest(void *payload)
{
	((struct seen *)payload)->manifests++;
	return 0;
}

static void on_progress(void *payload, uint64_t done)
{
	struct seen *s = payload;

	s->done = done;
	s->progresses++;
}

static int msg(const struct basebackup_sink *k, const char *m, size_t len)
{
	int rc = basebackup_message(k, m, len);

	if (rc < 0)
		diag("%s", pgk_errmsg());
	return rc;
}

int main(void)
{
	struct seen s;
	struct basebackup_sink k = { .archive = on_archive, .data = on_data,
				     .manifest = on_manifest, .progress = on_progress,
				     .payload = &s };
	static const char n_main[] = "nbase.tar\0";
	static const char n_spc[] = "n16385.tar\0/srv/spc\0";
	static const char p_msg[] = { 'p', 0, 0, 0, 1, 0, 0, 0, 2 };

	memset(&s, 0, sizeof(s));
	is_int(msg(&k, n_main, sizeof(n_main)), 0, "'n' for the main archive");
	is_str(s.name, "base.tar", "its name");
	is_str(s.location, "", "an empty location");
	is_int(msg(&k, n_spc, sizeof(n_spc)), 0, "'n' for a tablespace");
	is_str(s.location, "/srv/spc", "its location");
	is_int(msg(&k, "dabc", 4), 0, "'d' data");
	is_int(msg(&k, "d", 1), 0, "'d' with no data");
	ok(s.ndata == 3 && memcmp(s.data, "abc", 3) == 0, "the data, without the type byte");
	is_int(msg(&k, p_msg, sizeof(p_msg)), 0, "'p' progress");
	ok(s.done == ((uint64_t)1 << 32 | 2), "read as a big-endian int64");
	is_int(msg(&k, "m", 1), 0, "'m' manifest");
	is_int(s.manifests, 1, "the manifest begins");

	ok(msg(&k, "nbase.tar", 9) < 0, "'n' without its terminating NULs is refused");
	ok(msg(&k, "nbase.tar\0", 10) < 0, "'n' without a location is refused");
	ok(msg(&k, p_msg, 5) < 0, "a short 'p' is refused");
	ok(msg(&k, "x123", 4) < 0, "an unknown type is refused");
	ok(msg(&k, "", 0) < 0, "an empty message is refused");
	is_int(s.archives, 2, "no refused message reached the sink");

	ok(!basebackup_server_supported(140010) && !basebackup_server_supported(190000),
	   "PostgreSQL 14 and 19 are refused");
	ok(basebackup_server_supported(150000) && basebackup_server_supported(160004) &&
	   basebackup_server_supported(170010) && basebackup_server_supported(180004),
	   "15, 16, 17 and 18 are taken");
	return done_testing();
}

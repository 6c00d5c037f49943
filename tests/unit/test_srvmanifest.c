/*
 * The server's backup_manifest against a restored directory: CRC-32C's
 * test vectors, then a directory with a tablespace behind its link checked
 * when it is whole, missing a file, with a file of the wrong size or the
 * wrong bytes, with files the manifest does not list (skipped or not), and
 * with a manifest whose own checksum is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tap.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/crc32c.h"
#include "pg/srvmanifest.h"

#define PENDING "global/pg_control.pgkeep-restoring"

static char base[64], data[128], spc[128];

static void bail_out(const char *what, const char *arg)
{
	printf("Bail out! %s %s\n", what, arg);
	exit(1);
}

/* A bit at a time, straight from the definition: the tables' reference. */
static uint32_t crc_bitwise(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = 0xFFFFFFFFu;
	int k;

	while (len--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? c >> 1 ^ 0x82F63B78u : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

static uint32_t crc_of(const void *buf, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, buf, len));
}

static void test_crc32c(void)
{
	unsigned char zeros[32] = { 0 }, ones[32], inc[32], big[1000];
	uint32_t c;
	size_t i, split;
	int same = 1;

	memset(ones, 0xff, sizeof(ones));
	for (i = 0; i < sizeof(inc); i++)
		inc[i] = (unsigned char)i;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	/* RFC 3720, appendix B.4, and the usual check value. */
	is_int(crc_of("", 0), 0, "crc32c of nothing is 0");
	is_int(crc_of("123456789", 9), 0xE3069283u, "crc32c(\"123456789\") = e3069283");
	is_int(crc_of(zeros, 32), 0x8A9136AAu, "crc32c of 32 zero bytes = 8a9136aa");
	is_int(crc_of(ones, 32), 0x62A8AB43u, "crc32c of 32 0xff bytes = 62a8ab43");
	is_int(crc_of(inc, 32), 0x46DD794Eu, "crc32c of 00..1f = 46dd794e");
	for (split = 0; split <= 37; split++) {
		c = crc32c_update(CRC32C_INIT, big + 1, split);
		c = crc32c_final(crc32c_update(c, big + 1 + split, sizeof(big) - 1 - split));
		same &= c == crc_bitwise(big + 1, sizeof(big) - 1);
	}
	ok(same, "fed in two parts at any split and from an odd address, the same crc");
}

/* ---------------------------------------------------------------- a restored directory */

static void put(const char *dir, const char *name, const char *body)
{
	char *path = xasprintf("%s/%s", dir, name), *slash;
	FILE *f;

	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	f = fopen(path, "w");
	if (!f || fputs(body, f) < 0 || fclose(f) != 0)
		bail_out("cannot write", path);
	free(path);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* One "Files" line, as PostgreSQL writes it; CRC32C in the host's byte order. */
static void entry(char **text, const char *path, const char *body, const char *algo)
{
	unsigned char sum[32];
	unsigned int len = 0;
	char h[65] = "", *t;
	uint32_t crc;

	if (strcmp(algo, "CRC32C") == 0) {
		crc = crc_bitwise(body, strlen(body));
		memcpy(sum, &crc, 4);
		hex(sum, 4, h);
	} else if (strcmp(algo, "SHA256") == 0) {
		EVP_Digest(body, strlen(body), sum, &len, EVP_sha256(), NULL);
		hex(sum, len, h);
	}
	t = xasprintf("%s%s{ \"Path\": \"%s\", \"Size\": %zu, \"Last-Modified\": "
		      "\"2026-12-08 02:00:00 GMT\"%s%s%s%s%s }\n", *text,
		      strchr(*text, '{') == strrchr(*text, '{') ? "" : ",", path, strlen(body),
		      *algo ? ", \"Checksum-Algorithm\": \"" : "", algo,
		      *algo ? "\", \"Checksum\": \"" : "", h, *algo ? "\"" : "");
	free(*text);
	*text = t;
}

/* The manifest, its last line the SHA-256 of what precedes it. */
static void write_manifest(const char *body_tail, int damage)
{
	char *text = xstrdup("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n");
	char *t, h[65];
	unsigned char sum[32];
	unsigned int len = 0;

	entry(&text, "backup_label", "START WAL LOCATION: 0/2000028\n", "CRC32C");
	entry(&text, "PG_VERSION", "15\n", "SHA256");
	entry(&text, "base/1/1234", "table data, eight kB pages\n", "CRC32C");
	entry(&text, "base/1/1235", "an index\n", "SHA256");
	entry(&text, "global/pg_control", "control\n", "CRC32C");
	entry(&text, "pg_tblspc/16400/PG_15_1/5/16401", "tablespace rows\n", "SHA256");
	entry(&text, "postgresql.auto.conf", "# changed by restore later\n", "CRC32C");
	entry(&text, "tablespace_map", "16400 /old/place\n", "CRC32C");
	entry(&text, "no_checksum", "x\n", "");
	t = xasprintf("%s%s],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", "
		      "\"End-LSN\": \"0/2000100\" }\n],\n", text, body_tail);
	free(text);
	EVP_Digest(t, strlen(t), sum, &len, EVP_sha256(), NULL);
	hex(sum, 32, h);
	if (damage)
		t[strlen(t) / 2] ^= 1;
	text = xasprintf("%s\"Manifest-Checksum\": \"%s\"}\n", t, h);
	put(data, "backup_manifest", text);
	free(t);
	free(text);
}

static void make_tree(void)
{
	char cmd[512], link[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s/data %s/spc", base, base);
	if (system(cmd) != 0)
		bail_out("cannot clean", base);
	mkdir(data, 0700);
	mkdir(spc, 0700);
	put(data, "backup_label", "START WAL LOCATION: 0/2000028\n");
	put(data, "PG_VERSION", "15\n");
	put(data, "base/1/1234", "table data, eight kB pages\n");
	put(data, "base/1/1235", "an index\n");
	put(data, PENDING, "control\n");
	put(spc, "PG_15_1/5/16401", "tablespace rows\n");
	put(data, "postgresql.auto.conf", "restore_command = 'rewritten'\n");
	put(data, "no_checksum", "y\n");
	put(data, "pg_wal/000000010000000000000002", "WAL fetched later\n");
	put(data, "recovery.signal", "");
	snprintf(link, sizeof(link), "%s/pg_tblspc", data);
	mkdir(link, 0700);
	snprintf(link, sizeof(link), "%s/pg_tblspc/16400", data);
	if (symlink(spc, link) < 0)
		bail_out("cannot link", link);
	write_manifest("", 0);
}

/* Verify, expecting success (want NULL) or an error matching want. */
static void check(const char *want, const char *what)
{
	int fd = open(data, O_RDONLY | O_DIRECTORY), rc;

	pgk_error_clear();
	rc = srvmanifest_verify(fd, data, "B1", PENDING);
	close(fd);
	if (!want) {
		ok(rc == 0, "%s: passes", what);
		if (rc)
			diag("%s", pgk_errmsg());
		return;
	}
	ok(rc < 0, "%s: fails", what);
	ok(strstr(pgk_errmsg(), want) != NULL, "%s: says '%s'", what, want);
	if (!strstr(pgk_errmsg(), want))
		diag("got: %s", pgk_errmsg());
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

int main(void)
{
	char p[256];
	FILE *f;

	test_crc32c();

	snprintf(base, sizeof(base), "/tmp/test_srvmanifest.XXXXXX");
	if (!mkdtemp(base))
		bail_out("mkdtemp:", strerror(errno));
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(spc, sizeof(spc), "%s/spc", base);

	make_tree();
	check(NULL, "a whole directory (tablespace through its link, pg_control withheld, "
		    "skipped files differing, tablespace_map removed)");

	make_tree();
	path_in(p, sizeof(p), data, "base/1/1235");
	unlink(p);
	check("file base/1/1235 in backup B1: missing", "a file removed");

	make_tree();
	put(data, "base/1/1234", "table data, eight kB pages, and more\n");
	check("file base/1/1234 in backup B1: size mismatch (manifest says 27 bytes, found 37)",
	      "a file of the wrong size");

	make_tree();
	put(data, "base/1/1234", "table data, eight kB pageZ\n");
	check("file base/1/1234 in backup B1: checksum mismatch (manifest says ",
	      "a CRC32C file with one byte changed");

	make_tree();
	put(spc, "PG_15_1/5/16401", "tablespace rowz\n");
	check("file pg_tblspc/16400/PG_15_1/5/16401 in backup B1: checksum mismatch",
	      "a SHA256 file in a tablespace with one byte changed");

	make_tree();
	put(data, PENDING, "contro!\n");
	check("file global/pg_control in backup B1: checksum mismatch",
	      "the withheld pg_control, named as the manifest names it");

	make_tree();
	put(data, "base/1/9999", "planted\n");
	check("file base/1/9999 in backup B1: present, but not in the server's manifest",
	      "a file the manifest does not list");

	make_tree();
	put(spc, "PG_15_1/5/77", "planted\n");
	check("file pg_tblspc/16400/PG_15_1/5/77 in backup B1: present, but not",
	      "a file in a tablespace the manifest does not list");

	make_tree();
	put(data, "pg_wal/archive_status/000000010000000000000002.done", "");
	put(data, "standby.signal", "");
	check(NULL, "files only restore or recovery write (pg_wal, standby.signal)");

	make_tree();
	put(data, "tablespace_map", "16400 /old/place\n");
	check(NULL, "tablespace_map left in place, as the server wrote it");
	put(data, "tablespace_map", "16400 /elsewhere\n");
	check("file tablespace_map in backup B1: checksum mismatch", "a tablespace_map changed");

	make_tree();
	write_manifest("", 1);
	check("backup B1: the server's backup_manifest is damaged: checksum mismatch "
	      "(manifest says ", "a manifest whose text does not match its checksum");

	make_tree();
	path_in(p, sizeof(p), data, "backup_manifest");
	f = fopen(p, "a");
	fputs("trailing\n", f);
	fclose(f);
	check("the server's backup_manifest has text after its JSON object",
	      "text after the manifest");

	make_tree();
	write_manifest(",\n{ \"Path\": \"../escape\", \"Size\": 1 }\n", 0);
	check("names an unsafe path '../escape'", "a manifest naming a path outside the directory");

	make_tree();
	path_in(p, sizeof(p), data, "backup_manifest");
	unlink(p);
	check(NULL, "a directory without backup_manifest (an older backup)");

	snprintf(p, sizeof(p), "rm -rf %s", base);
	if (system(p) != 0)
		diag("cannot remove %s", base);
	return done_testing();
}

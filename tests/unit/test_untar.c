/*
 * Extraction of a base backup's tar and the recovery files written after it:
 * whatever the tar holds (links out, "./" members, loose modes, names planted
 * where the recovery files' temporary names go), nothing outside the data
 * directory is written and the modes are PostgreSQL's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/recovery.h"
#include "pg/untar.h"

static char base[64], data[128], outside[128];

/* ---------------------------------------------------------------- a tar in memory */

struct tar {
	char *buf;
	size_t len;
};

static void tar_member(struct tar *t, const char *name, char type, unsigned mode,
		       const char *link, const char *body)
{
	size_t size = body ? strlen(body) : 0, padded = (size + 511) / 512 * 512, i;
	unsigned char h[512];
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", (unsigned)getuid());
	snprintf((char *)h + 116, 8, "%07o", (unsigned)getgid());
	snprintf((char *)h + 124, 12, "%011o", (unsigned)size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000u);
	h[156] = (unsigned char)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	t->buf = xrealloc(t->buf, t->len + 512 + padded);
	memcpy(t->buf + t->len, h, 512);
	memset(t->buf + t->len + 512, 0, padded);
	if (size)
		memcpy(t->buf + t->len + 512, body, size);
	t->len += 512 + padded;
}

/* Extract t into data; the first failure's code, its message in err. */
static int extract(struct tar *t, char *err, size_t errlen)
{
	struct archive_entry *e;
	struct archive *in;
	struct untar u;
	int rc, r;

	t->buf = xrealloc(t->buf, t->len + 1024);
	memset(t->buf + t->len, 0, 1024);
	if (libarchive_read_new(&in) < 0)
		return -1000;
	archive_read_support_format_tar(in);
	archive_read_open_memory(in, t->buf, t->len + 1024);
	rc = untar_open(&u, data);
	while (rc == 0 && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK)
		rc = untar_entry(&u, in, e, NULL);
	snprintf(err, errlen, "%s", rc < 0 ? u.err : "");
	if (rc == 0)
		rc = untar_check_root(&u);
	untar_close(&u);
	archive_read_free(in);
	free(t->buf);
	t->buf = NULL;
	t->len = 0;
	return rc;
}

static unsigned mode_of(const char *rel)
{
	char *p = xasprintf("%s/%s", data, rel);
	struct stat st;
	unsigned m = 07777 + 1;

	if (lstat(p, &st) == 0)
		m = st.st_mode & 07777;
	free(p);
	return m;
}

static bool exists(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	bool yes = lstat(p, &st) == 0;

	free(p);
	return yes;
}

static char *slurp(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel), buf[4096];
	ssize_t n = -1;
	int fd = open(p, O_RDONLY);

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	free(p);
	buf[n < 0 ? 0 : n] = '\0';
	return xstrdup(buf);
}

static void put(const char *dir, const char *rel, const char *text)
{
	char *p = xasprintf("%s/%s", dir, rel);
	FILE *f = fopen(p, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(p);
}

static void fresh_data(void)
{
	char *cmd = xasprintf("rm -rf '%s' && mkdir -m 0700 '%s'", data, data);

	if (system(cmd) != 0)
		printf("# %s failed\n", cmd);
	free(cmd);
}

static bool outside_intact(void)
{
	char *v = slurp(outside, "victim");
	bool same = strcmp(v, "precious\n") == 0;
	char *p = xasprintf("%s/planted", outside);

	free(v);
	same = same && access(p, F_OK) < 0;
	free(p);
	return same;
}

/* ---------------------------------------------------------------- names and links */

static void test_names(void)
{
	ok(untar_name_safe("base/1/1259"), "a relative name is safe");
	ok(untar_name_safe("pg_wal/archive_status/"), "a directory's trailing slash is fine");
	ok(untar_name_safe("./pg_wal/archive_status/"), "so is PostgreSQL's leading ./");
	ok(!untar_name_safe("./"), "./ is not: it is the data directory itself");
	ok(!untar_name_safe("."), ". is not");
	ok(!untar_name_safe(""), "an empty name is not");
	ok(!untar_name_safe("/etc/passwd"), "an absolute name is not");
	ok(!untar_name_safe("../x") && !untar_name_safe("base/../../x"), ".. is not");
	ok(!untar_name_safe("base/./1") && !untar_name_safe("base//1"),
	   "neither are . or empty components inside");
	ok(!untar_name_safe("base//"), "nor two trailing slashes");

	ok(untar_link_allowed("pg_wal", "wal_real"), "pg_wal may point inside");
	ok(untar_link_allowed("pg_tblspc/16384", "../spc/16384"),
	   "a tablespace link may point inside by ../");
	ok(!untar_link_allowed("pg_tblspc/16384", "/srv/spc"),
	   "an absolute tablespace link is refused");
	ok(!untar_link_allowed("pg_tblspc/16384", "../../x"), "so is one climbing out");
	ok(!untar_link_allowed("pg_wal", "../x"), "pg_wal cannot climb out either");
	ok(!untar_link_allowed("pg_tblspc/16384", "../spc/../../x"), "nor by a later ..");
	ok(!untar_link_allowed("pg_tblspc/abc", "../spc"), "pg_tblspc/ holds OIDs only");
	ok(!untar_link_allowed(".postgresql.auto.conf.pgkeep-tmp", "x"),
	   "no other name may be a link");
	ok(!untar_link_allowed("base/1/pg_wal", "x"), "not even pg_wal elsewhere");
}

/* ---------------------------------------------------------------- extraction */

static void test_modes(void)
{
	struct tar t = { 0 };
	char err[1024];

	fresh_data();
	tar_member(&t, "backup_label", '0', 0777, NULL, "START WAL LOCATION: 0/2000028\n");
	tar_member(&t, "base/", '5', 0777, NULL, NULL);
	tar_member(&t, "base/1/", '5', 0777, NULL, NULL);
	tar_member(&t, "base/1/1259", '0', 0777, NULL, "page");
	tar_member(&t, "./pg_wal/archive_status/", '5', 0755, NULL, NULL);
	tar_member(&t, "global/pg_control", '0', 04755, NULL, "control");
	is_int(extract(&t, err, sizeof(err)), 0, "a tar with loose modes extracts (%s)", err);
	is_int(mode_of("backup_label"), 0600, "a 0777 file becomes 0600");
	is_int(mode_of("base/1/1259"), 0600, "... at any depth");
	is_int(mode_of("global/pg_control"), 0600, "a setuid file becomes 0600");
	is_int(mode_of("base"), 0700, "a 0777 directory becomes 0700");
	is_int(mode_of("pg_wal"), 0700, "a directory made for a member's parent is 0700");
	is_int(mode_of("."), 0700, "the data directory stays 0700");
	ok(exists(data, "pg_wal/archive_status"), "PostgreSQL's ./ names land inside");
}

static void test_refused(const char *what, const char *name, char type, const char *link,
			 const char *want)
{
	struct tar t = { 0 };
	char err[1024];
	int rc;

	fresh_data();
	tar_member(&t, "PG_VERSION", '0', 0600, NULL, "15\n");
	tar_member(&t, name, type, 0777, link, type == '0' ? "planted\n" : NULL);
	tar_member(&t, "escape/planted", '0', 0644, NULL, "planted\n");
	rc = extract(&t, err, sizeof(err));
	ok(rc < 0 && strstr(err, want), "%s is refused (%s)", what, err);
	ok(outside_intact(), "... and nothing outside the data directory changed");
	is_int(mode_of("."), 0700, "... and the data directory is 0700");
}

static void test_links(void)
{
	struct tar t = { 0 };
	char err[1024], *abs = xasprintf("%s/victim", outside);

	test_refused("a ./ member with mode 0777", "./", '5', NULL, "unsafe path './'");
	test_refused("a . member", ".", '5', NULL, "unsafe path '.'");
	test_refused("a link climbing out", "escape", '2', "../outside", "symbolic link escape");
	test_refused("a link at the recovery file's temporary name",
		     ".postgresql.auto.conf.pgkeep-tmp", '2', abs, "symbolic link");
	test_refused("an absolute tablespace link", "pg_tblspc/16384", '2', outside,
		     "leads outside");
	test_refused("a hard link", "escape", '1', "PG_VERSION", "hard link");
	test_refused("a FIFO", "escape", '6', NULL, "not a file");

	/* A link PostgreSQL could make, inside: created, but never extracted through. */
	fresh_data();
	tar_member(&t, "spc/", '5', 0700, NULL, NULL);
	tar_member(&t, "pg_tblspc/16384", '2', 0777, "../spc", NULL);
	tar_member(&t, "pg_tblspc/16384/planted", '0', 0600, NULL, "x\n");
	ok(extract(&t, err, sizeof(err)) < 0 && strstr(err, "pg_tblspc/16384"),
	   "a member under a link is refused (%s)", err);
	ok(!exists(data, "spc/planted"), "... and not written where the link points");

	/* A file over a link planted earlier in the stream replaces the link. */
	fresh_data();
	tar_member(&t, "pg_wal", '2', 0777, "spc", NULL);
	tar_member(&t, "pg_wal", '0', 0600, NULL, "over\n");
	is_int(extract(&t, err, sizeof(err)), 0, "a file given after a link of the same name (%s)",
	       err);
	ok(outside_intact() && mode_of("pg_wal") == 0600, "... replaces the link");
	free(abs);
}

/* ---------------------------------------------------------------- recovery files */

static int write_recovery(void)
{
	struct recovery_settings rs = { 0 };
	int fd = open(data, O_RDONLY | O_DIRECTORY), rc;

	rs.restore_command = "pgkeep wal-fetch %f %p";
	rs.comment = "test";
	rc = recovery_write(fd, data, &rs);
	close(fd);
	return rc;
}

static void plant(const char *rel, const char *target)
{
	char *p = xasprintf("%s/%s", data, rel);

	if (symlink(target, p) < 0)
		printf("# symlink %s: %s\n", p, strerror(errno));
	free(p);
}

static void test_recovery_files(void)
{
	char *victim = xasprintf("%s/victim", outside), *conf;

	fresh_data();
	put(data, "postgresql.auto.conf", "work_mem = '1MB'\n");
	plant(".postgresql.auto.conf.pgkeep-tmp", victim);
	plant(".recovery.signal.pgkeep-tmp", victim);
	is_int(write_recovery(), 0, "recovery files are written beside planted temporary names (%s)",
	       pgk_errmsg());
	ok(outside_intact(), "the file the temporary names pointed at is untouched");
	conf = slurp(data, "postgresql.auto.conf");
	ok(strstr(conf, "work_mem") && strstr(conf, "restore_command"),
	   "postgresql.auto.conf holds the backup's settings and ours");
	free(conf);
	is_int(mode_of("postgresql.auto.conf"), 0600, "postgresql.auto.conf is a 0600 file");
	is_int(mode_of("recovery.signal"), 0600, "recovery.signal is a 0600 file");

	fresh_data();
	plant("postgresql.auto.conf", victim);
	is_int(write_recovery(), PGKEEP_EIO, "a postgresql.auto.conf that is a link is refused");
	ok(strstr(pgk_errmsg(), "symbolic link"), "... saying so (%s)", pgk_errmsg());
	ok(outside_intact(), "... and what it points at is untouched");

	fresh_data();
	plant("recovery.signal", victim);
	is_int(write_recovery(), 0, "a recovery.signal link is replaced");
	ok(outside_intact() && mode_of("recovery.signal") == 0600,
	   "... by a file, not written through");
	free(victim);
}

int main(void)
{
	char *cmd;

	snprintf(base, sizeof(base), "/tmp/pgkeep-untar.XXXXXX");
	if (!mkdtemp(base))
		return 1;
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	mkdir(outside, 0700);
	put(outside, "victim", "precious\n");
	umask(022);
	test_names();
	if (libarchive_load() < 0) {
		ok(0, "libarchive loads: %s", pgk_errmsg());
	} else {
		test_modes();
		test_links();
	}
	test_recovery_files();
	cmd = xasprintf("rm -rf '%s'", base);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", base);
	free(cmd);
	return done_testing();
}

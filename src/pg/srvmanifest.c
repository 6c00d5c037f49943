/*
 * Verification of a restored base backup against the server's own
 * backup_manifest (see srvmanifest.h).  The checks and the files skipped are
 * pg_verifybackup's, so a restore that passes here passes there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/crc32c.h"
#include "pg/srvmanifest.h"
#include "pg/untar.h"

#define MANIFEST_NAME "backup_manifest"
#define MANIFEST_MAX ((size_t)1 << 30)
#define CONTROL_FILE "global/pg_control"
#define READ_BUF (1024 * 1024)
#define CKSUM_MAX 64		/* SHA-512 */

/* pg_verifybackup's default ignore list: restore or recovery may write these. */
static const char *const ignored[] = {
	"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal",
	"standby.signal",
};

enum algo { ALGO_NONE, ALGO_CRC32C, ALGO_SHA };

struct entry {
	char *path;
	uint64_t size;
	enum algo algo;
	const EVP_MD *md;		/* ALGO_SHA */
	unsigned char sum[CKSUM_MAX];
	size_t sumlen;
};

struct check {
	int rootfd;
	const char *root;
	const char *id;
	const char *control_as;
	struct entry *v;
	size_t n;
	unsigned char *buf;
};

/* ---------------------------------------------------------------- reading */

static bool is_ignored(const char *path)
{
	size_t i, n;

	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		n = strlen(ignored[i]);
		if (strncmp(path, ignored[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return true;
	}
	return false;
}

static int read_manifest(struct check *c, char **text, size_t *len)
{
	struct stat st;
	ssize_t r;
	size_t got = 0;
	int fd, rc = 0;

	fd = openat(c->rootfd, MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1
				       : pgk_error(PGKEEP_EIO, "cannot open %s/%s: %s", c->root,
						   MANIFEST_NAME, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MANIFEST_MAX) {
		close(fd);
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: %s/%s is not a manifest file",
				 c->id, c->root, MANIFEST_NAME);
	}
	*text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, *text + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = pgk_error(PGKEEP_EIO, "cannot read %s/%s: %s", c->root, MANIFEST_NAME,
				       r < 0 ? strerror(errno) : "it shrank");
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	(*text)[got] = '\0';
	*len = got;
	if (rc < 0)
		free(*text);
	return rc;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Hex text into at most max bytes; the count, or -1. */
static long from_hex(const char *hex, unsigned char *out, size_t max)
{
	size_t n = strlen(hex), i;
	int hi, lo;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		hi = hex_value(hex[2 * i]);
		lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/*
 * The manifest's last line holds its checksum: SHA-256 of everything up to
 * and including the newline before that line (PostgreSQL's parse_manifest.c).
 */
static int check_own_checksum(struct check *c, const char *text, size_t len,
			      const char *claimed)
{
	unsigned char want[32], got[32];
	char got_hex[65];
	size_t i, last = 0, before = 0, lines = 0;
	unsigned int glen = 0;

	for (i = 0; i < len; i++)
		if (text[i] == '\n') {
			lines++;
			before = last;
			last = i;
		}
	if (lines < 2 || last != len - 1)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s does not end in "
				 "its checksum line", c->id, MANIFEST_NAME);
	if (from_hex(claimed, want, sizeof(want)) != (long)sizeof(want))
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s has a malformed "
				 "Manifest-Checksum '%s'", c->id, MANIFEST_NAME, claimed);
	if (!EVP_Digest(text, before + 1, got, &glen, EVP_sha256(), NULL) || glen != 32)
		return pgk_error(PGKEEP_EIO, "cannot compute a SHA-256");
	if (memcmp(want, got, sizeof(got)) != 0) {
		to_hex(got, sizeof(got), got_hex);
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s is damaged: "
				 "checksum mismatch (manifest says %s, found %s)", c->id,
				 MANIFEST_NAME, claimed, got_hex);
	}
	return 0;
}

/* ---------------------------------------------------------------- parsing */

static const char *get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int bad_entry(struct check *c, size_t i, const char *why)
{
	return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s: file %zu %s", c->id,
			 MANIFEST_NAME, i + 1, why);
}

/* "Path", or "Encoded-Path" (hex) for a name that is not valid UTF-8. */
static int entry_path(struct check *c, struct json_object *f, size_t i, struct entry *e)
{
	const char *p = get_string(f, "Path"), *enc = get_string(f, "Encoded-Path");
	long n;

	if (p) {
		e->path = xstrdup(p);
	} else if (enc) {
		e->path = xmalloc(strlen(enc) / 2 + 1);
		n = from_hex(enc, (unsigned char *)e->path, strlen(enc) / 2);
		if (n < 0)
			return bad_entry(c, i, "has a malformed Encoded-Path");
		e->path[n] = '\0';
		if (strlen(e->path) != (size_t)n)
			return bad_entry(c, i, "has a NUL in its Encoded-Path");
	} else {
		return bad_entry(c, i, "has no Path");
	}
	if (!untar_name_safe(e->path) || untar_strip(e->path) != e->path ||
	    e->path[strlen(e->path) - 1] == '/')
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s names an unsafe "
				 "path '%s'", c->id, MANIFEST_NAME, e->path);
	return 0;
}

static int entry_checksum(struct check *c, struct json_object *f, struct entry *e)
{
	const char *alg = get_string(f, "Checksum-Algorithm"), *sum = get_string(f, "Checksum");
	long n;

	if (!alg || strcmp(alg, "NONE") == 0) {
		e->algo = ALGO_NONE;
		return 0;
	}
	if (strcmp(alg, "CRC32C") == 0) {
		e->algo = ALGO_CRC32C;
	} else if (strncmp(alg, "SHA", 3) == 0 &&
		   (strcmp(alg + 3, "224") == 0 || strcmp(alg + 3, "256") == 0 ||
		    strcmp(alg + 3, "384") == 0 || strcmp(alg + 3, "512") == 0)) {
		e->algo = ALGO_SHA;
		e->md = EVP_get_digestbyname(alg);
		if (!e->md)
			return pgk_error(PGKEEP_EIO, "OpenSSL offers no %s", alg);
	} else {
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: file %s: the server's %s names an "
				 "unknown checksum algorithm '%s'", c->id, e->path, MANIFEST_NAME,
				 alg);
	}
	n = sum ? from_hex(sum, e->sum, sizeof(e->sum)) : -1;
	if (n != (long)(e->algo == ALGO_CRC32C ? 4 : EVP_MD_get_size(e->md)))
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: file %s: the server's %s gives a "
				 "malformed %s checksum", c->id, e->path, MANIFEST_NAME, alg);
	e->sumlen = (size_t)n;
	return 0;
}

static int parse_entry(struct check *c, struct json_object *f, size_t i, struct entry *e)
{
	struct json_object *v;
	int rc;

	if (!json_object_is_type(f, json_type_object))
		return bad_entry(c, i, "is not an object");
	rc = entry_path(c, f, i, e);
	if (rc < 0)
		return rc;
	if (!json_object_object_get_ex(f, "Size", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: file %s: the server's %s gives no "
				 "valid Size", c->id, e->path, MANIFEST_NAME);
	e->size = (uint64_t)json_object_get_int64(v);
	return entry_checksum(c, f, e);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static int parse_files(struct check *c, struct json_object *root)
{
	struct json_object *files, *ver;
	size_t i, n;
	int rc;

	if (!json_object_object_get_ex(root, "PostgreSQL-Backup-Manifest-Version", &ver) ||
	    !json_object_is_type(ver, json_type_int) || json_object_get_int64(ver) < 1 ||
	    json_object_get_int64(ver) > 2)
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s has no manifest "
				 "version this pgkeep reads (1 or 2)", c->id, MANIFEST_NAME);
	if (!json_object_object_get_ex(root, "Files", &files) ||
	    !json_object_is_type(files, json_type_array))
		return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s has no Files list",
				 c->id, MANIFEST_NAME);
	n = json_object_array_length(files);
	c->v = xzalloc((n ? n : 1) * sizeof(*c->v));
	for (i = 0; i < n; i++, c->n++) {
		rc = parse_entry(c, json_object_array_get_idx(files, i), i, &c->v[i]);
		if (rc < 0) {
			c->n++;		/* so that its path is freed */
			return rc;
		}
	}
	qsort(c->v, c->n, sizeof(*c->v), cmp_entry);
	for (i = 1; i < c->n; i++)
		if (strcmp(c->v[i - 1].path, c->v[i].path) == 0)
			return pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s lists file %s "
					 "twice", c->id, MANIFEST_NAME, c->v[i].path);
	return 0;
}

static int parse_manifest(struct check *c, const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root;
	const char *claimed;
	size_t end;
	int rc;

	if (!tok)
		return pgk_error(PGKEEP_ENOMEM, "cannot allocate a JSON parser");
	root = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, text, (int)len);
	if (!root || !json_object_is_type(root, json_type_object)) {
		rc = pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s is not a JSON object: "
			       "%s", c->id, MANIFEST_NAME,
			       json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	if (strspn(text + end, " \t\r\n") != len - end) {
		rc = pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s has text after its "
			       "JSON object", c->id, MANIFEST_NAME);
		goto out;
	}
	claimed = get_string(root, "Manifest-Checksum");
	rc = claimed ? check_own_checksum(c, text, len, claimed)
		     : pgk_error(PGKEEP_ECORRUPT, "backup %s: the server's %s has no "
				 "Manifest-Checksum", c->id, MANIFEST_NAME);
	if (rc == 0)
		rc = parse_files(c, root);
out:
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

/* ---------------------------------------------------------------- the files */

/* The file's checksum as the manifest writes it: CRC32C in the server's byte order. */
static int hash_file(struct check *c, int fd, const struct entry *e, unsigned char *out)
{
	EVP_MD_CTX *ctx = NULL;
	uint32_t crc = CRC32C_INIT;
	unsigned int len = 0;
	ssize_t n;
	int rc = 0;

	if (e->algo == ALGO_SHA && (!(ctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(ctx, e->md, NULL)))
		rc = pgk_error(PGKEEP_EIO, "cannot start a checksum");
	while (rc == 0 && (n = read(fd, c->buf, READ_BUF)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = pgk_error(PGKEEP_EIO, "cannot read %s/%s: %s", c->root, e->path,
				       strerror(errno));
		else if (e->algo == ALGO_CRC32C)
			crc = crc32c_update(crc, c->buf, (size_t)n);
		else if (!EVP_DigestUpdate(ctx, c->buf, (size_t)n))
			rc = pgk_error(PGKEEP_EIO, "cannot compute a checksum");
	}
	if (rc == 0 && e->algo == ALGO_CRC32C) {
		crc = crc32c_final(crc);
		memcpy(out, &crc, 4);
	} else if (rc == 0 && !EVP_DigestFinal_ex(ctx, out, &len)) {
		rc = pgk_error(PGKEEP_EIO, "cannot compute a checksum");
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int file_error(struct check *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int file_error(struct check *c, const char *path, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return pgk_error(PGKEEP_ECORRUPT, "file %s in backup %s: %s", path, c->id, why);
}

static int check_entry(struct check *c, const struct entry *e)
{
	const char *ondisk = e->path;
	unsigned char got[CKSUM_MAX];
	char want_hex[2 * CKSUM_MAX + 1], got_hex[2 * CKSUM_MAX + 1];
	struct stat st;
	int fd, rc;

	if (c->control_as && strcmp(e->path, CONTROL_FILE) == 0)
		ondisk = c->control_as;
	fd = openat(c->rootfd, ondisk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && strcmp(e->path, "tablespace_map") == 0)
		return 0;	/* restore wrote the tablespaces' links instead */
	if (fd < 0)
		return errno == ENOENT ? file_error(c, e->path, "missing (the server's manifest "
						    "lists it)")
				       : file_error(c, e->path, "cannot open it: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return file_error(c, e->path, "not a regular file");
	}
	if ((uint64_t)st.st_size != e->size) {
		close(fd);
		return file_error(c, e->path, "size mismatch (manifest says %" PRIu64 " bytes, "
				  "found %" PRIu64 ")", e->size, (uint64_t)st.st_size);
	}
	rc = e->algo == ALGO_NONE ? 0 : hash_file(c, fd, e, got);
	close(fd);
	if (rc < 0 || e->algo == ALGO_NONE || memcmp(got, e->sum, e->sumlen) == 0)
		return rc;
	to_hex(e->sum, e->sumlen, want_hex);
	to_hex(got, e->sumlen, got_hex);
	return file_error(c, e->path, "checksum mismatch (manifest says %s, found %s)", want_hex,
			  got_hex);
}

static bool listed(const struct check *c, const char *path)
{
	struct entry key = { .path = (char *)path };

	return bsearch(&key, c->v, c->n, sizeof(*c->v), cmp_entry) != NULL;
}

/* Every regular file under rel (NULL: the root) is listed, unless skipped. */
static int check_extra(struct check *c, const char *rel)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char *path;
	const char *name;
	int fd, rc = 0;

	fd = openat(c->rootfd, rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return pgk_error(PGKEEP_EIO, "cannot read directory %s/%s: %s", c->root,
				 rel ? rel : ".", strerror(errno));
	}
	while (rc == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path = rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		name = c->control_as && strcmp(path, c->control_as) == 0 ? CONTROL_FILE : path;
		/*
		 * pg_tblspc/OID links lead to the tablespaces: followed, as
		 * pg_verifybackup does.  What cannot be stat'ed holds no file
		 * the manifest lists unnoticed: check_entry reports those.
		 */
		if (!is_ignored(name) && fstatat(c->rootfd, path, &st, 0) == 0) {
			if (S_ISDIR(st.st_mode))
				rc = check_extra(c, path);
			else if (S_ISREG(st.st_mode) && !listed(c, name))
				rc = file_error(c, name, "present, but not in the server's manifest");
		}
		free(path);
	}
	closedir(d);
	return rc;
}

int srvmanifest_verify(int rootfd, const char *root, const char *backup_id,
		       const char *control_as)
{
	struct check c = { .rootfd = rootfd, .root = root, .id = backup_id,
			   .control_as = control_as };
	char *text = NULL;
	size_t len = 0, i;
	int rc;

	rc = read_manifest(&c, &text, &len);
	if (rc > 0) {
		pgk_log_info("backup %s has no server manifest to verify against", backup_id);
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = parse_manifest(&c, text, len);
	free(text);
	c.buf = xmalloc(READ_BUF);
	for (i = 0; rc == 0 && i < c.n; i++)
		if (!is_ignored(c.v[i].path))
			rc = check_entry(&c, &c.v[i]);
	if (rc == 0)
		rc = check_extra(&c, NULL);
	if (rc == 0)
		pgk_log_info("backup %s: %zu files match the server's manifest", backup_id, c.n);
	for (i = 0; i < c.n; i++)
		free(c.v[i].path);
	free(c.v);
	free(c.buf);
	return rc;
}

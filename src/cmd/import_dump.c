/*
 * import-dump: an existing pg_dump file (plain SQL, compressed or not, or
 * custom format) into the repository as a dump backup, so that a folder of
 * old backup.sql.gz files keeps its history under pgkeep's retention.
 *
 * Plain SQL is stored decompressed: the chunker then dedups it against other
 * imports and zstd compresses it.  A custom-format archive is stored byte for
 * byte, because pg_restore reads it; when pg_dump compressed it internally,
 * dedup between two such dumps is weak.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_id.h"
#include "cmd/backup_util.h"
#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "common/progress.h"
#include "pg/libarchive_api.h"
#include "pipeline/pipeline.h"
#include "repo/lock.h"
#include "repo/manifest.h"

#define READ_BUF (1024 * 1024)
/* Enough to hold a plain dump's header comments and a custom header. */
#define HEAD_LEN (64 * 1024)
#define LOCK_WAIT 60

struct import_opts {
	const char *file;
	const char *db;
	const char *label;
	bool have_time;
	struct parse_time time;
	enum progress_mode progress;
};

/* The file's bytes, through a decompressor when it is compressed. */
struct dump_reader {
	int fd;
	struct archive *a;	/* NULL: read fd directly */
	const char *compression; /* "gzip", ... or NULL */
	const char *path;
};

/* What the first bytes tell. */
struct dump_head {
	const char *format;	/* "custom" or "sql" */
	char *dbname;		/* from a custom header */
	int pg_version;		/* server_version_num of the dumped server, 0: unknown */
	int64_t created;	/* custom header's creation time, 0: unknown */
	bool compressed;	/* custom: compressed by pg_dump */
};

/* ---------------------------------------------------------------- reading */

static const struct {
	const char *name;
	const unsigned char magic[6];
	size_t len;
	int filter;		/* ARCHIVE_FILTER_*: a code, as libarchive is loaded late */
} codecs[] = {
	{ "gzip", { 0x1f, 0x8b }, 2, ARCHIVE_FILTER_GZIP },
	{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, ARCHIVE_FILTER_ZSTD },
	{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6, ARCHIVE_FILTER_XZ },
	{ "bzip2", { 'B', 'Z', 'h' }, 3, ARCHIVE_FILTER_BZIP2 },
};

static int reader_open(struct dump_reader *rd, const char *path)
{
	unsigned char magic[6] = { 0 };
	struct archive_entry *e;
	struct stat st;
	ssize_t n;
	size_t i;
	int rc;

	memset(rd, 0, sizeof(*rd));
	rd->path = path;
	rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(rd->fd, &st) == 0 && S_ISDIR(st.st_mode))
		return pgk_error(PGKEEP_EINVAL, "%s is a directory: directory-format dumps "
				 "(pg_dump -Fd) cannot be imported; convert it with pg_restore "
				 "-f FILE.sql %s, or dump again with -Fc", path, path);
	n = pread(rd->fd, magic, sizeof(magic), 0);
	if (n < 0)
		return pgk_error(PGKEEP_EIO, "cannot read %s: %s", path, strerror(errno));
	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if ((size_t)n >= codecs[i].len && memcmp(magic, codecs[i].magic, codecs[i].len) == 0)
			break;
	if (i == sizeof(codecs) / sizeof(codecs[0]))
		return 0;
	rd->compression = codecs[i].name;
	rc = libarchive_read_new(&rd->a);
	if (rc < 0)
		return rc;
	archive_read_support_filter_by_code(rd->a, codecs[i].filter);
	/* Raw: a compressed single file, not an archive of files. */
	archive_read_support_format_raw(rd->a);
	if (archive_read_open_fd(rd->a, rd->fd, 256 * 1024) != ARCHIVE_OK ||
	    archive_read_next_header(rd->a, &e) != ARCHIVE_OK)
		return pgk_error(PGKEEP_EINVAL, "%s looks %s-compressed but cannot be read: %s",
				 path, rd->compression, archive_error_string(rd->a) ?
				 archive_error_string(rd->a) : "unknown error");
	return 0;
}

static void reader_close(struct dump_reader *rd)
{
	if (rd->a)
		archive_read_free(rd->a);
	if (rd->fd >= 0)
		close(rd->fd);
}

/* Up to len bytes; 0 at the end. */
static ssize_t reader_read(struct dump_reader *rd, void *buf, size_t len, int *rc)
{
	ssize_t n;

	if (rd->a) {
		n = archive_read_data(rd->a, buf, len);
		if (n < 0)
			*rc = pgk_error(PGKEEP_EIO, "cannot decompress %s (%s): %s", rd->path,
					rd->compression, archive_error_string(rd->a));
		return n;
	}
	do
		n = read(rd->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		*rc = pgk_error(PGKEEP_EIO, "cannot read %s: %s", rd->path, strerror(errno));
	return n;
}

/* Bytes of the file consumed so far: what the progress line counts, since
 * only the file's size is known in advance. */
static uint64_t reader_position(struct dump_reader *rd)
{
	off_t pos;

	if (rd->a)
		return (uint64_t)archive_filter_bytes(rd->a, -1);
	pos = lseek(rd->fd, 0, SEEK_CUR);
	return pos > 0 ? (uint64_t)pos : 0;
}

/* Fill buf as far as the stream goes (a short read is not the end). */
static ssize_t reader_fill(struct dump_reader *rd, uint8_t *buf, size_t len, int *rc)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = reader_read(rd, buf + got, len - got, rc);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---------------------------------------------------------------- recognising a dump */

/* "15.4 (Debian 15.4-1)" -> 150004; "9.6.24" -> 90624; 0 when unreadable. */
static int version_num(const char *v)
{
	int a = 0, b = 0, c = 0, n;

	n = sscanf(v, "%d.%d.%d", &a, &b, &c);
	if (n < 2 || a <= 0)
		return 0;
	return a >= 10 ? a * 10000 + b : a * 10000 + b * 100 + (n == 3 ? c : 0);
}

/*
 * The custom format's header, as pg_dump writes it (pg_backup_archiver.c
 * WriteHead): "PGDMP", version bytes, int and offset sizes, format, the
 * compression, the creation time as seven ints, then the database name and
 * the server and pg_dump versions as length-prefixed strings.  An int is a
 * sign byte and intSize little-endian bytes.
 */
struct cursor {
	const uint8_t *p, *end;
	int int_size;
	bool bad;
};

static int read_byte(struct cursor *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

static int64_t read_int(struct cursor *c)
{
	int sign = read_byte(c), i;
	uint64_t v = 0;

	for (i = 0; i < c->int_size; i++)
		v |= (uint64_t)read_byte(c) << (8 * i);
	if (c->int_size < 1 || c->int_size > 8 || v > INT32_MAX)
		c->bad = true;
	return sign ? -(int64_t)v : (int64_t)v;
}

static char *read_str(struct cursor *c)
{
	int64_t len = read_int(c);
	char *s;

	if (c->bad || len < 0 || len > c->end - c->p)
		return NULL;
	s = xstrndup((const char *)c->p, (size_t)len);
	c->p += len;
	return s;
}

static void parse_custom(struct dump_head *h, const uint8_t *buf, size_t len)
{
	struct cursor c = { buf + 5, buf + len, 0, false };
	int vmaj, vmin, vrev, i;
	int64_t t[7];
	char *remote, *dumper;
	struct tm tm;

	h->format = "custom";
	vmaj = read_byte(&c);
	vmin = read_byte(&c);
	vrev = vmaj > 1 || (vmaj == 1 && vmin > 0) ? read_byte(&c) : 0;
	c.int_size = read_byte(&c);
	read_byte(&c);			/* offset size */
	read_byte(&c);			/* format: 1 = custom */
	/* Archive 1.15 (PostgreSQL 16) names an algorithm; older ones a level. */
	if (vmaj == 1 && vmin >= 15)
		h->compressed = read_byte(&c) != 0;
	else
		h->compressed = read_int(&c) != 0;
	for (i = 0; i < 7; i++)
		t[i] = read_int(&c);
	h->dbname = read_str(&c);
	remote = read_str(&c);
	dumper = read_str(&c);
	if (c.bad || vmaj != 1 || vmin < 10) {
		pgk_log_debug("custom-format header version %d.%d.%d not read further",
			      vmaj, vmin, vrev);
		free(h->dbname);
		h->dbname = NULL;
	} else {
		memset(&tm, 0, sizeof(tm));
		tm.tm_sec = (int)t[0];
		tm.tm_min = (int)t[1];
		tm.tm_hour = (int)t[2];
		tm.tm_mday = (int)t[3];
		tm.tm_mon = (int)t[4];
		tm.tm_year = (int)t[5];
		tm.tm_isdst = (int)t[6];
		/* pg_dump wrote its local time; so do we read it. */
		h->created = (int64_t)mktime(&tm);
		if (h->created < 0)
			h->created = 0;
		h->pg_version = remote ? version_num(remote) : 0;
	}
	free(remote);
	free(dumper);
}

static const char *find_text(const uint8_t *buf, size_t len, const char *needle)
{
	return memmem(buf, len, needle, strlen(needle));
}

/* Plain dumps open with comments pg_dump always writes. */
static bool parse_sql(struct dump_head *h, const uint8_t *buf, size_t len)
{
	const char *v;

	if (!find_text(buf, len, "-- PostgreSQL database dump") &&
	    !find_text(buf, len, "-- PostgreSQL database cluster dump"))
		return false;
	if (memchr(buf, '\0', len))
		return false;
	h->format = "sql";
	v = find_text(buf, len, "-- Dumped from database version ");
	if (v) {
		char line[64];
		size_t off = (size_t)(v - (const char *)buf) + strlen("-- Dumped from database version ");

		snprintf(line, sizeof(line), "%.*s", (int)(len - off < 63 ? len - off : 63),
			 (const char *)buf + off);
		h->pg_version = version_num(line);
	}
	return true;
}

static int classify(struct dump_head *h, const struct dump_reader *rd, const uint8_t *buf,
		    size_t len)
{
	memset(h, 0, sizeof(*h));
	if (len >= 5 && memcmp(buf, "PGDMP", 5) == 0) {
		parse_custom(h, buf, len);
		return 0;
	}
	if (parse_sql(h, buf, len))
		return 0;
	if (len > 262 && memcmp(buf + 257, "ustar", 5) == 0)
		return pgk_error(PGKEEP_EINVAL, "%s is a tar archive: tar-format dumps (pg_dump "
				 "-Ft) cannot be imported; convert it with pg_restore -f FILE.sql, "
				 "or dump again with -Fc", rd->path);
	return pgk_error(PGKEEP_EINVAL,
			 "%s%s%s%s is not a pg_dump file: neither a custom-format archive "
			 "(starting PGDMP) nor a plain SQL dump (with pg_dump's '-- PostgreSQL "
			 "database dump' header)", rd->path, rd->compression ? " (" : "",
			 rd->compression ? rd->compression : "",
			 rd->compression ? "-decompressed)" : "");
}

/* ---------------------------------------------------------------- into the repository */

struct import_run {
	struct pgk_config cfg;
	struct repo *repo;
	struct manifest m;
	struct manifest ref;		/* the newest dump of the database, for deltas */
	bool have_ref;
	int jobs;
	struct progress *progress;
	uint64_t file_size;
};

static int copy_stream(struct import_run *ir, struct dump_reader *rd, const uint8_t *head,
		       size_t head_len, const char *stream_name)
{
	struct manifest_stream *s = manifest_add_stream(&ir->m, stream_name);
	struct stream_writer *w = NULL;
	uint64_t done = 0, pos;
	uint8_t *buf;
	ssize_t n;
	int rc;

	rc = stream_writer_open(&w, ir->repo, s,
				backup_ref_stream(ir->have_ref ? &ir->ref : NULL, stream_name),
				ir->jobs);
	if (rc < 0)
		return rc;
	progress_start(ir->progress, ir->file_size);
	rc = stream_writer_write(w, head, head_len);
	buf = xmalloc(READ_BUF);
	while (rc == 0) {
		pos = reader_position(rd);
		progress_add(ir->progress, pos > done ? pos - done : 0);
		done = pos > done ? pos : done;
		n = reader_read(rd, buf, READ_BUF, &rc);
		if (n <= 0)
			break;
		rc = stream_writer_write(w, buf, (size_t)n);
	}
	pos = reader_position(rd);
	progress_add(ir->progress, pos > done ? pos - done : 0);
	free(buf);
	if (rc == 0)
		rc = stream_writer_finish(w);
	stream_writer_free(w);
	return rc;
}

static void fill_manifest(struct import_run *ir, const struct import_opts *o,
			  struct dump_head *h, int64_t mtime)
{
	struct manifest *m = &ir->m;

	m->type = BACKUP_DUMP;
	/* Not read from a cluster: 0 says so (copy and verify accept it). */
	m->sysid = 0;
	m->pg_version = h->pg_version;
	m->start_time = o->have_time ? o->time.sec : h->created ? h->created : mtime;
	m->stop_time = m->start_time;
	m->format = xstrdup(h->format);
	m->dbname = xstrdup(o->db ? o->db : h->dbname ? h->dbname : "unknown");
	m->label = xstrdup(o->label ? o->label : "imported");
}

static int run_import(struct import_run *ir, const struct import_opts *o)
{
	struct repo_lock *lock = NULL;
	struct dump_reader rd;
	struct dump_head h = { 0 };
	struct stat st;
	uint8_t *head = xmalloc(HEAD_LEN);
	ssize_t len;
	char *stream;
	int rc = 0, attempt;

	rc = reader_open(&rd, o->file);
	if (rc < 0)
		goto out_reader;
	len = reader_fill(&rd, head, HEAD_LEN, &rc);
	if (len < 0)
		goto out_reader;
	rc = classify(&h, &rd, head, (size_t)len);
	if (rc < 0)
		goto out_reader;
	if (h.compressed)
		pgk_log_warning("%s is compressed by pg_dump: stored as is, so it dedups poorly "
				"against other dumps (pg_dump -Fc -Z 0 avoids that)", o->file);
	fstat(rd.fd, &st);
	ir->file_size = (uint64_t)st.st_size;
	fill_manifest(ir, o, &h, (int64_t)st.st_mtime);
	/* Shared: expire must not collect the chunks of an import in progress. */
	rc = lock_acquire(&lock, ir->repo, LOCK_SHARED, "import-dump", LOCK_WAIT);
	if (rc < 0)
		goto out_reader;
	attempt = backup_id_choose(ir->repo, &ir->m, 0);
	if (attempt < 0) {
		rc = attempt;
		goto out_lock;
	}
	rc = backup_reference(ir->repo, &ir->m, &ir->ref);
	if (rc < 0)
		goto out_lock;
	ir->have_ref = rc > 0;
	stream = xasprintf("%s.%s", ir->m.dbname, strcmp(h.format, "sql") == 0 ? "sql" : "dump");
	rc = copy_stream(ir, &rd, head, (size_t)len, stream);
	free(stream);
	if (rc == 0)
		rc = backup_id_save_manifest(ir->repo, &ir->m, attempt);
out_lock:
	lock_release(lock);
	manifest_free(&ir->ref);
out_reader:
	if (rc < 0)
		pgk_error_wrap(rc, "import of %s failed", o->file);
	reader_close(&rd);
	free(h.dbname);
	free(head);
	return rc;
}

/* ---------------------------------------------------------------- the command */

/* 'YYYY-MM-DD HH:MM[:SS]' local time, or with Z / +HH[:MM] / -HH[:MM]. */
static int set_time(void *opts, const char *arg)
{
	struct import_opts *o = opts;

	o->have_time = true;
	return parse_timestamp("--time", arg, &o->time);
}

static const struct opt_def import_dump_options[] = {
	OPT_STRING_DEF("db", 'd', "NAME", struct import_opts, db,
		       "the database it is a dump of (default: the custom\n"
		       "header's, else unknown)"),
	OPT_CALL_DEF("time", 't', "T", set_time,
		     "when it was taken, 'YYYY-MM-DD HH:MM[:SS]' local time (or\n"
		     "with Z / +HH[:MM]); default: the custom header's, else the\n"
		     "file's modification time"),
	OPT_STRING_DEF("label", 'l', "TEXT", struct import_opts, label,
		       "recorded with the backup (default: imported)"),
	OPT_PROGRESS_DEF(struct import_opts, progress),
	OPT_END,
};

static const struct opt_arg import_dump_args[] = {
	{ "FILE", "plain SQL (gzip, bzip2, xz or zstd compressed or not) or\n"
		  "custom format (pg_dump -Fc)" },
	{ NULL, NULL },
};

const struct opt_spec import_dump_cli = {
	.command = "import-dump",
	.summary = "store an existing pg_dump file as a dump backup",
	.synopsis = "FILE [OPTIONS]",
	.opts = import_dump_options,
	.args = import_dump_args,
	.min_args = 1,
	.max_args = 1,
	.args_error = "name one dump file to import",
};

static int parse_opts(int argc, char **argv, struct import_opts *o)
{
	struct opt_args pos;
	int rc;

	memset(o, 0, sizeof(*o));
	rc = opt_parse(&import_dump_cli, argc, argv, o, &pos);
	if (rc < 0)
		return rc;
	o->file = pos.argv[0];
	if (o->db && (!*o->db || strchr(o->db, '/')))
		return pgk_error(PGKEEP_EINVAL, "--db '%s' is not a database name", o->db);
	if (o->label && strlen(o->label) > 200)
		return pgk_error(PGKEEP_EINVAL, "--label is longer than 200 characters");
	return 0;
}

static void print_summary(const struct import_run *ir, const struct import_opts *o)
{
	char size[32], stored[32], when[32];

	human_size(manifest_size(&ir->m), size, sizeof(size));
	human_size(manifest_stored(&ir->m), stored, sizeof(stored));
	local_time_text(ir->m.stop_time, when, sizeof(when));
	printf("%s\n", ir->m.id);
	printf("imported %s as a %s dump of %s taken %s: %s, %s newly stored\n", o->file,
	       ir->m.format, ir->m.dbname, when, size, stored);
	fflush(stdout);
}

int cmd_import_dump(const struct pgk_globals *g, int argc, char **argv)
{
	struct import_run ir;
	struct import_opts o;
	int rc, status;

	if (parse_opts(argc, argv, &o) < 0)
		return opt_fail(&import_dump_cli);
	memset(&ir, 0, sizeof(ir));
	if (ctx_load_config(g, &ir.cfg) < 0)
		return ctx_fail();
	ir.jobs = ctx_jobs(0, &ir.cfg, backup_default_jobs());
	rc = ctx_open_repo(g, &ir.cfg, &ir.repo);
	if (rc == 0) {
		ir.progress = progress_new(o.progress, "import-dump");
		rc = run_import(&ir, &o);
		progress_finish(ir.progress, rc == 0);
	}
	if (rc == 0)
		print_summary(&ir, &o);
	status = rc < 0 ? ctx_fail() : PGK_EXIT_OK;
	manifest_free(&ir.m);
	repo_close(ir.repo);
	config_free(&ir.cfg);
	return status;
}

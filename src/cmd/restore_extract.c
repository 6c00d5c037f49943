/*
 * restore's extraction: a stream of the backup read through the pipeline
 * into a pipe, and a thread on the other end that hands each tar member to
 * pg/untar.c, so memory stays bounded whatever the size of the backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/restore.h"
#include "common/error.h"
#include "common/log.h"
#include "common/progress.h"
#include "pg/libarchive_api.h"
#include "pg/untar.h"
#include "pipeline/pipeline.h"

/* The pipe to the extraction thread, and what libarchive reads at a time. */
#define EXTRACT_PIPE_SIZE (1024 * 1024)

struct extractor {
	int fd;			/* read end of the pipe */
	struct archive *in;	/* the thread frees it */
	struct untar *u;
	bool data_dir;		/* the data directory's tar: pg_control withheld */
	pthread_t thread;
	int rc;
	char err[1024];
};

static int extract_fail(struct extractor *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int extract_fail(struct extractor *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	x->rc = PGKEEP_EIO;
	return x->rc;
}

static int extract_entry(struct extractor *x, struct archive *in, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	int rc;

	/* Withheld until the end: see the comment atop restore.c. */
	rc = untar_entry(x->u, in, e, x->data_dir && name &&
				      strcmp(untar_strip(name), CONTROL_FILE) == 0
				      ? CONTROL_PENDING : NULL);
	if (rc < 0) {
		snprintf(x->err, sizeof(x->err), "%s", x->u->err);
		x->rc = rc;
	}
	return rc;
}

/* Read what is left after the tar's end marker, so the writer never blocks. */
static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0 || errno == EINTR)
		;
}

static void *extract_main(void *arg)
{
	struct extractor *x = arg;
	struct archive *in = x->in;
	struct archive_entry *e;
	int r;

	if (archive_read_open_fd(in, x->fd, EXTRACT_PIPE_SIZE) != ARCHIVE_OK) {
		extract_fail(x, "cannot read the backup stream: %s", archive_error_string(in));
		goto out;
	}
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		if (extract_entry(x, in, e) < 0)
			goto out;
	}
	if (r != ARCHIVE_EOF)
		extract_fail(x, "the backup's tar stream is damaged: %s",
			     archive_error_string(in));
	else
		drain(x->fd);
out:
	archive_read_free(in);
	/* On failure this makes the writer's next write fail with EPIPE. */
	close(x->fd);
	return NULL;
}

/* The stream being delivered is what the progress line counts towards. */
void restore_sink_progress(struct restore_run *rr, struct fd_sink *sk,
			   const struct manifest_stream *s)
{
	progress_start(rr->progress, s->size);
	sk->progress = rr->progress;
}

int restore_sink_fd(void *payload, const void *buf, size_t len)
{
	struct fd_sink *sk = payload;
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(sk->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sk->failed = true;
			return pgk_error(PGKEEP_EIO, "cannot pass the stream on: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		progress_add(sk->progress, (uint64_t)n);
	}
	return 0;
}

/* Made before the thread starts, so that a libarchive that cannot be loaded
 * is reported like any other error. */
static int extractor_archives(struct extractor *x)
{
	int rc = libarchive_read_new(&x->in);

	if (rc < 0)
		return rc;
	archive_read_support_format_tar(x->in);
	return 0;
}

int restore_extract_stream(struct restore_run *rr, const struct manifest_stream *s,
			   uint64_t total, struct untar *u, bool data_dir)
{
	struct extractor x = { .u = u, .data_dir = data_dir };
	struct fd_sink sk = { -1, false, NULL };
	int fds[2], rc;

	rc = extractor_archives(&x);
	if (rc < 0)
		return rc;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		archive_read_free(x.in);
		return pgk_error(PGKEEP_EIO, "cannot create a pipe: %s", strerror(errno));
	}
	x.fd = fds[0];
#ifdef F_SETPIPE_SZ
	/* Whole chunks pass in a write or two instead of 64 KiB at a time; the
	 * system may refuse, and the default pipe works too. */
	(void)fcntl(fds[1], F_SETPIPE_SZ, EXTRACT_PIPE_SIZE);
#endif
	if (pthread_create(&x.thread, NULL, extract_main, &x) != 0) {
		archive_read_free(x.in);
		close(fds[0]);
		close(fds[1]);
		return pgk_error(PGKEEP_EIO, "cannot start the extraction thread");
	}
	sk.fd = fds[1];
	progress_start(rr->progress, total);
	sk.progress = rr->progress;
	rc = stream_read(rr->repo, s, rr->jobs, restore_sink_fd, &sk);
	close(fds[1]);
	pthread_join(x.thread, NULL);
	/*
	 * A stream error (a missing or damaged chunk) comes first: the extractor
	 * then only saw a truncated tar.  When the extractor failed first, the
	 * pipe broke and its message is the one that explains.
	 */
	if (rc < 0 && !sk.failed)
		return rc;
	if (x.rc < 0)
		return pgk_error(x.rc, "%s", x.err);
	if (rc < 0)
		return rc;
	pgk_log_info("extracted %" PRIu64 " entries into %s", u->entries, u->root);
	return untar_check_root(u);
}

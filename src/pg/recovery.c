/*
 * Writing the recovery settings of a restored data directory.  Earlier
 * recovery settings in the backup's postgresql.auto.conf are dropped rather
 * than overridden: PostgreSQL refuses two different kinds of target, so a
 * stale recovery_target_lsn would break a restore to a time.  Every file is
 * reached through a descriptor of the data directory and never through a
 * symbolic link: the directory's content came from the backup.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/recovery.h"

char *conf_quote(const char *s)
{
	struct pgk_buf b = PGK_BUF_INIT;

	buf_append(&b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			buf_append(&b, "'", 1);
		buf_append(&b, s, 1);
	}
	buf_append(&b, "'", 1);
	return buf_detach(&b);
}

char *shell_quote(const char *s)
{
	struct pgk_buf b = PGK_BUF_INIT;

	buf_append(&b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			buf_append(&b, "'\\''", 4);
		else
			buf_append(&b, s, 1);
	}
	buf_append(&b, "'", 1);
	return buf_detach(&b);
}

const char *recovery_target_setting(enum recovery_target t)
{
	switch (t) {
	case TARGET_TIME: return "recovery_target_time";
	case TARGET_LSN: return "recovery_target_lsn";
	case TARGET_XID: return "recovery_target_xid";
	case TARGET_NAME: return "recovery_target_name";
	case TARGET_IMMEDIATE: return "recovery_target";
	case TARGET_NONE: break;
	}
	return NULL;
}

/* Is this line a setting we replace? */
static bool managed_line(const char *line, bool archive_off)
{
	char key[64];
	size_t n = 0;

	while (*line == ' ' || *line == '\t')
		line++;
	while (n < sizeof(key) - 1 && (isalnum((unsigned char)line[n]) || line[n] == '_' ||
					line[n] == '.')) {
		key[n] = (char)tolower((unsigned char)line[n]);
		n++;
	}
	key[n] = '\0';
	if (n == 0)
		return false;
	return strcmp(key, "restore_command") == 0 ||
	       strncmp(key, "recovery_target", 15) == 0 ||
	       (archive_off && strcmp(key, "archive_mode") == 0);
}

/* A link or a FIFO planted in the backup is refused, never followed or waited on. */
static int read_file(int dirfd, const char *pgdata, const char *name, struct pgk_buf *out)
{
	char tmp[8192];
	struct stat st;
	ssize_t n = 0;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s/%s: %s", pgdata, name,
				 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = pgk_error(PGKEEP_EIO, "%s/%s is not a regular file", pgdata, name);
		goto out_close;
	}
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			buf_append(out, tmp, (size_t)n);
	if (n < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot read %s/%s: %s", pgdata, name, strerror(errno));
out_close:
	close(fd);
	return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A fresh temporary file beside name, renamed over it.  Whatever the
 * temporary name held before (a link planted in the backup, say) is
 * unlinked, never written through; rename replaces a link at name itself.
 */
static int write_atomic(int dirfd, const char *pgdata, const char *name, const void *data,
			size_t len)
{
	char *tmp = xasprintf(".%s.pgkeep-tmp", name);
	int fd, rc = 0;

	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT) {
		rc = pgk_error(PGKEEP_EIO, "cannot remove %s/%s: %s", pgdata, tmp, strerror(errno));
		goto out_free;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = pgk_error(PGKEEP_EIO, "cannot create %s/%s: %s", pgdata, tmp, strerror(errno));
		goto out_free;
	}
	if (write_all(fd, data, len) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot write %s/%s: %s", pgdata, tmp, strerror(errno));
	if (rc == 0 && fsync(fd) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot fsync %s/%s: %s", pgdata, tmp, strerror(errno));
	close(fd);
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		rc = pgk_error(PGKEEP_EIO, "cannot rename %s/%s to %s: %s", pgdata, tmp, name,
			       strerror(errno));
	if (rc < 0)
		unlinkat(dirfd, tmp, 0);
out_free:
	free(tmp);
	return rc;
}

static void append_setting(struct pgk_buf *b, const char *name, const char *value)
{
	char *q = conf_quote(value);

	buf_printf(b, "%s = %s\n", name, q);
	free(q);
}

/* The backup's auto.conf with our settings' earlier values removed. */
static int filtered_auto_conf(int dirfd, const char *pgdata, bool archive_off,
			      struct pgk_buf *out)
{
	struct pgk_buf old = PGK_BUF_INIT;
	char *text, *line, *save = NULL;
	int rc;

	rc = read_file(dirfd, pgdata, "postgresql.auto.conf", &old);
	if (rc < 0)
		return rc;
	text = buf_detach(&old);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (managed_line(line, archive_off))
			buf_printf(out, "# (pgkeep restore) %s\n", line);
		else
			buf_printf(out, "%s\n", line);
	}
	free(text);
	return 0;
}

int recovery_write(int dirfd, const char *pgdata, const struct recovery_settings *s)
{
	struct pgk_buf conf = PGK_BUF_INIT;
	int rc;

	rc = filtered_auto_conf(dirfd, pgdata, s->archive_off, &conf);
	if (rc < 0)
		goto out;
	if (s->comment)
		buf_printf(&conf, "# %s\n", s->comment);
	append_setting(&conf, "restore_command", s->restore_command);
	if (s->target == TARGET_IMMEDIATE)
		append_setting(&conf, "recovery_target", "immediate");
	else if (s->target != TARGET_NONE)
		append_setting(&conf, recovery_target_setting(s->target), s->target_value);
	if (s->target != TARGET_NONE && s->action)
		append_setting(&conf, "recovery_target_action", s->action);
	append_setting(&conf, "recovery_target_timeline", "latest");
	if (s->archive_off)
		append_setting(&conf, "archive_mode", "off");
	rc = write_atomic(dirfd, pgdata, "postgresql.auto.conf", conf.data, conf.len);
	if (rc == 0)
		rc = write_atomic(dirfd, pgdata, "recovery.signal", "", 0);
	/* A backup of a standby holds its standby.signal, which would win over
	 * recovery.signal: the restored server would follow the old primary. */
	if (rc == 0 && unlinkat(dirfd, "standby.signal", 0) < 0 && errno != ENOENT)
		rc = pgk_error(PGKEEP_EIO, "cannot remove %s/standby.signal: %s", pgdata,
			       strerror(errno));
out:
	buf_free(&conf);
	return rc;
}

/*
 * How the sftp plugin speaks: through the host's log, and in pgkeep codes
 * with one-line messages made from libssh2's and the SFTP server's errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "sftp.h"

const struct pgkeep_host *sftp_host;

void sftp_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!sftp_host || !sftp_host->log)
		return;
	va_start(ap, fmt);
	sftp_host->log(level, fmt, ap);
	va_end(ap);
}

const char *sftp_ssh_errname(int e)
{
	switch (e) {
	case LIBSSH2_ERROR_SOCKET_SEND: return "LIBSSH2_ERROR_SOCKET_SEND";
	case LIBSSH2_ERROR_SOCKET_RECV: return "LIBSSH2_ERROR_SOCKET_RECV";
	case LIBSSH2_ERROR_SOCKET_DISCONNECT: return "LIBSSH2_ERROR_SOCKET_DISCONNECT";
	case LIBSSH2_ERROR_SOCKET_TIMEOUT: return "LIBSSH2_ERROR_SOCKET_TIMEOUT";
	case LIBSSH2_ERROR_TIMEOUT: return "LIBSSH2_ERROR_TIMEOUT";
	case LIBSSH2_ERROR_CHANNEL_CLOSED: return "LIBSSH2_ERROR_CHANNEL_CLOSED";
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT: return "LIBSSH2_ERROR_CHANNEL_EOF_SENT";
	case LIBSSH2_ERROR_CHANNEL_FAILURE: return "LIBSSH2_ERROR_CHANNEL_FAILURE";
	case LIBSSH2_ERROR_KEX_FAILURE: return "LIBSSH2_ERROR_KEX_FAILURE";
	case LIBSSH2_ERROR_DECRYPT: return "LIBSSH2_ERROR_DECRYPT";
	case LIBSSH2_ERROR_BAD_USE: return "LIBSSH2_ERROR_BAD_USE";
	case LIBSSH2_ERROR_EAGAIN: return "LIBSSH2_ERROR_EAGAIN";
	default: return "libssh2 error";
	}
}

const char *sftp_status_name(unsigned long s)
{
	static const char *const names[] = {
		"SSH_FX_OK", "SSH_FX_EOF", "SSH_FX_NO_SUCH_FILE",
		"SSH_FX_PERMISSION_DENIED", "SSH_FX_FAILURE", "SSH_FX_BAD_MESSAGE",
		"SSH_FX_NO_CONNECTION", "SSH_FX_CONNECTION_LOST",
		"SSH_FX_OP_UNSUPPORTED", "SSH_FX_INVALID_HANDLE",
		"SSH_FX_NO_SUCH_PATH", "SSH_FX_FILE_ALREADY_EXISTS",
		"SSH_FX_WRITE_PROTECT", "SSH_FX_NO_MEDIA",
		"SSH_FX_NO_SPACE_ON_FILESYSTEM", "SSH_FX_QUOTA_EXCEEDED",
		"SSH_FX_UNKNOWN_PRINCIPAL", "SSH_FX_LOCK_CONFLICT",
		"SSH_FX_DIR_NOT_EMPTY", "SSH_FX_NOT_A_DIRECTORY",
		"SSH_FX_INVALID_FILENAME", "SSH_FX_LINK_LOOP",
	};

	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "SSH_FX_UNKNOWN";
}

static int status_code(unsigned long s)
{
	switch (s) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return PGKEEP_ENOTFOUND;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return PGKEEP_EEXISTS;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return PGKEEP_ENOSPC;
	case LIBSSH2_FX_NO_CONNECTION:
	case LIBSSH2_FX_CONNECTION_LOST:
		return PGKEEP_ERETRY;
	default:
		return PGKEEP_EIO;
	}
}

long sftp_status(struct sftp_conn *c)
{
	if (libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return -1;
	return (long)libssh2_sftp_last_error(c->sftp);
}

int sftp_fail(struct sftp_store *st, struct sftp_conn *c, char *err,
	      const char *verb, const char *path)
{
	int e = libssh2_session_last_errno(c->session);
	char *msg = NULL;

	if (e == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long s = libssh2_sftp_last_error(c->sftp);
		int code = status_code(s);

		if (code == PGKEEP_ERETRY)
			c->broken = true;
		return pgkeep_fail(err, code, "sftp: %s %s:%s: %s", verb,
				   st->where, path, sftp_status_name(s));
	}
	if (e == LIBSSH2_ERROR_ALLOC)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: %s %s:%s: out of memory",
				   verb, st->where, path);
	/* Below SFTP the session's state is unknown: never reuse it. */
	c->broken = true;
	libssh2_session_last_error(c->session, &msg, NULL, 0);
	return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: %s %s:%s: connection failed: %s (%s)",
			   verb, st->where, path, msg && *msg ? msg : "no detail",
			   sftp_ssh_errname(e));
}

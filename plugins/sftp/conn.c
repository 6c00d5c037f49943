/*
 * SSH side of the sftp plugin: TCP connect with a deadline, the session
 * (host key checked in knownhosts.c), public key authentication (file or
 * ssh-agent), and a small pool of sessions, because a libssh2 session is
 * not thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sftp.h"

/* ---- TCP ---------------------------------------------------------------- */

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *out)
{
	int fd, one = 1, soerr = 0, flags;
	socklen_t sl = sizeof(soerr);
	struct pollfd pfd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			soerr = errno;
			goto out_close;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			flags = poll(&pfd, 1, timeout_ms);
		} while (flags < 0 && errno == EINTR);
		if (flags == 0) {
			soerr = ETIMEDOUT;
			goto out_close;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr)
			goto out_close;
	}
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	*out = fd;
	return 0;
out_close:
	close(fd);
	return soerr;
}

static int tcp_connect(struct sftp_store *st, int *fd, char *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	char port[16];
	int rc, e = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", st->set.port);
	rc = getaddrinfo(st->set.host, port, &hints, &res);
	if (rc)
		return pgkeep_fail(err, rc == EAI_AGAIN ? PGKEEP_ERETRY : PGKEEP_EIO,
				   "sftp: cannot resolve %s: %s", st->set.host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		e = connect_one(ai, st->set.connect_timeout * 1000, fd);
		if (!e)
			break;
	}
	freeaddrinfo(res);
	if (e)
		return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: cannot connect to %s:%d: %s",
				   st->set.host, st->set.port, strerror(e));
	return PGKEEP_OK;
}

/* ---- authentication ----------------------------------------------------- */

static int auth_agent(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent = libssh2_agent_init(s);
	int rc = PGKEEP_EAUTH, n = 0;

	if (!agent)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	if (libssh2_agent_connect(agent)) {
		pgkeep_fail(err, PGKEEP_EAUTH, "sftp: use_agent is on but no ssh-agent answers "
			    "(is SSH_AUTH_SOCK set for this user?)");
		goto out_free;
	}
	if (libssh2_agent_list_identities(agent)) {
		pgkeep_fail(err, PGKEEP_EAUTH, "sftp: cannot list the ssh-agent's keys");
		goto out_disconnect;
	}
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		n++;
		if (!libssh2_agent_userauth(agent, st->set.user, id)) {
			rc = PGKEEP_OK;
			goto out_disconnect;
		}
		prev = id;
	}
	pgkeep_fail(err, PGKEEP_EAUTH, "sftp: %s refused all %d key(s) of the ssh-agent "
		    "(RSA keys cannot work with libssh2 %s against OpenSSH >= 8.8)",
		    st->where, n, libssh2_version(0));
out_disconnect:
	libssh2_agent_disconnect(agent);
out_free:
	libssh2_agent_free(agent);
	return rc;
}

static int auth_file(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	const struct sftp_settings *set = &st->set;
	char *msg = NULL;
	int e;

	if (!libssh2_userauth_publickey_fromfile_ex(s, set->user, (unsigned)strlen(set->user),
						    NULL, set->identity_file, set->passphrase))
		return PGKEEP_OK;
	e = libssh2_session_last_error(s, &msg, NULL, 0);
	switch (e) {
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		return pgkeep_fail(err, PGKEEP_EAUTH,
				   "sftp: %s refused the key in identity_file %s "
				   "(is its public key in the authorized_keys of user %s?)",
				   st->where, set->identity_file, set->user);
	case LIBSSH2_ERROR_FILE:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		return pgkeep_fail(err, PGKEEP_EAUTH, "sftp: cannot use identity_file %s: %s%s",
				   set->identity_file, msg ? msg : "unreadable key",
				   set->passphrase ? "" : " (encrypted keys need identity_passphrase_file)");
	default:
		return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: authentication with %s failed: %s (%s)",
				   st->where, msg ? msg : "no detail", sftp_ssh_errname(e));
	}
}

static int auth(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	int rc = PGKEEP_EAUTH;

	if (st->set.use_agent) {
		rc = auth_agent(st, s, err);
		if (rc == PGKEEP_OK || !st->set.identity_file)
			return rc;
		sftp_log(PGKEEP_LOG_DEBUG, "%s; trying identity_file", err);
	}
	return auth_file(st, s, err);
}

/* ---- one connection ------------------------------------------------------ */

static void conn_close(struct sftp_conn *c)
{
	if (!c)
		return;
	/* A dead peer must not make libssh2 wait for a goodbye. */
	if (c->broken && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->sftp)
		libssh2_sftp_shutdown(c->sftp);
	if (c->session) {
		if (!c->broken)
			libssh2_session_disconnect(c->session, "pgkeep done");
		libssh2_session_free(c->session);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->iobuf);
	free(c);
}

static int conn_open(struct sftp_store *st, struct sftp_conn **out, char *err)
{
	struct sftp_conn *c = calloc(1, sizeof(*c));
	struct sftp_known k;
	char *msg = NULL;
	int rc, e;

	memset(&k, 0, sizeof(k));
	if (!c || !(c->iobuf = malloc(SFTP_IOBUF_SIZE))) {
		free(c);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	}
	c->fd = -1;
	rc = tcp_connect(st, &c->fd, err);
	if (rc)
		goto out_close;
	c->session = libssh2_session_init();
	if (!c->session) {
		rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
		goto out_close;
	}
	libssh2_session_set_blocking(c->session, 1);
	libssh2_session_set_timeout(c->session, (long)st->set.connect_timeout * 1000);
	rc = sftp_known_load(&k, c->session, &st->set, err);
	if (rc)
		goto out_close;
	sftp_known_set_prefs(&k, c->session);
	if (libssh2_session_handshake(c->session, c->fd)) {
		e = libssh2_session_last_error(c->session, &msg, NULL, 0);
		c->broken = true;
		rc = pgkeep_fail(err, PGKEEP_ERETRY, "sftp: ssh handshake with %s failed: %s (%s)",
				 st->where, msg ? msg : "no detail", sftp_ssh_errname(e));
		goto out_close;
	}
	rc = sftp_known_check(st, &k, c->session, err);
	if (rc)
		goto out_close;
	rc = auth(st, c->session, err);
	if (rc)
		goto out_close;
	libssh2_session_set_timeout(c->session, (long)st->set.timeout * 1000);
	if (st->set.keepalive > 0)
		libssh2_keepalive_config(c->session, 1, (unsigned)st->set.keepalive);
	c->sftp = libssh2_sftp_init(c->session);
	if (!c->sftp) {
		e = libssh2_session_last_error(c->session, &msg, NULL, 0);
		c->broken = true;
		rc = pgkeep_fail(err, PGKEEP_ERETRY, "sftp: cannot start the sftp subsystem on %s: %s (%s)",
				 st->where, msg ? msg : "no detail", sftp_ssh_errname(e));
		goto out_close;
	}
	sftp_known_free(&k);
	sftp_log(PGKEEP_LOG_DEBUG, "sftp: connected to %s: kex %s, cipher %s, mac %s",
		 st->where, libssh2_session_methods(c->session, LIBSSH2_METHOD_KEX),
		 libssh2_session_methods(c->session, LIBSSH2_METHOD_CRYPT_CS),
		 libssh2_session_methods(c->session, LIBSSH2_METHOD_MAC_CS));
	*out = c;
	return PGKEEP_OK;
out_close:
	sftp_known_free(&k);
	conn_close(c);
	return rc;
}

/* ---- the pool ------------------------------------------------------------ */

/*
 * Hand out an idle session or open a new one, up to max_connections; wait at
 * most `timeout` seconds for one to come back, so that a caller holding
 * several puts open cannot hang forever.
 */
int sftp_conn_acquire(struct sftp_store *st, struct sftp_conn **out, char *err)
{
	struct sftp_conn *c = NULL;
	struct timespec deadline;
	int rc = 0, next;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += st->set.timeout;
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (st->idle) {
			c = st->idle;
			st->idle = c->next;
			break;
		}
		if (st->nconns < st->set.max_connections) {
			st->nconns++;
			break;
		}
		if (rc == ETIMEDOUT) {
			pthread_mutex_unlock(&st->lock);
			return pgkeep_fail(err, PGKEEP_ERETRY,
					   "sftp: all %d connections to %s stayed busy for %d s",
					   st->set.max_connections, st->where, st->set.timeout);
		}
		rc = pthread_cond_timedwait(&st->cond, &st->lock, &deadline);
	}
	pthread_mutex_unlock(&st->lock);

	if (c) {
		c->next = NULL;
		if (st->set.keepalive <= 0 || !libssh2_keepalive_send(c->session, &next)) {
			*out = c;
			return PGKEEP_OK;
		}
		/* the idle session died; replace it, keeping its slot */
		c->broken = true;
		conn_close(c);
	}
	rc = conn_open(st, out, err);
	if (rc) {
		pthread_mutex_lock(&st->lock);
		st->nconns--;
		pthread_cond_signal(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	return rc;
}

void sftp_conn_release(struct sftp_store *st, struct sftp_conn *c)
{
	if (!c)
		return;
	if (c->broken) {
		conn_close(c);
		pthread_mutex_lock(&st->lock);
		st->nconns--;
	} else {
		pthread_mutex_lock(&st->lock);
		c->next = st->idle;
		st->idle = c;
	}
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void sftp_pool_drain(struct sftp_store *st)
{
	struct sftp_conn *c, *next;

	pthread_mutex_lock(&st->lock);
	c = st->idle;
	st->idle = NULL;
	pthread_mutex_unlock(&st->lock);
	for (; c; c = next) {
		next = c->next;
		conn_close(c);
		st->nconns--;
	}
}

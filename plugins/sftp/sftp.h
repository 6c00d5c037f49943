/*
 * Internal interface of the sftp storage plugin: settings, the connection
 * pool and the error helpers shared by conn.c (SSH session, host key, user
 * authentication, pool) and sftp.c (the plugin ABI operations).
 */
#ifndef PGK_PLUGIN_SFTP_H
#define PGK_PLUGIN_SFTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <pgkeep/storage.h>

#define SFTP_IOBUF_SIZE (2u << 20)	/* read buffer per connection */

struct sftp_settings {
	char *host;
	int port;
	char *user;
	char *path;		/* remote directory of the repository, no trailing '/' */
	char *identity_file;
	char *passphrase;	/* from identity_passphrase_file, wiped on close */
	bool use_agent;
	char *known_hosts;
	int connect_timeout;	/* seconds */
	int timeout;		/* seconds, every blocking libssh2 call */
	int keepalive;		/* seconds, 0 = off */
	int max_connections;
	bool create;		/* pgkeep init: make the repository's directory */
};

/* One SSH session with its SFTP channel; used by one thread at a time. */
struct sftp_conn {
	struct sftp_conn *next;		/* idle list */
	int fd;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	bool broken;			/* session-level error: discard, never reuse */
	unsigned char *iobuf;		/* SFTP_IOBUF_SIZE bytes */
};

struct sftp_store {
	struct sftp_settings set;
	char *where;			/* "user@host:port", for messages */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sftp_conn *idle;
	int nconns;			/* live connections, idle or in use */
	bool no_fsync;			/* server lacks fsync@openssh.com */
};

/* conn.c */
extern const struct pgkeep_host *sftp_host;
void sftp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sftp_check_identity(const struct sftp_settings *set, char *err);
int sftp_conn_acquire(struct sftp_store *st, struct sftp_conn **out, char *err);
void sftp_conn_release(struct sftp_store *st, struct sftp_conn *c);
void sftp_pool_drain(struct sftp_store *st);

/*
 * Turn the last libssh2 failure on c into a pgkeep code and message:
 * "sftp: VERB user@host:port:PATH: SSH_FX_...".  A failure below the SFTP
 * layer marks the connection broken and yields PGKEEP_ERETRY.
 */
int sftp_fail(struct sftp_store *st, struct sftp_conn *c, char *err,
	      const char *verb, const char *path);
/* The SFTP status of the last failure, or -1 when it was not an SFTP status. */
long sftp_status(struct sftp_conn *c);
const char *sftp_status_name(unsigned long status);

#endif

/*
 * Internal interface of the sftp storage plugin, shared by its files:
 * errors.c (log and messages), identity.c (the key file), knownhosts.c,
 * conn.c (SSH sessions and their pool), and the ABI calls in sftp.c.
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

#define SFTP_ATTEMPTS PGKEEP_RETRY_ATTEMPTS	/* first try plus reconnects */
/* A put writes NAME.tmp.<16 hex digits> and renames it into place. */
#define SFTP_TEMP_INFIX PGKEEP_TEMP_INFIX
#define SFTP_TEMP_RAND_HEX 16

/* settings.c */
int sftp_settings_parse(struct sftp_settings *set, const struct pgkeep_option *opts,
			size_t nopts, char *err);
void sftp_settings_free(struct sftp_settings *set);

/* remote.c */
/* The key rule of pgkeep/storage.h, as EINVAL with a message. */
int sftp_key_check(const char *key, bool prefix, char *err);
/* PATH/REL, where REL may be empty (the repository directory itself); NULL
 * when out of memory. */
char *sftp_remote_join(const struct sftp_store *st, const char *rel);
bool sftp_is_temp_name(const char *name);
/* Length of the directory part of path (0 when it has none). */
size_t sftp_parent_len(const char *path);
int sftp_root_check(struct sftp_store *st, struct sftp_conn *c, char *err);
/* Make the first len bytes of path a directory, with its parents. */
int sftp_mkdir_p(struct sftp_store *st, struct sftp_conn *c, const char *path, size_t len,
		 char *err);
int sftp_write_all(struct sftp_store *st, struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *fh,
		   const char *path, const unsigned char *buf, size_t len, char *err);
bool sftp_connect_again(int rc, int attempt, const char *err);

/* Run op on a pooled session; a session that dies is replaced and op rerun. */
#define WITH_RETRY(st, c, err, rc, op)						\
	do {									\
		for (int attempt_ = 0; attempt_ < SFTP_ATTEMPTS; attempt_++) {\
			bool broken_;						\
			rc = sftp_conn_acquire((st), &(c), (err));		\
			if (rc && sftp_connect_again(rc, attempt_, (err)))	\
				continue;					\
			if (rc)							\
				break;						\
			rc = (op);						\
			broken_ = (c)->broken;					\
			sftp_conn_release((st), (c));				\
			if (!broken_)						\
				break;						\
			sftp_log(PGKEEP_LOG_INFO, "%s; reconnecting", (err));	\
		}								\
	} while (0)

/* put.c and list.c: the ABI calls, in the table in sftp.c. */
int sftp_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
		   void **out, char *err);
int sftp_put_write(void *put, const void *buf, size_t len, char *err);
int sftp_put_commit(void *put, char *err);
void sftp_put_abort(void *put);
int sftp_list(void *handle, const char *prefix, pgkeep_list_fn cb, void *payload, char *err);

/* errors.c */
extern const struct pgkeep_host *sftp_host;
void sftp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The name of a libssh2 error code, for messages. */
const char *sftp_ssh_errname(int e);

/* identity.c */
int sftp_check_identity(const struct sftp_settings *set, char *err);
/* Decode base64 (padding allowed); returns the length or -1. */
long sftp_b64_decode(unsigned char *out, size_t outlen, const char *in, size_t len);

/* knownhosts.c: the known_hosts file, as it applies to one host. */
struct sftp_known {
	LIBSSH2_KNOWNHOSTS *kh;
	char prefs[256];	/* key types on file for this host, comma-separated */
	char **revoked;		/* base64 keys of @revoked lines */
	size_t nrevoked;
	bool missing;		/* the file does not exist */
};
int sftp_known_load(struct sftp_known *k, LIBSSH2_SESSION *s, const struct sftp_settings *set,
		    char *err);
/* Before the handshake: ask for the host key types on file for the host. */
void sftp_known_set_prefs(const struct sftp_known *k, LIBSSH2_SESSION *s);
/* After the handshake: the key the server presented must be on file. */
int sftp_known_check(struct sftp_store *st, struct sftp_known *k, LIBSSH2_SESSION *s, char *err);
void sftp_known_free(struct sftp_known *k);

/* conn.c */
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

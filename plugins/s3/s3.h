/*
 * Internals shared by the S3 plugin's files: the handle with its parsed
 * options and its pool of curl handles, and the small helpers every file uses.
 */
#ifndef PGK_S3_H
#define PGK_S3_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeep/storage.h>

#define S3_MIB (1024u * 1024u)
#define S3_MIN_PART (5u * S3_MIB)
#define S3_MAX_PART (5ull * 1024 * S3_MIB)
#define S3_MAX_PARTS 10000

struct s3_store {
	/* Where: endpoint is "scheme://host[:port]", host what goes in Host. */
	char *endpoint;
	char *scheme;
	char *host;
	char *region;
	char *bucket;
	char *prefix; /* "" or ends in '/' */
	int path_style;

	/* Who. */
	char *access_key_id;
	char *secret_access_key;
	char *session_token;

	/* How. */
	int tls_verify;
	int allow_insecure; /* plain HTTP accepted, with a warning */
	char *ca_file;
	char *storage_class;
	char *sse;
	char *sse_kms_key_id;
	size_t part_size;
	int upload_threads;
	int lock_days;
	char *lock_mode; /* GOVERNANCE or COMPLIANCE */
	int if_none_match;
	long connect_timeout; /* seconds */
	long timeout;	      /* seconds without progress before giving up */
	int retries;
	long retry_wait_ms; /* first backoff; doubles each attempt */
	int list_max_keys;  /* page size of ListObjectsV2, at most 1000 */

	/* Idle curl handles: kept so that their connections are reused. */
	pthread_mutex_t pool_lock;
	void **pool;
	size_t npool;
	size_t cap_pool;
};

/* A growable byte buffer; data is always NUL-terminated when non-NULL. */
struct s3_buf {
	char *data;
	size_t len;
	size_t cap;
};

int s3_buf_add(struct s3_buf *b, const void *p, size_t n);
int s3_buf_printf(struct s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void s3_buf_free(struct s3_buf *b);

/* options.c */
int s3_options_parse(struct s3_store *st, const struct pgkeep_option *opts,
		     size_t nopts, char *err);
void s3_options_free(struct s3_store *st);

/* s3.c */
void s3_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The object name in the bucket for a repository key. */
char *s3_object_name(const struct s3_store *st, const char *key);
/* The object name of a key (or a list prefix) that follows the key rule of
 * pgkeep/storage.h: PGKEEP_EINVAL for one that does not. */
int s3_key_object(const struct s3_store *st, const char *key, bool prefix, char **obj,
		  char *err);
/* "2026-02-20T14:30:00Z" for t. */
void s3_iso8601(int64_t t, char out[32]);
int64_t s3_parse_iso8601(const char *s);
/* base64(MD5(data)) for Content-MD5, NUL-terminated. */
void s3_content_md5(const void *data, size_t len, char out[32]);

/* put.c */
int s3_put_begin(void *handle, const char *key, uint64_t size_hint,
		 unsigned flags, void **put, char *err);
int s3_put_write(void *put, const void *buf, size_t len, char *err);
int s3_put_commit(void *put, char *err);
void s3_put_abort(void *put);

#endif

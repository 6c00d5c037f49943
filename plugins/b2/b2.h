/*
 * Internal interface of the Backblaze B2 plugin: the handle, the HTTP layer
 * (one curl handle per call, borrowed from a pool) and the B2 API calls with
 * their re-authorisation and retry rules.
 */
#ifndef PGK_B2_H
#define PGK_B2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include <pgkeep/storage.h>

#define B2_API_PATH "/b2api/v2/"
#define B2_DEFAULT_API_URL "https://api.backblazeb2.com"
#define B2_UPLOAD_URL_TRIES 5	/* B2's integration checklist: up to 5 URLs */
#define B2_REAUTH_TRIES 2

/* An upload URL and its token; owned by one thread at a time. */
struct b2_upurl {
	char *url;
	char *token;
	struct b2_upurl *next;
};

struct b2_curl {
	CURL *curl;
	struct b2_curl *next;
};

struct b2 {
	/* settings, fixed after open */
	char *key_id;
	char *app_key;
	char *bucket;
	char *prefix;		/* "" or ending in '/' */
	char *auth_url;		/* where b2_authorize_account is sent */
	char *test_mode;	/* X-Bz-Test-Mode, for hand tests on live B2 */
	int lock_days;
	char lock_mode[16];
	uint64_t part_size;
	long connect_timeout;
	long timeout;
	int retry_max;
	long retry_base_ms;
	bool allow_insecure;	/* plain HTTP accepted, with a warning */

	/* what b2_authorize_account gave; under auth_lock */
	pthread_mutex_t auth_lock;
	unsigned auth_gen;
	char *account_id;
	char *token;
	char *api_url;
	char *download_url;
	uint64_t min_part;
	char *bucket_id;

	/* free upload URLs and curl handles */
	pthread_mutex_t pool_lock;
	struct b2_upurl *upurls;
	struct b2_curl *curls;
};

/* One HTTP exchange. */
struct b2_req {
	const char *method;		/* "GET", "POST", "HEAD" */
	const char *url;
	struct curl_slist *headers;
	const void *body;
	size_t body_len;
	const char *user, *password;	/* Basic auth (authorize only) */
	pgkeep_sink_fn sink;		/* 2xx body goes here when set */
	void *payload;
};

struct b2_resp {
	long status;			/* 0 when no HTTP answer */
	char curl_err[CURL_ERROR_SIZE];
	char *body;			/* JSON or error body (NUL-terminated) */
	size_t body_len;
	long retry_after;		/* seconds, -1 when absent */
	char sha1[48];			/* X-Bz-Content-Sha1 */
	char large_sha1[48];		/* X-Bz-Info-large_file_sha1 */
	uint64_t delivered;		/* bytes handed to the sink */
	int sink_rc;			/* non-zero when the sink stopped us */
	char code[64];			/* B2's error code, "" when none */
	char message[256];		/* B2's error message */
	void *sha_ctx;			/* EVP_MD_CTX over delivered bytes, or NULL */
};

/* b2http.c */
int b2_http(struct b2 *b, const struct b2_req *rq, struct b2_resp *rs);
void b2_resp_free(struct b2_resp *rs);
void b2_backoff(struct b2 *b, int attempt, long retry_after);
bool b2_status_retryable(long status);
void b2_curl_pool_free(struct b2 *b);

/* b2api.c */
int b2_authorize(struct b2 *b, unsigned seen_gen, char *err);
int b2_auth_snapshot(struct b2 *b, bool download, char **token, char **url,
		     unsigned *gen, char *err);
int b2_api(struct b2 *b, const char *op, json_object *args, json_object **out,
	   const char *what, char *err);
int b2_fail_resp(struct b2 *b, const char *what, const struct b2_resp *rs,
		 char *err);
int b2_find_bucket(struct b2 *b, char *err);
int b2_upurl_take(struct b2 *b, const char *op, const char *id_key,
		  const char *id, const char *what, struct b2_upurl **out,
		  char *err);
void b2_upurl_give(struct b2 *b, struct b2_upurl *u);
void b2_upurl_free(struct b2_upurl *u);
bool b2_auth_expired(const struct b2_resp *rs);
int b2_url_check(const struct b2 *b, const char *url, const char *what, char *err);

/* b2put.c */
int b2_put_begin(void *handle, const char *key, uint64_t size_hint,
		 unsigned flags, void **put, char *err);
int b2_put_write(void *put, const void *buf, size_t len, char *err);
int b2_put_commit(void *put, char *err);
void b2_put_abort(void *put);

/* b2opts.c: one repository option stored, then all checked together. */
int b2_option(struct b2 *b, const char *k, const char *v, char *err);
int b2_settle(struct b2 *b, char *err);

/* b2.c, used by b2put.c */
char *b2_full_name(const struct b2 *b, const char *key);
/* The file name of a key (or a list prefix) that follows the key rule of
 * pgkeep/storage.h: PGKEEP_EINVAL for one that does not. */
int b2_key_name(const struct b2 *b, const char *key, bool prefix, char **name, char *err);
int b2_find_file(struct b2 *b, const char *name, json_object **file,
		 char *err);
int b2_delete_versions(struct b2 *b, const char *name, const char *only_id,
		       int *versions, char *err);
int b2_oldest_version(struct b2 *b, const char *name, char **id, int *count,
		      char *err);
void b2_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* json helpers */
const char *b2_json_str(json_object *o, const char *key);
int64_t b2_json_int(json_object *o, const char *key, int64_t dflt);
json_object *b2_json_array(json_object *o, const char *key);

#endif

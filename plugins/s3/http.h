/*
 * One signed S3 request over libcurl, with the plugin's retry policy:
 * exponential backoff with jitter for 5xx, 429/SlowDown and dropped or
 * stalled connections; never for authentication errors.
 */
#ifndef PGK_S3_HTTP_H
#define PGK_S3_HTTP_H

#include "s3.h"
#include "sigv4.h"

struct s3_hdr {
	const char *name;
	const char *value;
};

struct s3_request {
	const char *method;
	const char *object; /* object name in the bucket, NULL for the bucket */
	const struct sigv4_param *params;
	size_t nparams;
	const struct s3_hdr *headers; /* extra headers, all signed */
	size_t nheaders;
	const void *body; /* request body, in memory; NULL for none */
	size_t body_len;
	/* GET: a 2xx body goes to sink; a retry resumes where it stopped. */
	pgkeep_sink_fn sink;
	void *payload;
	int ranged; /* send Range: bytes=range_off-[range_off+range_len-1] */
	uint64_t range_off;
	uint64_t range_len; /* UINT64_MAX: to the end */
	const char *what;   /* "put", "get" ... for messages */
};

struct s3_response {
	long status;
	struct s3_buf body; /* everything not given to a sink */
	uint64_t content_length;
	int have_length;
	int64_t mtime;
	char etag[256];
};

/*
 * Send rq, retrying as the options say.  Returns PGKEEP_OK when a reply
 * arrived that retrying will not change (any status: the caller reads it),
 * PGKEEP_EAUTH on 401/403, or an error after the last attempt.  resp must
 * be zeroed; free it with s3_response_free.
 */
int s3_http(struct s3_store *st, const struct s3_request *rq,
	    struct s3_response *resp, char *err);
void s3_response_free(struct s3_response *resp);

/*
 * Fail with a message naming what, bucket, object and the store's error
 * Code and Message from resp; returns the PGKEEP_E* code for its status.
 */
int s3_fail_reply(struct s3_store *st, const char *what, const char *object,
		  const struct s3_response *resp, char *err);

void s3_http_global_init(void);
void s3_http_pool_free(struct s3_store *st);

#endif

/*
 * AWS Signature Version 4 for S3, on OpenSSL's SHA-256 and HMAC.  Written
 * here because libcurl 7.88's CURLOPT_AWS_SIGV4 mis-signs S3 requests and
 * Debian's libs3 only knows V2; the unit and differential tests hold it to
 * AWS's published examples and to botocore.
 */
#ifndef PGK_S3_SIGV4_H
#define PGK_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A query parameter, unencoded; value NULL is a bare key ("?uploads"). */
struct sigv4_param {
	const char *name;
	const char *value;
};

/* A header as sent; names in any case, values untrimmed. */
struct sigv4_header {
	const char *name;
	const char *value;
};

/*
 * Everything that is signed.  path is the raw (unencoded) path starting with
 * '/'; S3 encodes it exactly once and keeps '/'.  headers must contain every
 * header to sign, host, x-amz-date and x-amz-content-sha256 included.
 */
struct sigv4_request {
	const char *method;
	const char *path;
	const struct sigv4_param *params;
	size_t nparams;
	const struct sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 or SIGV4_UNSIGNED_PAYLOAD */
};

struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *region;
	const char *service; /* "s3" */
};

/* UriEncode as S3 wants it; '/' kept when keep_slash.  NULL when out of memory. */
char *sigv4_uri_encode(const char *s, int keep_slash);

/* The canonical query string ("a=1&b=" ...), malloc'd; NULL on ENOMEM. */
char *sigv4_canonical_query(const struct sigv4_param *params, size_t n);

/* The canonical request, malloc'd; NULL on ENOMEM. */
char *sigv4_canonical_request(const struct sigv4_request *req);

/*
 * The value of the Authorization header, malloc'd, for a request made at
 * amz_date ("YYYYMMDDTHHMMSSZ", the x-amz-date header's value).  NULL on ENOMEM.
 */
char *sigv4_authorization(const struct sigv4_request *req,
			  const struct sigv4_credentials *cred,
			  const char *amz_date);

/* hex(SHA-256(data)) into out (65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* x-amz-date for t: "YYYYMMDDTHHMMSSZ" into out (17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

#endif

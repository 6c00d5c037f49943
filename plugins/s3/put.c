/*
 * Uploads for the s3 plugin.  Bytes are buffered up to one part; an object
 * that fits goes up in a single PUT, a larger one as a multipart upload whose
 * parts a few threads send concurrently.  Either way nothing is visible until
 * the PUT or CompleteMultipartUpload succeeds; a failed multipart upload is
 * aborted so that its parts do not linger.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "s3.h"
#include "xml.h"

struct part {
	int number;
	char *data;
	size_t len;
	struct part *next;
};

struct s3_put {
	struct s3_store *st;
	char *obj;
	unsigned flags;
	size_t base_part; /* part size for this upload before growth */

	char *buf; /* the part being filled */
	size_t len, limit;
	int next_number;

	char *upload_id;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct part *head, *tail;
	int queued, inflight, stopping;
	pthread_t *threads;
	int nthreads;
	char **etags; /* etags[number - 1] */
	int cap_etags;
	int failed;
	char err[PGKEEP_ERRLEN];
};

static void put_fail(struct s3_put *p, int rc, const char *msg)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = rc;
		snprintf(p->err, sizeof(p->err), "%s", msg);
	}
	pthread_mutex_unlock(&p->lock);
}

/*
 * Part n's size.  With the size unknown, parts grow every thousand so that
 * S3's 10,000-part limit still allows about 55 times part_size * 1000.
 */
static size_t part_limit(const struct s3_put *p, int number)
{
	size_t n = p->base_part * (size_t)(1 + (number - 1) / 1000);

	return n > S3_MAX_PART ? (size_t)S3_MAX_PART : n;
}

/* Headers that shape the new object: class, encryption, lock. */
static size_t object_headers(struct s3_store *st, struct s3_hdr *h, char until[32])
{
	size_t n = 0;

	h[n++] = (struct s3_hdr){ "Content-Type", "application/octet-stream" };
	if (st->storage_class)
		h[n++] = (struct s3_hdr){ "x-amz-storage-class", st->storage_class };
	if (st->sse)
		h[n++] = (struct s3_hdr){ "x-amz-server-side-encryption", st->sse };
	if (st->sse_kms_key_id)
		h[n++] = (struct s3_hdr){ "x-amz-server-side-encryption-aws-kms-key-id",
					  st->sse_kms_key_id };
	if (st->lock_days > 0) {
		s3_iso8601((int64_t)time(NULL) + (int64_t)st->lock_days * 86400, until);
		h[n++] = (struct s3_hdr){ "x-amz-object-lock-mode", st->lock_mode };
		h[n++] = (struct s3_hdr){ "x-amz-object-lock-retain-until-date", until };
	}
	return n;
}

/* HEAD: PGKEEP_EEXISTS, PGKEEP_OK when absent, or an error. */
static int check_absent(struct s3_put *p, char *err)
{
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	int rc;

	rq.method = "HEAD";
	rq.object = p->obj;
	rq.what = "put (existence check)";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc) {
		if (resp.status == 200)
			rc = pgkeep_fail(err, PGKEEP_EEXISTS,
					 "s3: put of '%s' in bucket '%s': object already exists",
					 p->obj, p->st->bucket);
		else if (resp.status != 404)
			rc = s3_fail_reply(p->st, "put (existence check)", p->obj, &resp, err);
	}
	s3_response_free(&resp);
	return rc;
}

static int put_single(struct s3_put *p, char *err)
{
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	struct s3_hdr h[10];
	char until[32], md5[32];
	size_t n;
	int rc;

	if ((p->flags & PGKEEP_PUT_IF_ABSENT) && !p->st->if_none_match) {
		rc = check_absent(p, err);
		if (rc)
			return rc;
	}
	n = object_headers(p->st, h, until);
	s3_content_md5(p->buf ? p->buf : "", p->len, md5);
	h[n++] = (struct s3_hdr){ "Content-MD5", md5 };
	if ((p->flags & PGKEEP_PUT_IF_ABSENT) && p->st->if_none_match)
		h[n++] = (struct s3_hdr){ "If-None-Match", "*" };
	rq.method = "PUT";
	rq.object = p->obj;
	rq.headers = h;
	rq.nheaders = n;
	rq.body = p->buf ? p->buf : "";
	rq.body_len = p->len;
	rq.what = "put";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc && resp.status == 412)
		rc = pgkeep_fail(err, PGKEEP_EEXISTS,
				 "s3: put of '%s' in bucket '%s': object already exists",
				 p->obj, p->st->bucket);
	else if (!rc && resp.status != 200)
		rc = s3_fail_reply(p->st, "put", p->obj, &resp, err);
	s3_response_free(&resp);
	return rc;
}

static int upload_part(struct s3_put *p, struct part *part, char *err)
{
	char number[16], md5[32];
	struct sigv4_param q[] = { { "partNumber", number }, { "uploadId", p->upload_id } };
	struct s3_hdr h[] = { { "Content-MD5", md5 } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	int rc;

	snprintf(number, sizeof(number), "%d", part->number);
	s3_content_md5(part->data, part->len, md5);
	rq.method = "PUT";
	rq.object = p->obj;
	rq.params = q;
	rq.nparams = 2;
	rq.headers = h;
	rq.nheaders = 1;
	rq.body = part->data;
	rq.body_len = part->len;
	rq.what = "put (upload part)";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc && resp.status != 200)
		rc = s3_fail_reply(p->st, "put (upload part)", p->obj, &resp, err);
	if (!rc && !resp.etag[0])
		rc = pgkeep_fail(err, PGKEEP_EIO,
				 "s3: put of '%s' in bucket '%s': part %d stored without an ETag",
				 p->obj, p->st->bucket, part->number);
	if (!rc) {
		char *etag = strdup(resp.etag);

		pthread_mutex_lock(&p->lock);
		p->etags[part->number - 1] = etag;
		pthread_mutex_unlock(&p->lock);
		if (!etag)
			rc = pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	}
	s3_response_free(&resp);
	return rc;
}

static void *worker(void *arg)
{
	struct s3_put *p = arg;
	char err[PGKEEP_ERRLEN];

	for (;;) {
		struct part *part;
		int rc = PGKEEP_OK;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		part = p->head;
		if (!part) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = part->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->inflight++;
		rc = p->failed;
		pthread_mutex_unlock(&p->lock);

		err[0] = '\0';
		if (!rc) {
			rc = upload_part(p, part, err);
			if (rc)
				put_fail(p, rc, err);
		}
		free(part->data);
		free(part);
		pthread_mutex_lock(&p->lock);
		p->inflight--;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

static int create_upload(struct s3_put *p, char *err)
{
	struct sigv4_param q[] = { { "uploads", NULL } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	struct s3_hdr h[10];
	char until[32];
	int rc, i;

	rq.method = "POST";
	rq.object = p->obj;
	rq.params = q;
	rq.nparams = 1;
	rq.headers = h;
	rq.nheaders = object_headers(p->st, h, until);
	rq.what = "put (create multipart upload)";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc && resp.status != 200)
		rc = s3_fail_reply(p->st, rq.what, p->obj, &resp, err);
	if (!rc) {
		p->upload_id = xml_text(resp.body.data ? resp.body.data : "", resp.body.len,
					"UploadId");
		if (!p->upload_id)
			rc = pgkeep_fail(err, PGKEEP_EIO,
					 "s3: put of '%s' in bucket '%s': no UploadId in the reply",
					 p->obj, p->st->bucket);
	}
	s3_response_free(&resp);
	if (rc)
		return rc;
	p->threads = calloc((size_t)p->st->upload_threads, sizeof(*p->threads));
	if (!p->threads)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	for (i = 0; i < p->st->upload_threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p))
			break;
		p->nthreads++;
	}
	if (!p->nthreads)
		return pgkeep_fail(err, PGKEEP_EIO, "s3: put of '%s': cannot start upload threads",
				   p->obj);
	return PGKEEP_OK;
}

/* Hand the full buffer to the upload threads; waits while they are all busy. */
static int dispatch(struct s3_put *p, char *err)
{
	struct part *part;
	int rc;

	if (!p->upload_id && (rc = create_upload(p, err)))
		return rc;
	if (p->next_number > S3_MAX_PARTS)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "s3: put of '%s': more than %d parts; raise part_size",
				   p->obj, S3_MAX_PARTS);
	if (p->next_number > p->cap_etags) {
		int cap = p->cap_etags ? p->cap_etags * 2 : 64;
		char **e;

		pthread_mutex_lock(&p->lock);
		e = realloc(p->etags, (size_t)cap * sizeof(*e));
		if (e) {
			memset(e + p->cap_etags, 0, (size_t)(cap - p->cap_etags) * sizeof(*e));
			p->etags = e;
			p->cap_etags = cap;
		}
		pthread_mutex_unlock(&p->lock);
		if (!e)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	}
	part = calloc(1, sizeof(*part));
	if (!part)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	part->number = p->next_number++;
	part->data = p->buf;
	part->len = p->len;
	p->buf = NULL;
	p->len = 0;
	p->limit = part_limit(p, p->next_number);

	pthread_mutex_lock(&p->lock);
	/* Bounded memory: at most one part waits for a free thread. */
	while (!p->failed && p->queued + p->inflight > p->nthreads)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->tail)
		p->tail->next = part;
	else
		p->head = part;
	p->tail = part;
	p->queued++;
	pthread_cond_broadcast(&p->cond);
	rc = p->failed;
	if (rc)
		pgkeep_fail(err, rc, "%s", p->err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void stop_workers(struct s3_put *p)
{
	int i;

	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

static void abort_upload(struct s3_put *p)
{
	struct sigv4_param q[] = { { "uploadId", p->upload_id } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	char err[PGKEEP_ERRLEN] = "";
	int rc;

	rq.method = "DELETE";
	rq.object = p->obj;
	rq.params = q;
	rq.nparams = 1;
	rq.what = "put (abort multipart upload)";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc && resp.status != 204 && resp.status != 200 && resp.status != 404)
		rc = s3_fail_reply(p->st, rq.what, p->obj, &resp, err);
	/* The upload is invisible either way; only its parts may linger. */
	if (rc)
		s3_log(PGKEEP_LOG_WARNING,
		       "%s; its parts stay until the bucket's lifecycle rule removes incomplete uploads",
		       err);
	s3_response_free(&resp);
}

static int complete_upload(struct s3_put *p, char *err)
{
	struct sigv4_param q[] = { { "uploadId", p->upload_id } };
	struct s3_hdr h[2] = { { "Content-Type", "application/xml" } };
	struct s3_response resp = { 0 };
	struct s3_request rq = { 0 };
	struct s3_buf body = { 0 };
	int i, rc = 0;

	rc |= s3_buf_printf(&body, "<CompleteMultipartUpload>");
	for (i = 0; i < p->next_number - 1; i++) {
		char *etag = p->etags[i] ? xml_escape(p->etags[i]) : NULL;

		rc |= !etag || s3_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
					     i + 1, etag);
		free(etag);
	}
	rc |= s3_buf_printf(&body, "</CompleteMultipartUpload>");
	if (rc) {
		s3_buf_free(&body);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	}
	rq.method = "POST";
	rq.object = p->obj;
	rq.params = q;
	rq.nparams = 1;
	rq.headers = h;
	rq.nheaders = 1;
	if ((p->flags & PGKEEP_PUT_IF_ABSENT) && p->st->if_none_match)
		h[rq.nheaders++] = (struct s3_hdr){ "If-None-Match", "*" };
	rq.body = body.data;
	rq.body_len = body.len;
	rq.what = "put (complete multipart upload)";
	rc = s3_http(p->st, &rq, &resp, err);
	if (!rc && resp.status == 412)
		rc = pgkeep_fail(err, PGKEEP_EEXISTS,
				 "s3: put of '%s' in bucket '%s': object already exists",
				 p->obj, p->st->bucket);
	else if (!rc && (resp.status != 200 ||
			 (resp.body.data && strstr(resp.body.data, "<Error>"))))
		/* S3 may answer 200 and still report an error in the body. */
		rc = s3_fail_reply(p->st, rq.what, p->obj, &resp, err);
	s3_response_free(&resp);
	s3_buf_free(&body);
	return rc;
}

static void put_free(struct s3_put *p)
{
	int i;

	while (p->head) {
		struct part *next = p->head->next;

		free(p->head->data);
		free(p->head);
		p->head = next;
	}
	for (i = 0; i < p->cap_etags; i++)
		free(p->etags[i]);
	free(p->etags);
	free(p->threads);
	free(p->upload_id);
	free(p->buf);
	free(p->obj);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int s3_put_begin(void *handle, const char *key, uint64_t size_hint, unsigned flags,
		 void **out, char *err)
{
	struct s3_store *st = handle;
	struct s3_put *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "s3: out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->st = st;
	p->flags = flags;
	rc = s3_key_object(st, key, false, &p->obj, err);
	if (rc) {
		put_free(p);
		return rc;
	}
	p->base_part = st->part_size;
	/* A known size that would need too many parts gets bigger parts. */
	if (size_hint != UINT64_MAX && size_hint / st->part_size >= S3_MAX_PARTS) {
		uint64_t want = size_hint / (S3_MAX_PARTS - 1) + S3_MIB;

		p->base_part = (size_t)(want - want % S3_MIB);
	}
	p->next_number = 1;
	p->limit = part_limit(p, 1);
	/* Large uploads check first rather than waste the transfer. */
	if ((flags & PGKEEP_PUT_IF_ABSENT) && size_hint != UINT64_MAX &&
	    size_hint > p->limit) {
		rc = check_absent(p, err);
		if (rc) {
			put_free(p);
			return rc;
		}
	}
	*out = p;
	return PGKEEP_OK;
}

int s3_put_write(void *put, const void *data, size_t len, char *err)
{
	struct s3_put *p = put;
	const char *d = data;
	int rc;

	if (p->failed)
		return pgkeep_fail(err, p->failed, "%s", p->err);
	while (len) {
		size_t n;

		if (p->len == p->limit && (rc = dispatch(p, err)))
			return rc;
		if (!p->buf) {
			p->buf = malloc(p->limit);
			if (!p->buf)
				return pgkeep_fail(err, PGKEEP_ENOMEM,
						   "s3: out of memory for a %zu-byte part", p->limit);
		}
		n = p->limit - p->len;
		if (n > len)
			n = len;
		memcpy(p->buf + p->len, d, n);
		p->len += n;
		d += n;
		len -= n;
	}
	return PGKEEP_OK;
}

static int commit_multipart(struct s3_put *p, char *err)
{
	int rc = PGKEEP_OK;

	if (p->len)
		rc = dispatch(p, err);
	stop_workers(p);
	if (!rc && p->failed)
		rc = pgkeep_fail(err, p->failed, "%s", p->err);
	if (!rc && (p->flags & PGKEEP_PUT_IF_ABSENT) && !p->st->if_none_match)
		rc = check_absent(p, err);
	if (!rc)
		rc = complete_upload(p, err);
	if (rc)
		abort_upload(p);
	return rc;
}

int s3_put_commit(void *put, char *err)
{
	struct s3_put *p = put;
	int rc;

	if (p->upload_id)
		rc = commit_multipart(p, err);
	else
		rc = put_single(p, err);
	put_free(p);
	return rc;
}

void s3_put_abort(void *put)
{
	struct s3_put *p = put;

	if (!p)
		return;
	if (p->nthreads) {
		put_fail(p, PGKEEP_EIO, "s3: upload aborted");
		stop_workers(p);
	}
	if (p->upload_id)
		abort_upload(p);
	put_free(p);
}

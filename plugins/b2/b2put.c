/*
 * Uploads to B2: an object up to part_size goes in one b2_upload_file; a
 * bigger one becomes a large file whose parts are sent as the buffer fills,
 * so memory stays at one part whatever the object's size.  Nothing is
 * visible before b2_upload_file or b2_finish_large_file succeeds.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/evp.h>

#include "b2.h"
#include "b2name.h"

struct b2_put {
	struct b2 *b;
	char *name;		/* full B2 file name */
	char *enc;		/* percent-encoded, for headers */
	unsigned flags;
	unsigned char *buf;
	size_t len, cap;
	/* large file state */
	char *file_id;
	char (*sha)[41];	/* part SHA-1s, part i at sha[i-1] */
	size_t nparts, sha_cap;
	struct b2_upurl *part_url;
	char *new_id;		/* the version this put created */
};

static void b2_sha1_hex(const void *p, size_t n, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;

	EVP_Digest(p, n, md, &mdlen, EVP_sha1(), NULL);
	for (i = 0; i < 20; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[40] = '\0';
}

static int64_t b2_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t b2_lock_ms(const struct b2 *b)
{
	return b2_now_ms() + (int64_t)b->lock_days * 86400 * 1000;
}

/* Whether a failed upload calls for a fresh URL (B2's checklist). */
static bool b2_upload_retryable(const struct b2_resp *rs)
{
	return b2_status_retryable(rs->status) || b2_auth_expired(rs) ||
	       (rs->status == 400 && !strcmp(rs->code, "auth_token_limit")) ||
	       (rs->status == 400 && !strncmp(rs->message, "more than one upload", 20));
}

static struct curl_slist *b2_hdr(struct curl_slist *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct curl_slist *b2_hdr(struct curl_slist *h, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return curl_slist_append(h, line);
}

/*
 * POST buf to upload URLs until one takes it: up to B2_UPLOAD_URL_TRIES
 * URLs, a fresh one after every retryable failure.  part is 0 for
 * b2_upload_file, else the part number.  On success the answer's fileId
 * goes to p->new_id (whole files only).
 */
static int b2_upload(struct b2_put *p, const void *buf, size_t len,
		     unsigned part, const char *sha, char *err)
{
	struct b2 *b = p->b;
	struct b2_resp rs = { 0 };
	struct b2_req rq = { .method = "POST", .body = buf, .body_len = len };
	struct b2_upurl *u = NULL;
	char what[PGKEEP_ERRLEN / 2];
	json_object *o;
	int attempt, ret = 0;

	if (part)
		snprintf(what, sizeof(what), "upload part %u of %s", part, p->name);
	else
		snprintf(what, sizeof(what), "upload %s", p->name);
	for (attempt = 0; attempt < B2_UPLOAD_URL_TRIES; attempt++) {
		u = p->part_url;
		p->part_url = NULL;
		if (part && !u)
			ret = b2_upurl_take(b, "b2_get_upload_part_url", "fileId",
					    p->file_id, p->name, &u, err);
		else if (!part)
			ret = b2_upurl_take(b, "b2_get_upload_url", "bucketId",
					    b->bucket_id, p->name, &u, err);
		if (ret)
			goto out_free;
		rq.url = u->url;
		rq.headers = b2_hdr(NULL, "Authorization: %s", u->token);
		rq.headers = b2_hdr(rq.headers, "X-Bz-Content-Sha1: %s", sha);
		if (part) {
			rq.headers = b2_hdr(rq.headers, "X-Bz-Part-Number: %u", part);
		} else {
			rq.headers = b2_hdr(rq.headers, "X-Bz-File-Name: %s", p->enc);
			rq.headers = b2_hdr(rq.headers, "Content-Type: application/octet-stream");
			rq.headers = b2_hdr(rq.headers, "X-Bz-Info-src_last_modified_millis: %lld",
					    (long long)b2_now_ms());
			if (b->lock_days > 0) {
				rq.headers = b2_hdr(rq.headers, "X-Bz-File-Retention-Mode: %s",
						    b->lock_mode);
				rq.headers = b2_hdr(rq.headers,
						    "X-Bz-File-Retention-Retain-Until-Timestamp: %lld",
						    (long long)b2_lock_ms(b));
			}
		}
		ret = b2_http(b, &rq, &rs);
		curl_slist_free_all(rq.headers);
		rq.headers = NULL;
		if (ret == PGKEEP_ENOMEM) {
			b2_upurl_free(u);
			pgkeep_fail(err, ret, "b2: %s: out of memory", what);
			goto out_free;
		}
		if (rs.status == 200)
			break;
		/* the URL is spent either way: B2 may keep it locked */
		b2_upurl_free(u);
		u = NULL;
		if (!b2_upload_retryable(&rs) || attempt + 1 >= B2_UPLOAD_URL_TRIES) {
			ret = b2_fail_resp(b, what, &rs, err);
			goto out_free;
		}
		b2_log(PGKEEP_LOG_DEBUG, "b2: %s: %ld %s, new upload URL", what,
		       rs.status, rs.code[0] ? rs.code : rs.curl_err);
		b2_backoff(b, attempt, rs.retry_after);
	}
	ret = 0;
	if (part) {
		p->part_url = u;
	} else {
		b2_upurl_give(b, u);
		o = json_tokener_parse(rs.body ? rs.body : "");
		free(p->new_id);
		p->new_id = o && b2_json_str(o, "fileId") ?
			strdup(b2_json_str(o, "fileId")) : NULL;
		json_object_put(o);
	}
out_free:
	b2_resp_free(&rs);
	return ret;
}

static int b2_large_start(struct b2_put *p, char *err)
{
	struct b2 *b = p->b;
	json_object *args = json_object_new_object(), *info, *fr, *out = NULL;
	char ms[32];
	int ret;

	info = json_object_new_object();
	snprintf(ms, sizeof(ms), "%lld", (long long)b2_now_ms());
	json_object_object_add(info, "src_last_modified_millis",
			       json_object_new_string(ms));
	json_object_object_add(args, "bucketId", json_object_new_string(b->bucket_id));
	json_object_object_add(args, "fileName", json_object_new_string(p->name));
	json_object_object_add(args, "contentType",
			       json_object_new_string("application/octet-stream"));
	json_object_object_add(args, "fileInfo", info);
	if (b->lock_days > 0) {
		fr = json_object_new_object();
		json_object_object_add(fr, "mode", json_object_new_string(b->lock_mode));
		json_object_object_add(fr, "retainUntilTimestamp",
				       json_object_new_int64(b2_lock_ms(b)));
		json_object_object_add(args, "fileRetention", fr);
	}
	ret = b2_api(b, "b2_start_large_file", args, &out, p->name, err);
	json_object_put(args);
	if (ret)
		return ret;
	if (b2_json_str(out, "fileId"))
		p->file_id = strdup(b2_json_str(out, "fileId"));
	json_object_put(out);
	if (!p->file_id)
		return pgkeep_fail(err, PGKEEP_EIO,
				   "b2: start large file %s: bucket %s: no fileId in answer",
				   p->name, b->bucket);
	return 0;
}

/* Send the buffer as the next part, starting the large file if needed. */
static int b2_large_part(struct b2_put *p, char *err)
{
	char (*ns)[41];
	int ret;

	if (!p->file_id && (ret = b2_large_start(p, err)))
		return ret;
	if (p->nparts == 10000)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: %s: more than 10000 parts; raise part_size", p->name);
	if (p->nparts == p->sha_cap) {
		p->sha_cap = p->sha_cap ? p->sha_cap * 2 : 16;
		ns = realloc(p->sha, p->sha_cap * sizeof(*p->sha));
		if (!ns)
			return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		p->sha = ns;
	}
	b2_sha1_hex(p->buf, p->len, p->sha[p->nparts]);
	ret = b2_upload(p, p->buf, p->len, (unsigned)p->nparts + 1,
			p->sha[p->nparts], err);
	if (ret)
		return ret;
	p->nparts++;
	p->len = 0;
	return 0;
}

static int b2_large_finish(struct b2_put *p, char *err)
{
	json_object *args = json_object_new_object(), *arr, *out = NULL;
	size_t i;
	int ret;

	arr = json_object_new_array();
	for (i = 0; i < p->nparts; i++)
		json_object_array_add(arr, json_object_new_string(p->sha[i]));
	json_object_object_add(args, "fileId", json_object_new_string(p->file_id));
	json_object_object_add(args, "partSha1Array", arr);
	ret = b2_api(p->b, "b2_finish_large_file", args, &out, p->name, err);
	json_object_put(args);
	if (!ret && b2_json_str(out, "fileId"))
		p->new_id = strdup(b2_json_str(out, "fileId"));
	json_object_put(out);
	return ret;
}

/* Best effort: the parts of an abandoned large file cost storage. */
static void b2_large_cancel(struct b2_put *p)
{
	char err[PGKEEP_ERRLEN];
	json_object *args;

	if (!p->file_id)
		return;
	args = json_object_new_object();
	json_object_object_add(args, "fileId", json_object_new_string(p->file_id));
	if (b2_api(p->b, "b2_cancel_large_file", args, NULL, p->name, err))
		b2_log(PGKEEP_LOG_WARNING, "%s (unfinished large file %s left behind)",
		       err, p->file_id);
	json_object_put(args);
	free(p->file_id);
	p->file_id = NULL;
}

static void b2_put_free(struct b2_put *p)
{
	if (p->part_url)
		b2_upurl_free(p->part_url);
	free(p->name);
	free(p->enc);
	free(p->buf);
	free(p->sha);
	free(p->file_id);
	free(p->new_id);
	free(p);
}

int b2_put_begin(void *handle, const char *key, uint64_t size_hint,
		 unsigned flags, void **put, char *err)
{
	struct b2 *b = handle;
	struct b2_put *p;
	json_object *f = NULL;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	p->b = b;
	p->flags = flags;
	ret = b2_key_name(b, key, false, &p->name, err);
	if (ret)
		goto out_free;
	p->enc = b2_name_encode(p->name);
	if (!p->enc) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		goto out_free;
	}
	if (!b2_name_valid(p->name)) {
		ret = pgkeep_fail(err, PGKEEP_EINVAL,
				  "b2: '%s' is not a valid B2 file name", p->name);
		goto out_free;
	}
	/* the buffer grows as data comes; the hint only saves reallocations */
	if (size_hint != UINT64_MAX && size_hint > 0) {
		p->cap = size_hint < b->part_size ? (size_t)size_hint : (size_t)b->part_size;
		p->buf = malloc(p->cap);
		if (!p->buf)
			p->cap = 0;
	}
	if (flags & PGKEEP_PUT_IF_ABSENT) {
		ret = b2_find_file(b, p->name, &f, err);
		json_object_put(f);
		if (!ret) {
			ret = pgkeep_fail(err, PGKEEP_EEXISTS,
					  "b2: %s already exists in bucket %s",
					  p->name, b->bucket);
			goto out_free;
		}
		if (ret != PGKEEP_ENOTFOUND)
			goto out_free;
	}
	*put = p;
	return 0;
out_free:
	b2_put_free(p);
	return ret;
}

static int b2_put_grow(struct b2_put *p, size_t want, char *err)
{
	size_t cap = p->cap ? p->cap : 65536;
	unsigned char *nb;

	while (cap < want)
		cap *= 2;
	if (cap > p->b->part_size)
		cap = (size_t)p->b->part_size;
	nb = realloc(p->buf, cap);
	if (!nb)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	p->buf = nb;
	p->cap = cap;
	return 0;
}

int b2_put_write(void *put, const void *buf, size_t len, char *err)
{
	struct b2_put *p = put;
	const unsigned char *in = buf;
	size_t part = (size_t)p->b->part_size, n;
	int ret;

	while (len > 0) {
		/* a full buffer with more to come is a part, never the last one */
		if (p->len == part && (ret = b2_large_part(p, err)))
			return ret;
		n = part - p->len < len ? part - p->len : len;
		if (p->len + n > p->cap && (ret = b2_put_grow(p, p->len + n, err)))
			return ret;
		memcpy(p->buf + p->len, in, n);
		p->len += n;
		in += n;
		len -= n;
	}
	return 0;
}

/*
 * B2 has no conditional upload.  After an if-absent upload, look at the
 * name's versions: when ours is not the oldest, another writer got there
 * first; delete ours so that theirs is what readers see, and report EEXISTS.
 */
static int b2_put_resolve(struct b2_put *p, char *err)
{
	char *oldest = NULL;
	int count, ret;

	ret = b2_oldest_version(p->b, p->name, &oldest, &count, err);
	if (ret)
		return ret;
	if (count > 1 && oldest && p->new_id && strcmp(oldest, p->new_id)) {
		ret = b2_delete_versions(p->b, p->name, p->new_id, NULL, err);
		if (!ret)
			ret = pgkeep_fail(err, PGKEEP_EEXISTS,
					  "b2: %s already exists in bucket %s",
					  p->name, p->b->bucket);
	}
	free(oldest);
	return ret;
}

int b2_put_commit(void *put, char *err)
{
	struct b2_put *p = put;
	char sha[41];
	int ret;

	if (p->file_id || p->nparts) {
		ret = b2_large_part(p, err);
		if (!ret)
			ret = b2_large_finish(p, err);
		if (ret)
			b2_large_cancel(p);
	} else {
		b2_sha1_hex(p->buf ? (void *)p->buf : (void *)"", p->len, sha);
		ret = b2_upload(p, p->buf ? (void *)p->buf : (void *)"", p->len, 0,
				sha, err);
	}
	if (!ret && (p->flags & PGKEEP_PUT_IF_ABSENT))
		ret = b2_put_resolve(p, err);
	b2_put_free(p);
	return ret;
}

void b2_put_abort(void *put)
{
	struct b2_put *p = put;

	b2_large_cancel(p);
	b2_put_free(p);
}

/*
 * pgkeep storage plugin for Backblaze B2's native API (v2): open and close, the
 * ops table, and the read side (get, stat, list) plus deletion and file lock.
 * Settings live in b2opts.c, uploads in b2put.c, the API plumbing in b2api.c
 * and b2http.c.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "b2.h"
#include "b2name.h"
#include "common/numparse.h"

static const struct pgkeep_host *b2_host;
static pthread_once_t b2_curl_once = PTHREAD_ONCE_INIT;

void b2_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!b2_host || !b2_host->log)
		return;
	va_start(ap, fmt);
	b2_host->log(level, fmt, ap);
	va_end(ap);
}

char *b2_full_name(const struct b2 *b, const char *key)
{
	char *s;

	return asprintf(&s, "%s%s", b->prefix, key) < 0 ? NULL : s;
}

int b2_key_name(const struct b2 *b, const char *key, bool prefix, char **name, char *err)
{
	if (!(prefix ? pgkeep_prefix_valid(key) : pgkeep_key_valid(key)))
		return pgkeep_fail(err, PGKEEP_EINVAL, "b2: invalid %s '%s'",
				   prefix ? "prefix" : "key", key);
	*name = b2_full_name(b, key);
	if (!*name)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	return PGKEEP_OK;
}

/* --- settings ---------------------------------------------------------- */

static void b2_free(struct b2 *b)
{
	struct b2_upurl *u;

	if (!b)
		return;
	while ((u = b->upurls)) {
		b->upurls = u->next;
		b2_upurl_free(u);
	}
	b2_curl_pool_free(b);
	if (b->app_key)
		explicit_bzero(b->app_key, strlen(b->app_key));
	free(b->key_id);
	free(b->app_key);
	free(b->bucket);
	free(b->prefix);
	free(b->auth_url);
	free(b->test_mode);
	free(b->account_id);
	free(b->token);
	free(b->api_url);
	free(b->download_url);
	free(b->bucket_id);
	pthread_mutex_destroy(&b->auth_lock);
	pthread_mutex_destroy(&b->pool_lock);
	free(b);
}

static void b2_curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int b2_open(void **handle, const struct pgkeep_option *opts,
		   size_t nopts, char *err)
{
	struct b2 *b;
	size_t i;
	int ret;

	pthread_once(&b2_curl_once, b2_curl_init);
	b = calloc(1, sizeof(*b));
	if (!b)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	pthread_mutex_init(&b->auth_lock, NULL);
	pthread_mutex_init(&b->pool_lock, NULL);
	b->connect_timeout = 10;
	b->timeout = 60;
	b->retry_max = PGKEEP_RETRY_ATTEMPTS;
	b->retry_base_ms = 1000;
	for (i = 0; i < nopts; i++) {
		ret = b2_option(b, opts[i].key, opts[i].value, err);
		if (ret)
			goto out_free;
	}
	ret = b2_settle(b, err);
	if (ret)
		goto out_free;
	ret = b2_authorize(b, 0, err);
	if (ret)
		goto out_free;
	if (b->part_size < b->min_part) {
		ret = pgkeep_fail(err, PGKEEP_EINVAL,
				  "b2: part_size %llu is below B2's minimum of %llu bytes",
				  (unsigned long long)b->part_size,
				  (unsigned long long)b->min_part);
		goto out_free;
	}
	ret = b2_find_bucket(b, err);
	if (ret)
		goto out_free;
	*handle = b;
	return 0;
out_free:
	b2_free(b);
	return ret;
}

static void b2_close(void *handle)
{
	b2_free(handle);
}

/* --- listing ----------------------------------------------------------- */

/*
 * One page of b2_list_file_names or b2_list_file_versions from start (and
 * start_id for versions) under prefix.
 */
static int b2_list_page(struct b2 *b, const char *op, const char *prefix,
			const char *start, const char *start_id, int count,
			json_object **out, const char *what, char *err)
{
	json_object *args = json_object_new_object();
	int ret;

	json_object_object_add(args, "bucketId", json_object_new_string(b->bucket_id));
	json_object_object_add(args, "prefix", json_object_new_string(prefix));
	json_object_object_add(args, "startFileName", json_object_new_string(start));
	if (start_id)
		json_object_object_add(args, "startFileId",
				       json_object_new_string(start_id));
	json_object_object_add(args, "maxFileCount", json_object_new_int(count));
	ret = b2_api(b, op, args, out, what, err);
	json_object_put(args);
	return ret;
}

/* The visible (newest, not hidden) version of name, or PGKEEP_ENOTFOUND. */
int b2_find_file(struct b2 *b, const char *name, json_object **file, char *err)
{
	json_object *out = NULL, *files, *f;
	int ret;

	ret = b2_list_page(b, "b2_list_file_names", name, name, NULL, 1, &out,
			   name, err);
	if (ret)
		return ret;
	ret = pgkeep_fail(err, PGKEEP_ENOTFOUND, "b2: %s: not found in bucket %s",
			  name, b->bucket);
	files = b2_json_array(out, "files");
	if (files && json_object_array_length(files) > 0) {
		f = json_object_array_get_idx(files, 0);
		if (!strcmp(b2_json_str(f, "fileName") ?: "", name)) {
			*file = json_object_get(f);
			ret = 0;
		}
	}
	json_object_put(out);
	return ret;
}

static int b2_stat(void *handle, const char *key, struct pgkeep_stat *st,
		   char *err)
{
	struct b2 *b = handle;
	json_object *f = NULL;
	char *name;
	int ret;

	ret = b2_key_name(b, key, false, &name, err);
	if (ret)
		return ret;
	ret = b2_find_file(b, name, &f, err);
	if (!ret) {
		st->size = (uint64_t)b2_json_int(f, "contentLength", 0);
		st->mtime = b2_json_int(f, "uploadTimestamp", 0) / 1000;
		json_object_put(f);
	}
	free(name);
	return ret;
}

static int b2_list(void *handle, const char *prefix, pgkeep_list_fn cb,
		   void *payload, char *err)
{
	struct b2 *b = handle;
	json_object *out = NULL, *files, *f;
	struct pgkeep_stat st;
	char *full, *start;
	size_t i, n, plen = strlen(b->prefix);
	const char *fname;
	int ret;

	ret = b2_key_name(b, prefix, true, &full, err);
	if (ret)
		return ret;
	start = strdup(full);
	while (start && !ret) {
		ret = b2_list_page(b, "b2_list_file_names", full, start, NULL,
				   1000, &out, full, err);
		if (ret)
			break;
		free(start);
		start = NULL;
		files = b2_json_array(out, "files");
		n = files ? json_object_array_length(files) : 0;
		for (i = 0; i < n && !ret; i++) {
			f = json_object_array_get_idx(files, i);
			fname = b2_json_str(f, "fileName");
			if (!fname || strncmp(fname, full, strlen(full)))
				continue;
			st.size = (uint64_t)b2_json_int(f, "contentLength", 0);
			st.mtime = b2_json_int(f, "uploadTimestamp", 0) / 1000;
			ret = cb(payload, fname + plen, &st);
		}
		if (!ret && b2_json_str(out, "nextFileName") && n > 0)
			start = strdup(b2_json_str(out, "nextFileName"));
		json_object_put(out);
		out = NULL;
	}
	free(start);
	free(full);
	return ret;
}

/* --- deletion ---------------------------------------------------------- */

/*
 * Every version of exactly name (uploads, hide markers, unfinished large
 * files), newest first, into a new JSON array.
 */
static int b2_versions(struct b2 *b, const char *name, json_object **arr,
		       char *err)
{
	json_object *out = NULL, *files, *f;
	char *start = strdup(name), *start_id = NULL;
	const char *nn, *ni;
	size_t i, n;
	int ret = 0;

	*arr = json_object_new_array();
	while (start) {
		ret = b2_list_page(b, "b2_list_file_versions", name, start,
				   start_id, 1000, &out, name, err);
		free(start);
		free(start_id);
		start = start_id = NULL;
		if (ret)
			break;
		files = b2_json_array(out, "files");
		n = files ? json_object_array_length(files) : 0;
		for (i = 0; i < n; i++) {
			f = json_object_array_get_idx(files, i);
			if (!strcmp(b2_json_str(f, "fileName") ?: "", name))
				json_object_array_add(*arr, json_object_get(f));
		}
		nn = b2_json_str(out, "nextFileName");
		ni = b2_json_str(out, "nextFileId");
		if (nn && ni && !strcmp(nn, name) && n > 0) {
			start = strdup(nn);
			start_id = strdup(ni);
		}
		json_object_put(out);
		out = NULL;
	}
	if (ret) {
		json_object_put(*arr);
		*arr = NULL;
	}
	return ret;
}

static int b2_delete_version(struct b2 *b, const char *name, const char *id,
			     char *err)
{
	json_object *args = json_object_new_object();
	int ret;

	json_object_object_add(args, "fileName", json_object_new_string(name));
	json_object_object_add(args, "fileId", json_object_new_string(id));
	ret = b2_api(b, "b2_delete_file_version", args, NULL, name, err);
	json_object_put(args);
	/* someone else deleted it first: the outcome is the same */
	return ret == PGKEEP_ENOTFOUND ? 0 : ret;
}

/*
 * Delete versions of name: all of them, or only only_id.  *versions (when
 * not NULL) receives how many versions were seen.
 */
int b2_delete_versions(struct b2 *b, const char *name, const char *only_id,
		       int *versions, char *err)
{
	json_object *arr = NULL, *f;
	const char *id;
	size_t i, n;
	int ret;

	ret = b2_versions(b, name, &arr, err);
	if (ret)
		return ret;
	n = json_object_array_length(arr);
	if (versions)
		*versions = (int)n;
	for (i = 0; i < n && !ret; i++) {
		f = json_object_array_get_idx(arr, i);
		id = b2_json_str(f, "fileId");
		if (!id || (only_id && strcmp(id, only_id)))
			continue;
		ret = b2_delete_version(b, name, id, err);
	}
	json_object_put(arr);
	return ret;
}

/* The oldest uploaded version of name newer than any hide marker. */
int b2_oldest_version(struct b2 *b, const char *name, char **id, int *count,
		      char *err)
{
	json_object *arr = NULL, *f;
	const char *action, *fid;
	size_t i, n;
	int ret;

	*id = NULL;
	*count = 0;
	ret = b2_versions(b, name, &arr, err);
	if (ret)
		return ret;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		f = json_object_array_get_idx(arr, i);
		action = b2_json_str(f, "action") ?: "";
		fid = b2_json_str(f, "fileId");
		if (!strcmp(action, "hide"))
			break;
		if (strcmp(action, "upload") || !fid)
			continue;
		(*count)++;
		free(*id);
		*id = strdup(fid);
	}
	json_object_put(arr);
	return 0;
}

static int b2_remove(void *handle, const char *key, char *err)
{
	struct b2 *b = handle;
	char *name;
	int ret;

	ret = b2_key_name(b, key, false, &name, err);
	if (ret)
		return ret;
	ret = b2_delete_versions(b, name, NULL, NULL, err);
	free(name);
	return ret;
}

/* --- download ---------------------------------------------------------- */

struct b2_get {
	struct b2 *b;
	const char *name;
	char *enc;
	uint64_t offset, length;
	EVP_MD_CTX *sha;
};

static int b2_get_check_sha(struct b2_get *g, struct b2_resp *rs, char *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	const char *want = rs->sha1;
	char hex[41];
	unsigned mdlen = 0, i;

	if (!g->sha)
		return 0;
	if (!strcmp(want, "none") || !want[0])
		want = rs->large_sha1;
	if (!strncmp(want, "unverified:", 11))
		want += 11;
	if (strlen(want) != 40)
		return 0;	/* nothing to compare with */
	EVP_DigestFinal_ex(g->sha, md, &mdlen);
	for (i = 0; i < mdlen && i < 20; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[40] = '\0';
	if (strcasecmp(hex, want))
		return pgkeep_fail(err, PGKEEP_ECORRUPT,
				   "b2: get %s: bucket %s: content SHA-1 %s does not match the stored %s",
				   g->name, g->b->bucket, hex, want);
	return 0;
}

static int b2_get_once(struct b2_get *g, pgkeep_sink_fn sink, void *payload,
		       struct b2_resp *rs, unsigned *gen, char *err)
{
	struct b2_req rq = { .method = "GET", .sink = sink, .payload = payload };
	char *token = NULL, *base = NULL, *url = NULL, *auth = NULL;
	char range[80];
	uint64_t start = g->offset + rs->delivered;
	int ret;

	ret = b2_auth_snapshot(g->b, true, &token, &base, gen, err);
	if (ret)
		return ret;
	if (asprintf(&url, "%s/file/%s/%s", base, g->b->bucket, g->enc) < 0 ||
	    asprintf(&auth, "Authorization: %s", token) < 0) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		goto out_free;
	}
	rq.url = url;
	rq.headers = curl_slist_append(NULL, auth);
	if (g->length != UINT64_MAX) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
			 (unsigned long long)start,
			 (unsigned long long)(g->offset + g->length - 1));
		rq.headers = curl_slist_append(rq.headers, range);
	} else if (start > 0) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
			 (unsigned long long)start);
		rq.headers = curl_slist_append(rq.headers, range);
	}
	rs->sha_ctx = g->sha;
	ret = b2_http(g->b, &rq, rs);
	curl_slist_free_all(rq.headers);
	if (ret == PGKEEP_ERETRY)
		ret = 0;
out_free:
	free(url);
	free(auth);
	free(token);
	free(base);
	return ret;
}

static int b2_get(void *handle, const char *key, uint64_t offset,
		  uint64_t length, pgkeep_sink_fn sink, void *payload, char *err)
{
	struct b2_get g = { .b = handle, .offset = offset, .length = length };
	struct b2_resp rs = { 0 };
	struct pgkeep_stat st;
	char *name;
	int attempt = 0, reauth = 0, ret;
	unsigned gen = 0;

	ret = b2_key_name(g.b, key, false, &name, err);
	if (ret)
		return ret;
	g.name = name;
	if (length == 0 || (length != UINT64_MAX && offset + length < offset)) {
		/* nothing to fetch, but absence must still be reported */
		ret = b2_stat(handle, key, &st, err);
		goto out_name;
	}
	g.enc = b2_name_encode(name);
	if (offset == 0 && length == UINT64_MAX) {
		g.sha = EVP_MD_CTX_new();
		if (g.sha && !EVP_DigestInit_ex(g.sha, EVP_sha1(), NULL)) {
			EVP_MD_CTX_free(g.sha);
			g.sha = NULL;
		}
	}
	if (!g.enc) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		goto out_free;
	}
	for (;;) {
		ret = b2_get_once(&g, sink, payload, &rs, &gen, err);
		if (ret)
			goto out_free;
		if (rs.status == 200 || rs.status == 206) {
			ret = b2_get_check_sha(&g, &rs, err);
			break;
		}
		if (rs.status == 404) {
			ret = pgkeep_fail(err, PGKEEP_ENOTFOUND,
					  "b2: get %s: not found in bucket %s",
					  name, g.b->bucket);
			break;
		}
		if (rs.status == 416) {
			/* past the end of an object that exists: no bytes */
			ret = b2_stat(handle, key, &st, err);
			break;
		}
		if (b2_auth_expired(&rs) && reauth < B2_REAUTH_TRIES) {
			reauth++;
			ret = b2_authorize(g.b, gen, err);
			if (ret)
				break;
			continue;
		}
		if (!b2_status_retryable(rs.status) || ++attempt >= g.b->retry_max) {
			char what[PGKEEP_ERRLEN / 2];

			snprintf(what, sizeof(what), "get %s", name);
			ret = b2_fail_resp(g.b, what, &rs, err);
			break;
		}
		b2_log(PGKEEP_LOG_DEBUG, "b2: get %s: %ld %s, retrying from byte %llu",
		       name, rs.status, rs.code[0] ? rs.code : rs.curl_err,
		       (unsigned long long)(offset + rs.delivered));
		b2_backoff(g.b, attempt - 1, rs.retry_after);
	}
out_free:
	b2_resp_free(&rs);
	EVP_MD_CTX_free(g.sha);
	free(g.enc);
out_name:
	free(name);
	return ret;
}

/* --- file lock --------------------------------------------------------- */

static int b2_lock_until(void *handle, const char *key, int64_t until,
			 char *err)
{
	struct b2 *b = handle;
	json_object *f = NULL, *args, *ret_o;
	char *name;
	int ret;

	ret = b2_key_name(b, key, false, &name, err);
	if (ret)
		return ret;
	ret = b2_find_file(b, name, &f, err);
	if (ret)
		goto out_name;
	args = json_object_new_object();
	ret_o = json_object_new_object();
	json_object_object_add(ret_o, "mode", json_object_new_string(b->lock_mode));
	json_object_object_add(ret_o, "retainUntilTimestamp",
			       json_object_new_int64(until * 1000));
	json_object_object_add(args, "fileName", json_object_new_string(name));
	json_object_object_add(args, "fileId",
			       json_object_new_string(b2_json_str(f, "fileId") ?: ""));
	json_object_object_add(args, "fileRetention", ret_o);
	ret = b2_api(b, "b2_update_file_retention", args, NULL, name, err);
	json_object_put(args);
	json_object_put(f);
out_name:
	free(name);
	return ret;
}

static int b2_locked_until(void *handle, const char *key, int64_t *until,
			   char *err)
{
	struct b2 *b = handle;
	json_object *f = NULL, *fr, *val;
	char *name;
	int ret;

	ret = b2_key_name(b, key, false, &name, err);
	if (ret)
		return ret;
	*until = 0;
	ret = b2_find_file(b, name, &f, err);
	if (ret)
		goto out_name;
	if (!json_object_object_get_ex(f, "fileRetention", &fr) ||
	    !json_object_object_get_ex(fr, "value", &val) || !val) {
		ret = pgkeep_fail(err, PGKEEP_EAUTH,
				  "b2: %s: key %s may not read file retention in bucket %s",
				  name, b->key_id, b->bucket);
	} else if (b2_json_str(val, "mode")) {
		*until = b2_json_int(val, "retainUntilTimestamp", 0) / 1000;
	}
	json_object_put(f);
out_name:
	free(name);
	return ret;
}

static const struct pgkeep_storage_ops b2_ops = {
	PGKEEP_STORAGE_OPS_INIT,
	.name = "b2",
	/* if-absent is check-then-resolve, not atomic: see README.md */
	.features = PGKEEP_FEAT_LOCK | PGKEEP_FEAT_RANGE_GET,
	.open = b2_open,
	.close = b2_close,
	.put_begin = b2_put_begin,
	.put_write = b2_put_write,
	.put_commit = b2_put_commit,
	.put_abort = b2_put_abort,
	.get = b2_get,
	.stat = b2_stat,
	.list = b2_list,
	.remove = b2_remove,
	.lock_until = b2_lock_until,
	.locked_until = b2_locked_until,
};

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host)
{
	b2_host = host;
	return &b2_ops;
}

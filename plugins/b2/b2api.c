/*
 * B2 API calls: authorisation (shared by all threads, refreshed under a
 * mutex when B2 says the token expired), JSON calls with B2's retry rules,
 * the bucket id, and the pool of upload URLs, one per thread at a time.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b2.h"

const char *b2_json_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t b2_json_int(json_object *o, const char *key, int64_t dflt)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int64(v);
}

/* The array under key, or NULL: json-c asserts when asked the length of anything else. */
json_object *b2_json_array(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

bool b2_auth_expired(const struct b2_resp *rs)
{
	return rs->status == 401 && (!strcmp(rs->code, "expired_auth_token") ||
				     !strcmp(rs->code, "bad_auth_token") ||
				     !rs->code[0]);
}

/*
 * Every B2 request carries a secret (the application key, then tokens that
 * give the key's rights), so a URL that is not https is refused unless the
 * repository says allow_insecure = yes.  Checked for the URLs B2 hands out
 * too, so that an https api_url cannot be steered onto plain HTTP.
 */
int b2_url_check(const struct b2 *b, const char *url, const char *what, char *err)
{
	if (!strncasecmp(url, "https://", 8))
		return 0;
	if (!strncasecmp(url, "http://", 7)) {
		if (b->allow_insecure)
			return 0;
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: %s %s is plain HTTP, which would send the application key or its tokens unencrypted: use https://, or set allow_insecure = yes to accept that",
				   what, url);
	}
	return pgkeep_fail(err, PGKEEP_EINVAL, "b2: %s %s must start with https://", what, url);
}

/* Turn a final B2 answer into a code and a message naming what and where. */
int b2_fail_resp(struct b2 *b, const char *what, const struct b2_resp *rs,
		 char *err)
{
	int code = PGKEEP_EIO;

	if (rs->status == 0)
		return pgkeep_fail(err, PGKEEP_ERETRY,
				   "b2: %s: bucket %s: %s", what, b->bucket,
				   rs->curl_err[0] ? rs->curl_err : "no answer");
	if (rs->status == 401)
		code = PGKEEP_EAUTH;
	else if (!strcmp(rs->code, "storage_cap_exceeded"))
		code = PGKEEP_ENOSPC;
	else if (rs->status == 404 || !strcmp(rs->code, "file_not_present") ||
		 !strcmp(rs->code, "no_such_file"))
		code = PGKEEP_ENOTFOUND;
	else if (b2_status_retryable(rs->status))
		code = PGKEEP_ERETRY;
	if (!strcmp(rs->code, "access_denied"))
		code = PGKEEP_EIO;
	return pgkeep_fail(err, code, "b2: %s: bucket %s: %ld %s%s%s", what,
			   b->bucket, rs->status,
			   rs->code[0] ? rs->code : "(no code)",
			   rs->message[0] ? ": " : "", rs->message);
}

static int b2_take_auth(struct b2 *b, json_object *o, char *err)
{
	const char *acct = b2_json_str(o, "accountId");
	const char *tok = b2_json_str(o, "authorizationToken");
	const char *api = b2_json_str(o, "apiUrl");
	const char *dl = b2_json_str(o, "downloadUrl");
	char *n_acct, *n_tok, *n_api, *n_dl;

	if (!acct || !tok || !api || !dl)
		return pgkeep_fail(err, PGKEEP_EIO,
				   "b2: authorize: answer from %s lacks accountId, authorizationToken, apiUrl or downloadUrl",
				   b->auth_url);
	if (b2_url_check(b, api, "apiUrl", err) || b2_url_check(b, dl, "downloadUrl", err))
		return PGKEEP_EIO;
	n_acct = strdup(acct);
	n_tok = strdup(tok);
	n_api = strdup(api);
	n_dl = strdup(dl);
	if (!n_acct || !n_tok || !n_api || !n_dl) {
		free(n_acct);
		free(n_tok);
		free(n_api);
		free(n_dl);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	}
	free(b->account_id);
	free(b->token);
	free(b->api_url);
	free(b->download_url);
	b->account_id = n_acct;
	b->token = n_tok;
	b->api_url = n_api;
	b->download_url = n_dl;
	b->min_part = (uint64_t)b2_json_int(o, "absoluteMinimumPartSize",
					    5000000);
	if (!b->part_size)
		b->part_size = (uint64_t)b2_json_int(o, "recommendedPartSize",
						     100000000);
	b->auth_gen++;
	return 0;
}

/* The bucket the key is restricted to, if any, saves a b2_list_buckets. */
static int b2_take_allowed(struct b2 *b, json_object *o, char *err)
{
	json_object *allowed;
	const char *id, *name;

	if (b->bucket_id || !json_object_object_get_ex(o, "allowed", &allowed))
		return 0;
	id = b2_json_str(allowed, "bucketId");
	name = b2_json_str(allowed, "bucketName");
	if (!id)
		return 0;
	if (name && strcmp(name, b->bucket))
		return pgkeep_fail(err, PGKEEP_EAUTH,
				   "b2: key %s is restricted to bucket %s, not %s",
				   b->key_id, name, b->bucket);
	b->bucket_id = strdup(id);
	return b->bucket_id ? 0 : pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
}

/* Caller holds auth_lock. */
static int b2_authorize_locked(struct b2 *b, char *err)
{
	struct b2_req rq = { .method = "GET", .user = b->key_id,
			     .password = b->app_key };
	struct b2_resp rs = { 0 };
	json_object *o = NULL;
	char *url;
	int attempt, ret;

	if (asprintf(&url, "%s%sb2_authorize_account", b->auth_url,
		     B2_API_PATH) < 0)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	rq.url = url;
	for (attempt = 0;; attempt++) {
		ret = b2_http(b, &rq, &rs);
		if (ret == PGKEEP_ENOMEM)
			break;
		if (rs.status == 200 || !b2_status_retryable(rs.status) ||
		    attempt + 1 >= b->retry_max)
			break;
		b2_backoff(b, attempt, rs.retry_after);
	}
	if (rs.status != 200) {
		ret = b2_fail_resp(b, "authorize", &rs, err);
		if (rs.status == 401 || rs.status == 400)
			ret = pgkeep_fail(err, PGKEEP_EAUTH,
					  "b2: authorize at %s refused key %s: %ld %s",
					  b->auth_url, b->key_id, rs.status,
					  rs.code[0] ? rs.code : "(no code)");
		goto out_free;
	}
	o = json_tokener_parse(rs.body ? rs.body : "");
	if (!o) {
		ret = pgkeep_fail(err, PGKEEP_EIO,
				  "b2: authorize: unreadable answer from %s",
				  b->auth_url);
		goto out_free;
	}
	ret = b2_take_auth(b, o, err);
	if (!ret)
		ret = b2_take_allowed(b, o, err);
	json_object_put(o);
out_free:
	b2_resp_free(&rs);
	free(url);
	return ret;
}

/*
 * Authorise unless another thread already did since the caller saw
 * generation seen_gen; so a burst of expired-token answers costs one call.
 */
int b2_authorize(struct b2 *b, unsigned seen_gen, char *err)
{
	int ret = 0;

	pthread_mutex_lock(&b->auth_lock);
	if (!b->token || b->auth_gen == seen_gen)
		ret = b2_authorize_locked(b, err);
	pthread_mutex_unlock(&b->auth_lock);
	if (!ret)
		b2_log(PGKEEP_LOG_DEBUG, "b2: authorized at %s", b->auth_url);
	return ret;
}

/* Copy the token and the API or download URL, authorising first if needed. */
int b2_auth_snapshot(struct b2 *b, bool download, char **token, char **url,
		     unsigned *gen, char *err)
{
	int ret = 0;

	pthread_mutex_lock(&b->auth_lock);
	if (!b->token)
		ret = b2_authorize_locked(b, err);
	if (!ret) {
		*token = strdup(b->token);
		*url = strdup(download ? b->download_url : b->api_url);
		*gen = b->auth_gen;
		if (!*token || !*url) {
			free(*token);
			free(*url);
			ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		}
	}
	pthread_mutex_unlock(&b->auth_lock);
	return ret;
}

static int b2_api_once(struct b2 *b, const char *op, const char *body,
		       struct b2_resp *rs, unsigned *gen, char *err)
{
	struct b2_req rq = { .method = "POST", .body = body,
			     .body_len = strlen(body) };
	char *token = NULL, *base = NULL, *url = NULL, *auth = NULL;
	int ret;

	ret = b2_auth_snapshot(b, false, &token, &base, gen, err);
	if (ret)
		return ret;
	if (asprintf(&url, "%s%s%s", base, B2_API_PATH, op) < 0 ||
	    asprintf(&auth, "Authorization: %s", token) < 0) {
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
		goto out_free;
	}
	rq.url = url;
	rq.headers = curl_slist_append(NULL, auth);
	rq.headers = curl_slist_append(rq.headers,
				       "Content-Type: application/json");
	ret = b2_http(b, &rq, rs);
	curl_slist_free_all(rq.headers);
	if (ret > 0 || ret == PGKEEP_ERETRY)
		ret = 0;	/* rs->status == 0 tells the caller */
out_free:
	free(url);
	free(auth);
	free(token);
	free(base);
	return ret;
}

/*
 * POST {apiUrl}/b2api/v2/op with args.  Re-authorises on an expired or bad
 * token, backs off on 408, 429 and 5xx (honouring Retry-After), and fails at
 * once on anything else.  what names the object for the message.
 */
int b2_api(struct b2 *b, const char *op, json_object *args, json_object **out,
	   const char *what, char *err)
{
	const char *body = json_object_to_json_string_ext(args,
							  JSON_C_TO_STRING_PLAIN);
	struct b2_resp rs = { 0 };
	char label[PGKEEP_ERRLEN / 2];
	int attempt = 0, reauth = 0, ret;
	unsigned gen = 0;

	snprintf(label, sizeof(label), "%s%s%s", op, what && *what ? " " : "",
		 what ? what : "");
	for (;;) {
		ret = b2_api_once(b, op, body, &rs, &gen, err);
		if (ret)
			goto out_free;
		if (rs.status == 200)
			break;
		if (b2_auth_expired(&rs) && reauth < B2_REAUTH_TRIES) {
			reauth++;
			ret = b2_authorize(b, gen, err);
			if (ret)
				goto out_free;
			continue;
		}
		if (!b2_status_retryable(rs.status) ||
		    ++attempt >= b->retry_max) {
			ret = b2_fail_resp(b, label, &rs, err);
			goto out_free;
		}
		b2_log(PGKEEP_LOG_DEBUG, "b2: %s: %ld %s, retrying", label,
		       rs.status, rs.code[0] ? rs.code : rs.curl_err);
		b2_backoff(b, attempt - 1, rs.retry_after);
	}
	if (out) {
		*out = json_tokener_parse(rs.body ? rs.body : "");
		if (!*out)
			ret = pgkeep_fail(err, PGKEEP_EIO,
					  "b2: %s: bucket %s: unreadable answer",
					  label, b->bucket);
	}
out_free:
	b2_resp_free(&rs);
	return ret;
}

int b2_find_bucket(struct b2 *b, char *err)
{
	json_object *args, *out = NULL, *buckets, *it;
	char *acct, *tok = NULL, *url = NULL;
	unsigned gen;
	int ret;

	ret = b2_auth_snapshot(b, false, &tok, &url, &gen, err);
	free(tok);
	free(url);
	if (ret)
		return ret;
	pthread_mutex_lock(&b->auth_lock);
	acct = strdup(b->account_id);
	ret = b->bucket_id != NULL;
	pthread_mutex_unlock(&b->auth_lock);
	if (ret || !acct) {
		free(acct);
		return acct ? 0 : pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	}
	args = json_object_new_object();
	json_object_object_add(args, "accountId", json_object_new_string(acct));
	json_object_object_add(args, "bucketName",
			       json_object_new_string(b->bucket));
	ret = b2_api(b, "b2_list_buckets", args, &out, "", err);
	json_object_put(args);
	free(acct);
	if (ret)
		return ret;
	buckets = b2_json_array(out, "buckets");
	if (buckets && json_object_array_length(buckets) > 0) {
		it = json_object_array_get_idx(buckets, 0);
		if (b2_json_str(it, "bucketId") &&
		    !strcmp(b2_json_str(it, "bucketName") ?: "", b->bucket))
			b->bucket_id = strdup(b2_json_str(it, "bucketId"));
	}
	json_object_put(out);
	if (!b->bucket_id)
		return pgkeep_fail(err, PGKEEP_EINVAL,
				   "b2: bucket %s not found for key %s",
				   b->bucket, b->key_id);
	return 0;
}

void b2_upurl_free(struct b2_upurl *u)
{
	if (!u)
		return;
	free(u->url);
	free(u->token);
	free(u);
}

/*
 * An upload URL for this thread alone: from the pool when op is
 * b2_get_upload_url and one is free, else a fresh one (part URLs belong to
 * one large file, so they are never pooled).
 */
int b2_upurl_take(struct b2 *b, const char *op, const char *id_key,
		  const char *id, const char *what, struct b2_upurl **uo,
		  char *err)
{
	json_object *args, *out = NULL;
	struct b2_upurl *u = NULL;
	const char *url, *tok;
	bool pooled = !strcmp(op, "b2_get_upload_url");
	int ret;

	*uo = NULL;
	if (pooled) {
		pthread_mutex_lock(&b->pool_lock);
		u = b->upurls;
		if (u)
			b->upurls = u->next;
		pthread_mutex_unlock(&b->pool_lock);
		if (u) {
			*uo = u;
			return 0;
		}
	}
	args = json_object_new_object();
	json_object_object_add(args, id_key, json_object_new_string(id));
	ret = b2_api(b, op, args, &out, what, err);
	if (ret)
		goto out_put;
	url = b2_json_str(out, "uploadUrl");
	tok = b2_json_str(out, "authorizationToken");
	if (!url || !tok) {
		ret = pgkeep_fail(err, PGKEEP_EIO, "b2: %s %s: bucket %s: no uploadUrl in answer",
				  op, what, b->bucket);
		goto out_put;
	}
	if (b2_url_check(b, url, "uploadUrl", err)) {
		ret = PGKEEP_EIO;
		goto out_put;
	}
	u = calloc(1, sizeof(*u));
	if (u) {
		u->url = strdup(url);
		u->token = strdup(tok);
	}
	if (!u || !u->url || !u->token) {
		b2_upurl_free(u);
		u = NULL;
		ret = pgkeep_fail(err, PGKEEP_ENOMEM, "b2: out of memory");
	}
	*uo = u;
out_put:
	json_object_put(out);
	json_object_put(args);
	return ret;
}

void b2_upurl_give(struct b2 *b, struct b2_upurl *u)
{
	pthread_mutex_lock(&b->pool_lock);
	u->next = b->upurls;
	b->upurls = u;
	pthread_mutex_unlock(&b->pool_lock);
}

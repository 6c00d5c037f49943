/*
 * The S3 plugin's SigV4 signer against AWS's published S3 example signatures
 * and URI-encoding cases.  With --sign it is the pgkeep side of the
 * differential test (tests/s3/diff-signer.py): it reads hex-encoded requests
 * on stdin and prints one Authorization value per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "../../plugins/s3/sigv4.h"

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"

static const struct sigv4_credentials example_cred = {
	AKID, SECRET, "us-east-1", "s3"
};

static const char *signature_of(const char *auth)
{
	const char *s = auth ? strstr(auth, "Signature=") : NULL;

	return s ? s + 10 : "(none)";
}

static void check_example(const char *what, const struct sigv4_request *req,
			  const char *want_signed, const char *want_sig)
{
	char *auth = sigv4_authorization(req, &example_cred, DATE);
	char want_prefix[256];

	snprintf(want_prefix, sizeof(want_prefix),
		 "AWS4-HMAC-SHA256 Credential=" AKID
		 "/20130524/us-east-1/s3/aws4_request, SignedHeaders=%s, ",
		 want_signed);
	ok(auth && strncmp(auth, want_prefix, strlen(want_prefix)) == 0,
	   "%s: credential scope and signed headers", what);
	is_str(signature_of(auth), want_sig, "%s: signature", what);
	free(auth);
}

static void test_aws_examples(void)
{
	char body_hash[65];
	const char *body = "Welcome to Amazon S3.";

	{
		const struct sigv4_header h[] = {
			{ "Host", HOST },
			{ "Range", "bytes=0-9" },
			{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
			{ "x-amz-date", DATE },
		};
		const struct sigv4_request req = {
			"GET", "/test.txt", NULL, 0, h, 4, SIGV4_EMPTY_SHA256
		};

		check_example("GET object with range", &req,
			      "host;range;x-amz-content-sha256;x-amz-date",
			      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	}
	{
		sigv4_sha256_hex(body, strlen(body), body_hash);
		is_str(body_hash,
		       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		       "sha256 of the PUT example body");
		const struct sigv4_header h[] = {
			{ "Host", HOST },
			{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
			{ "x-amz-date", DATE },
			{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
			{ "x-amz-content-sha256", body_hash },
		};
		/* The key is "test$file.text": the signer must encode '$'. */
		const struct sigv4_request req = {
			"PUT", "/test$file.text", NULL, 0, h, 5, body_hash
		};

		check_example("PUT object", &req,
			      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
			      "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	}
	{
		const struct sigv4_header h[] = {
			{ "x-amz-date", DATE },
			{ "host", HOST },
			{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		};
		const struct sigv4_param q[] = { { "lifecycle", NULL } };
		const struct sigv4_request req = {
			"GET", "/", q, 1, h, 3, SIGV4_EMPTY_SHA256
		};

		check_example("GET bucket lifecycle", &req,
			      "host;x-amz-content-sha256;x-amz-date",
			      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	}
	{
		const struct sigv4_header h[] = {
			{ "Host", HOST },
			{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
			{ "x-amz-date", DATE },
		};
		/* Given out of order on purpose: the signer sorts. */
		const struct sigv4_param q[] = { { "prefix", "J" }, { "max-keys", "2" } };
		const struct sigv4_request req = {
			"GET", "/", q, 2, h, 3, SIGV4_EMPTY_SHA256
		};

		check_example("list objects", &req,
			      "host;x-amz-content-sha256;x-amz-date",
			      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	}
}

static void check_encode(const char *in, int keep_slash, const char *want)
{
	char *got = sigv4_uri_encode(in, keep_slash);

	is_str(got, want, "uri-encode '%s'%s", in, keep_slash ? " (path)" : "");
	free(got);
}

static void test_encoding(void)
{
	check_encode("wal/00000001/000000010000000A00000042", 1,
		     "wal/00000001/000000010000000A00000042");
	check_encode("a b+c", 1, "a%20b%2Bc");
	check_encode("a/b", 0, "a%2Fb");
	check_encode("-._~", 1, "-._~");
	check_encode("100%", 1, "100%25");
	check_encode("k=v&x", 1, "k%3Dv%26x");
	check_encode("\xc3\xa9t\xc3\xa9", 1, "%C3%A9t%C3%A9");
	check_encode("//double//slash/", 1, "//double//slash/");
	check_encode("*", 1, "%2A");
	check_encode("", 1, "");
}

static void test_canonical(void)
{
	const struct sigv4_param q[] = {
		{ "prefix", "a b/c" }, { "list-type", "2" }, { "uploads", NULL },
		{ "continuation-token", "1/+x=" }, { "A", "z" },
	};
	char *cq = sigv4_canonical_query(q, 5);
	const struct sigv4_header h[] = {
		{ "X-Amz-Meta-Test-Two", "b" },
		{ "X-Amz-Meta-Test", "  a   b  " },
		{ "host", "h" },
		{ "X-Amz-Meta-Test", "c" },
	};
	const struct sigv4_request req = {
		"GET", "/bucket/odd key+", NULL, 0, h, 4, SIGV4_UNSIGNED_PAYLOAD
	};
	char *cr;

	is_str(cq, "A=z&continuation-token=1%2F%2Bx%3D&list-type=2&prefix=a%20b%2Fc&uploads=",
	       "canonical query: sorted, encoded, bare key as key=");
	free(cq);
	cr = sigv4_canonical_request(&req);
	/* x-amz-meta-test sorts before x-amz-meta-test-two (curl 7.88 got this wrong). */
	is_str(cr,
	       "GET\n/bucket/odd%20key%2B\n\nhost:h\nx-amz-meta-test:a b,c\n"
	       "x-amz-meta-test-two:b\n\nhost;x-amz-meta-test;x-amz-meta-test-two\n"
	       "UNSIGNED-PAYLOAD",
	       "canonical request: lowercase, trimmed, sorted, repeated joined");
	free(cr);
}

/* --sign mode: one request per block of hex-encoded fields; see diff-signer.py. */
static char *unhex(const char *s)
{
	size_t n = strlen(s) / 2, i;
	char *out = malloc(n + 1);

	for (i = 0; out && i < n; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (char)v;
	}
	if (out)
		out[n] = '\0';
	return out;
}

#define MAXF 64

static int sign_stdin(void)
{
	char line[65536];
	struct sigv4_param q[MAXF];
	struct sigv4_header h[MAXF];
	struct sigv4_request req;
	struct sigv4_credentials cred = { 0 };
	char *owned[4 * MAXF + 16];
	size_t nowned = 0;
	char *date = NULL;

	memset(&req, 0, sizeof(req));
	req.params = q;
	req.headers = h;
	while (fgets(line, sizeof(line), stdin)) {
		char *save = NULL, *kw, *f1, *f2, *a = NULL, *b = NULL;

		line[strcspn(line, "\n")] = '\0';
		kw = strtok_r(line, " ", &save);
		f1 = strtok_r(NULL, " ", &save);
		f2 = strtok_r(NULL, " ", &save);
		if (!kw)
			continue;
		if (f1)
			owned[nowned++] = a = unhex(f1);
		if (f2 && strcmp(f2, "-"))
			owned[nowned++] = b = unhex(f2);
		if (!strcmp(kw, "method"))
			req.method = a;
		else if (!strcmp(kw, "path"))
			req.path = a;
		else if (!strcmp(kw, "payload"))
			req.payload_hash = a;
		else if (!strcmp(kw, "date"))
			date = a;
		else if (!strcmp(kw, "akid"))
			cred.access_key_id = a;
		else if (!strcmp(kw, "secret"))
			cred.secret_access_key = a;
		else if (!strcmp(kw, "region"))
			cred.region = a;
		else if (!strcmp(kw, "service"))
			cred.service = a;
		else if (!strcmp(kw, "query") && req.nparams < MAXF)
			q[req.nparams++] = (struct sigv4_param){ a, b };
		else if (!strcmp(kw, "header") && req.nheaders < MAXF)
			h[req.nheaders++] = (struct sigv4_header){ a, b ? b : "" };
		else if (!strcmp(kw, "end")) {
			char *auth = sigv4_authorization(&req, &cred, date);

			printf("%s\n", auth ? auth : "(out of memory)");
			fflush(stdout);
			free(auth);
			while (nowned)
				free(owned[--nowned]);
			memset(&req, 0, sizeof(req));
			req.params = q;
			req.headers = h;
		}
		if (nowned > 4 * MAXF)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--sign") == 0)
		return sign_stdin();
	test_aws_examples();
	test_encoding();
	test_canonical();
	return done_testing();
}

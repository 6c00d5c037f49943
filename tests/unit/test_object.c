/*
 * Object format: round trips across sizes, codecs and data, and every kind of
 * damage (truncation, bit flips, wrong key, wrong kind, another name)
 * refused before a byte is returned; format 1 objects still read; fetches
 * bounded by kind from the first bytes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/error.h"
#include "repo/object.h"
#include "memstore.h"
#include "tap.h"

static struct repo_keys key, other;

/* Text-like data that zstd shrinks a lot but that is not one repeated byte. */
static void fill_compressible(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)("pgkeep keeps WAL and base backups "[i % 34] + (i / 4096) % 3);
}

static void fill_random(uint8_t *p, size_t len)
{
	size_t off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < (1u << 20) ? len - off : (1u << 20);
		RAND_bytes(p + off, (int)n);
	}
}

static void round_trip(size_t len, bool random, int level)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	uint8_t *data = xmalloc(len);
	/* Past the largest chunk, only a WAL object holds it. */
	enum obj_kind kind = len <= OBJ_CHUNK_PLAIN_MAX ? OBJ_CHUNK : OBJ_WAL;
	const char *name = kind == OBJ_CHUNK ? "chunks/test" : "wal/test";
	int ret;

	if (random)
		fill_random(data, len);
	else
		fill_compressible(data, len);
	ret = obj_seal(&key, kind, name, level, data, len, &obj);
	is_int(ret, 0, "seal %zu %s bytes at level %d", len, random ? "random" : "compressible", level);
	if (level == 0 || random || len < 100)
		is_int(obj.len, len + OBJ_OVERHEAD, "  stored uncompressed (%zu bytes)", obj.len);
	else
		ok(obj.len - OBJ_OVERHEAD < len / 2, "  compressed %zu to %zu bytes", len, obj.len);
	is_int(obj.data[9], obj.len == len + OBJ_OVERHEAD ? 0 : 1, "  header names the codec");
	/* open appends after what the buffer already holds */
	buf_append(&plain, "xyz", 3);
	ret = obj_open(&key, kind, name, obj.data, obj.len, &plain);
	is_int(ret, 0, "  open: %s", ret ? pgk_errmsg() : "ok");
	ok(plain.len == len + 3 && memcmp(plain.data, "xyz", 3) == 0 &&
	   memcmp(plain.data + 3, data, len) == 0, "  same bytes back, appended");
	buf_free(&obj);
	buf_free(&plain);
	free(data);
}

/* Every shorter length and one flipped bit at every offset must be refused. */
static void damage(int level)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT, bad = PGK_BUF_INIT;
	uint8_t data[300];
	size_t i, cut_wrong = 0, flip_wrong = 0, leaked = 0;
	int ret, want;

	fill_compressible(data, sizeof(data));
	obj_seal(&key, OBJ_WAL, "wal/x", level, data, sizeof(data), &obj);
	diag("level %d object: %zu bytes", level, obj.len);
	for (i = 0; i < obj.len; i++) {
		ret = obj_open(&key, OBJ_WAL, "wal/x", obj.data, i, &plain);
		if (ret != PGKEEP_ECORRUPT || !strstr(pgk_errmsg(), "wal/x")) {
			if (!cut_wrong++)
				diag("cut at %zu: %d %s", i, ret, pgk_errmsg());
		}
		leaked += plain.len;
	}
	is_int(cut_wrong, 0, "level %d: truncation at each of %zu lengths is ECORRUPT naming the object",
	       level, obj.len);
	for (i = 0; i < obj.len; i++) {
		buf_reset(&bad);
		buf_append(&bad, obj.data, obj.len);
		bad.data[i] ^= (uint8_t)(1u << (i % 8));
		ret = obj_open(&key, OBJ_WAL, "wal/x", bad.data, bad.len, &plain);
		/* A changed key id reads as another key's object, by design. */
		want = i >= 12 && i < 20 ? PGKEEP_EAUTH : PGKEEP_ECORRUPT;
		if (ret != want) {
			if (!flip_wrong++)
				diag("flip at %zu: %d %s", i, ret, pgk_errmsg());
		}
		leaked += plain.len;
	}
	is_int(flip_wrong, 0, "level %d: a flipped bit at each of %zu bytes is refused", level, obj.len);
	is_int(leaked, 0, "level %d: no byte returned from a damaged object", level);
	buf_free(&obj);
	buf_free(&plain);
	buf_free(&bad);
}

static void wrong_key_and_kind(void)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	struct repo_keys forged = key;
	int ret;

	obj_seal(&key, OBJ_MANIFEST, "backups/1.manifest", 3, "manifest body", 13, &obj);
	ret = obj_open(&other, OBJ_MANIFEST, "backups/1.manifest", obj.data, obj.len, &plain);
	is_int(ret, PGKEEP_EAUTH, "another repository's key: EAUTH");
	is_str(pgk_errmsg(), "object backups/1.manifest was written with another key", "  message");
	ret = obj_open(&key, OBJ_CHUNK, "backups/1.manifest", obj.data, obj.len, &plain);
	is_int(ret, PGKEEP_ECORRUPT, "wrong kind: ECORRUPT");
	ok(strstr(pgk_errmsg(), "backups/1.manifest") && strstr(pgk_errmsg(), "manifest object"),
	   "  message names the object and its kind: %s", pgk_errmsg());
	/* Same key id, different encryption key: only the tag can tell. */
	forged.enc[0] ^= 1;
	ret = obj_open(&forged, OBJ_MANIFEST, "backups/1.manifest", obj.data, obj.len, &plain);
	is_int(ret, PGKEEP_ECORRUPT, "matching key id but wrong key: tag refuses it");
	is_int(plain.len, 0, "nothing returned on any failure");
	ret = obj_open(&key, OBJ_MANIFEST, "backups/1.manifest", obj.data, obj.len, &plain);
	ok(ret == 0 && plain.len == 13 && memcmp(plain.data, "manifest body", 13) == 0,
	   "the right key and kind open it");
	buf_free(&obj);
	buf_free(&plain);
}

static void fresh_nonces(void)
{
	struct pgk_buf a = PGK_BUF_INIT, b = PGK_BUF_INIT;

	obj_seal(&key, OBJ_CHUNK, "chunks/same", 0, "same", 4, &a);
	obj_seal(&key, OBJ_CHUNK, "chunks/same", 0, "same", 4, &b);
	ok(a.len == b.len && memcmp(a.data + 20, b.data + 20, 12) != 0,
	   "two seals of the same data use different nonces");
	ok(memcmp(a.data, "PGKEEP\0\2", 8) == 0 && a.data[8] == OBJ_CHUNK && a.data[10] == 1 &&
	   memcmp(a.data + 12, key.key_id, PGK_KEY_ID_LEN) == 0 && a.data[39] == 4,
	   "header: magic, version, kind, cipher, key id, big-endian length");
	buf_free(&a);
	buf_free(&b);
}

static void read_file(const char *name, struct pgk_buf *out)
{
	const char *top = getenv("top_srcdir");
	char *path = xasprintf("%s/tests/data/%s%s", top ? top : ".",
			       strchr(name, '/') ? "" : "format-v1/", name);
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t n;

	if (!f)
		diag("cannot open %s", path);
	while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	if (f)
		fclose(f);
	free(path);
}

/* Objects written by the first version must read forever. */
static void golden(void)
{
	struct pgk_buf slot = PGK_BUF_INIT, obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	struct repo_keys k;
	size_t i, bad = 0;
	int ret;

	read_file("keyslot.json", &slot);
	ret = keyslot_unwrap(&k, "golden passphrase", slot.data, slot.len);
	is_int(ret, 0, "golden key slot unwraps: %s", ret ? pgk_errmsg() : "ok");
	read_file("plain.obj", &obj);
	ret = obj_open(&k, OBJ_META, "plain.obj", obj.data, obj.len, &plain);
	ok(ret == 0 && plain.len == 27 && memcmp(plain.data, "uncompressed golden object\n", 27) == 0,
	   "golden uncompressed metadata object opens: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&obj);
	buf_reset(&plain);
	read_file("zstd.obj", &obj);
	ret = obj_open(&k, OBJ_CHUNK, "zstd.obj", obj.data, obj.len, &plain);
	for (i = 0; ret == 0 && i < plain.len; i++)
		bad += plain.data[i] != (uint8_t)"pgkeep format v1 golden object\n"[i % 31];
	ok(ret == 0 && obj.len > 9 && obj.data[9] == 1 && plain.len == 2000 && bad == 0,
	   "golden zstd chunk opens: %s", ret ? pgk_errmsg() : "ok");
	keys_wipe(&k);
	buf_free(&slot);
	buf_free(&obj);
	buf_free(&plain);
}

/*
 * Sealing from a file: the same object format (opens, same bytes), the
 * codec chosen the same way, the SHA-256 of exactly the file, and a file
 * shorter than said refused by name.
 */
static void from_file(size_t len, bool random, int level)
{
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	char path[] = "/tmp/pgkeep-test-object.XXXXXX";
	uint8_t *data = xmalloc(len + 1), md[32], want[32];
	unsigned mdlen;
	int fd, ret;

	if (random)
		fill_random(data, len);
	else
		fill_compressible(data, len);
	fd = mkstemp(path);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) {
		printf("Bail out! cannot write a scratch file\n");
		exit(1);
	}
	unlink(path);
	ret = obj_seal_fd(&key, OBJ_WAL, "wal/test", level, fd, len, "scratch", &obj, md);
	is_int(ret, 0, "seal a %zu-byte %s file at level %d", len, random ? "random" : "compressible",
	       level);
	if (level == 0 || random || len < 100)
		is_int(obj.len, len + OBJ_OVERHEAD, "  stored uncompressed (%zu bytes)", obj.len);
	else
		ok(obj.len - OBJ_OVERHEAD < len / 2, "  compressed %zu to %zu bytes", len, obj.len);
	EVP_Digest(data, len, want, &mdlen, EVP_sha256(), NULL);
	ok(memcmp(md, want, 32) == 0, "  the digest is the file's SHA-256");
	ret = obj_open(&key, OBJ_WAL, "wal/test", obj.data, obj.len, &plain);
	is_int(ret, 0, "  open: %s", ret ? pgk_errmsg() : "ok");
	ok(plain.len == len && (len == 0 || memcmp(plain.data, data, len) == 0), "  same bytes back");
	buf_free(&obj);
	/* Said to be one byte longer than it is. */
	ret = obj_seal_fd(&key, OBJ_WAL, "wal/test", level, fd, len + 1, "scratch", &obj, md);
	is_int(ret, PGKEEP_EIO, "  a file shorter than said is refused");
	ok(strstr(pgk_errmsg(), "scratch shrank") != NULL, "  ... naming it: %s", pgk_errmsg());
	is_int(obj.len, 0, "  ... and nothing is appended");
	close(fd);
	buf_free(&obj);
	buf_free(&plain);
	free(data);
}

/* Rows of text, as a dump holds them; one row in `gone` is left out. */
static size_t make_rows(uint8_t *p, size_t cap, unsigned gone, unsigned bump)
{
	size_t len = 0;
	unsigned i;

	for (i = 0; len + 80 < cap; i++) {
		if (gone && i % gone == 1)
			continue;
		len += (size_t)snprintf((char *)p + len, cap - len, "%u\t%u\t%08x\tcustomer %u\n", i,
					 i % 7 + (i % 97 == 0 ? bump : 0), i * 2654435761u, i % 1000);
	}
	return len;
}

struct base_src {
	const uint8_t *data;
	size_t len;
	size_t full;	/* give_half: the whole length */
	char want[65];	/* the id asked for */
	int calls;
	int fail;	/* return this instead */
};

static int give_base(void *arg, const char *base_id, struct pgk_buf *plain)
{
	struct base_src *b = arg;

	b->calls++;
	snprintf(b->want, sizeof(b->want), "%s", base_id);
	if (b->fail)
		return pgk_error(b->fail, "base %s unavailable", base_id);
	buf_append(plain, b->data, b->len);
	return 0;
}

/* Bases split in two: the first call gives the first half, the next the rest. */
static int give_half(void *arg, const char *base_id, struct pgk_buf *plain)
{
	struct base_src *b = arg;
	size_t half = b->len;

	(void)base_id;
	if (b->calls++ == 0)
		buf_append(plain, b->data, half);
	else
		buf_append(plain, b->data + half, b->full - half);
	return 0;
}

static void deltas(void)
{
	static const char id1[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	static const char id2[] =
		"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	size_t cap = 1 << 20, blen, nlen, i, flips = 0;
	uint8_t *base = xmalloc(cap), *next = xmalloc(cap);
	struct pgk_buf obj = PGK_BUF_INIT, whole = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	struct obj_bases bs = { 0 }, got;
	struct base_src src = { 0 };
	int ret;

	blen = make_rows(base, cap, 0, 0);
	nlen = make_rows(next, cap, 100, 5);	/* a row in 100 gone, some changed */
	src.data = base;
	src.len = blen;
	bs.n = 1;
	memcpy(bs.id[0], id1, 65);
	buf_append(&bs.plain, base, blen);
	obj_seal(&key, OBJ_CHUNK, "chunks/w", 3, next, nlen, &whole);
	ret = obj_seal_delta(&key, "chunks/d", 3, &bs, next, nlen, &obj);
	is_int(ret, 0, "delta: seal a changed 1 MiB chunk against its old version");
	ok(obj.len * 8 < whole.len, "  %zu bytes as a delta, %zu whole", obj.len, whole.len);
	is_int(obj.data[9], 2, "  header says delta (compression 2)");
	ok(obj_is_delta(obj.data, obj.len) && !obj_is_delta(whole.data, whole.len),
	   "  obj_is_delta tells them apart");

	ret = obj_open_chunk(&key, "chunks/d", obj.data, obj.len, &plain, give_base, &src);
	ok(ret == 0 && plain.len == nlen && memcmp(plain.data, next, nlen) == 0,
	   "  opens to the exact bytes with its base");
	ok(src.calls == 1 && strcmp(src.want, id1) == 0, "  the base asked for is the one named");
	ret = obj_chunk_bases(&key, "chunks/d", obj.data, obj.len, &got);
	ok(ret == 0 && got.n == 1 && strcmp(got.id[0], id1) == 0, "  obj_chunk_bases names it");
	ret = obj_chunk_bases(&key, "chunks/w", whole.data, whole.len, &got);
	ok(ret == 0 && got.n == 0, "  and names none for a whole chunk");
	buf_reset(&plain);
	ret = obj_open_chunk(&key, "chunks/w", whole.data, whole.len, &plain, NULL, NULL);
	ok(ret == 0 && plain.len == nlen, "  a whole chunk opens without a base");

	buf_reset(&plain);
	ret = obj_open(&key, OBJ_CHUNK, "chunks/d", obj.data, obj.len, &plain);
	is_int(ret, PGKEEP_ECORRUPT, "  obj_open refuses a delta (a base must be whole)");
	ok(strstr(pgk_errmsg(), "chunks/d") && strstr(pgk_errmsg(), "delta"), "  message: %s",
	   pgk_errmsg());
	ret = obj_open_chunk(&key, "chunks/d", obj.data, obj.len, &plain, NULL, NULL);
	is_int(ret, PGKEEP_EINVAL, "  no way to read the base: refused");

	src.fail = PGKEEP_ECORRUPT;
	ret = obj_open_chunk(&key, "chunks/d", obj.data, obj.len, &plain, give_base, &src);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), id1), "  base failure passed on: %s",
	   pgk_errmsg());
	src.fail = 0;
	/* Another base of the same length: never the original bytes. */
	src.data = whole.data;
	src.len = blen < whole.len ? blen : whole.len;
	ret = obj_open_chunk(&key, "chunks/d", obj.data, obj.len, &plain, give_base, &src);
	ok(ret != 0 || plain.len != nlen || memcmp(plain.data, next, nlen) != 0,
	   "  a wrong base does not give the chunk back (%s)", ret ? pgk_errmsg() : "other bytes");
	src.data = base;
	src.len = blen;
	is_int(plain.len, 0, "  nothing returned on any failure");

	for (i = 0; i < obj.len; i += 7) {
		obj.data[i] ^= 0x10;
		buf_reset(&plain);
		if (obj_open_chunk(&key, "chunks/d", obj.data, obj.len, &plain, give_base, &src) == 0)
			flips++;
		obj.data[i] ^= 0x10;
	}
	is_int(flips, 0, "  a flipped bit anywhere in a delta is refused");
	ret = obj_open_chunk(&other, "chunks/d", obj.data, obj.len, &plain, give_base, &src);
	is_int(ret, PGKEEP_EAUTH, "  another repository's key: EAUTH");

	/* Two bases: the chunk spans what were two chunks (a cut point gone). */
	buf_reset(&obj);
	bs.n = 2;
	memcpy(bs.id[1], id2, 65);
	buf_reset(&bs.plain);
	buf_append(&bs.plain, base, blen / 2);
	buf_append(&bs.plain, base + blen / 2, blen - blen / 2);
	ret = obj_seal_delta(&key, "chunks/d2", 3, &bs, next, nlen, &obj);
	ok(ret == 0 && obj.len * 8 < whole.len, "two bases: sealed in %zu bytes", obj.len);
	ret = obj_chunk_bases(&key, "chunks/d2", obj.data, obj.len, &got);
	ok(ret == 0 && got.n == 2 && strcmp(got.id[0], id1) == 0 && strcmp(got.id[1], id2) == 0,
	   "  both named, in order");
	/* give_base hands out the whole old text for each: halves are asked for. */
	src.data = base;
	src.len = blen / 2;
	src.full = blen;
	src.calls = 0;
	buf_reset(&plain);
	ret = obj_open_chunk(&key, "chunks/d2", obj.data, obj.len, &plain, give_half, &src);
	ok(ret == 0 && src.calls == 2 && plain.len == nlen && memcmp(plain.data, next, nlen) == 0,
	   "  opens to the exact bytes, reading each base once (%d)", src.calls);

	bs.n = 0;
	ret = obj_seal_delta(&key, "chunks/d3", 3, &bs, next, nlen, &obj);
	is_int(ret, PGKEEP_EINVAL, "  no base: refused");
	bs.n = 1;
	memcpy(bs.id[0], "not-an-id", 10);
	ret = obj_seal_delta(&key, "chunks/d3", 3, &bs, next, nlen, &obj);
	is_int(ret, PGKEEP_EINVAL, "  a bad base id is refused when sealing");
	buf_free(&obj);
	buf_free(&whole);
	buf_free(&plain);
	buf_free(&bs.plain);
	free(base);
	free(next);
}

/* Sealed with key, resealed for other: other opens it, key no longer does. */
static void reseal(int level, bool random)
{
	size_t len = 3 << 20, i, bad = 0, tried = 0;
	uint8_t *data = malloc(len);
	struct pgk_buf obj = PGK_BUF_INIT, copy = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	uint8_t nonce[12];
	int ret;

	if (random)
		fill_random(data, len);
	else
		fill_compressible(data, len);
	obj_seal(&key, OBJ_WAL, "wal/x", level, data, len, &obj);
	memcpy(nonce, obj.data + 20, sizeof(nonce));
	buf_append(&copy, obj.data, obj.len);
	ret = obj_reseal(&key, &other, OBJ_WAL, "wal/x", &copy);
	is_int(ret, 0, "reseal (level %d, %s): %s", level, random ? "random" : "text",
	       ret ? pgk_errmsg() : "ok");
	ok(copy.len == obj.len && copy.data[9] == obj.data[9], "  same size and compression (%u)",
	   copy.data[9]);
	ok(memcmp(copy.data + 20, nonce, sizeof(nonce)) != 0, "  a fresh nonce");
	ok(obj_plain_len(copy.data, copy.len) == len, "  the header still records %zu bytes", len);
	ret = obj_open(&other, OBJ_WAL, "wal/x", copy.data, copy.len, &plain);
	ok(ret == 0 && plain.len == len && memcmp(plain.data, data, len) == 0,
	   "  the new key opens it to the same bytes");
	buf_reset(&plain);
	is_int(obj_open(&key, OBJ_WAL, "wal/x", copy.data, copy.len, &plain), PGKEEP_EAUTH,
	       "  the old key does not");

	/* Every single flipped byte of the original is refused, and wipes the copy. */
	for (i = 0; i < obj.len; i += obj.len / 97 + 1) {
		tried++;
		buf_reset(&copy);
		buf_append(&copy, obj.data, obj.len);
		copy.data[i] ^= 0x20;
		ret = obj_reseal(&key, &other, OBJ_WAL, "wal/x", &copy);
		bad += ret != 0 && copy.len == 0;
	}
	ok(bad == tried && tried >= 90, "  a flipped byte anywhere is refused and leaves nothing "
	   "(%zu of %zu)", bad, tried);
	buf_reset(&copy);
	buf_append(&copy, obj.data, obj.len);
	is_int(obj_reseal(&other, &key, OBJ_WAL, "wal/x", &copy), PGKEEP_EAUTH,
	       "  resealing with a key that did not seal it is refused");
	buf_reset(&copy);
	buf_append(&copy, obj.data, obj.len);
	is_int(obj_reseal(&key, &other, OBJ_CHUNK, "wal/x", &copy), PGKEEP_ECORRUPT,
	       "  so is another kind than the object's");
	buf_free(&obj);
	buf_free(&copy);
	buf_free(&plain);
	free(data);
}

/* A format 2 object opens under the name it was sealed for, and no other. */
static void names(void)
{
	static const struct {
		enum obj_kind kind;
		const char *sealed, *served;
	} swaps[] = {
		{ OBJ_WAL, "wal/00000001/000000010000000A00000042",
		  "wal/00000002/000000020000000A00000042" },
		{ OBJ_WAL, "wal/00000001/000000010000000A00000042.00000028.backup",
		  "wal/history/00000002.history" },
		{ OBJ_WAL, "wal/history/00000002.history", "wal/history/00000003.history" },
		{ OBJ_MANIFEST, "backups/a.manifest", "backups/b.manifest" },
		{ OBJ_LIST, "lists/s/0-0", "lists/s/0-1" },
		{ OBJ_META, "meta/sysid", "meta/sysid " },
		{ OBJ_CHUNK, "chunks/ab/ab01", "chunks/ab/ab0" },
	};
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT, bases = PGK_BUF_INIT;
	struct obj_bases got;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
		buf_reset(&obj);
		buf_reset(&plain);
		obj_seal(&key, swaps[i].kind, swaps[i].sealed, i & 1 ? 3 : 0, "some bytes", 10, &obj);
		ret = obj_open(&key, swaps[i].kind, swaps[i].served, obj.data, obj.len, &plain);
		is_int(ret, PGKEEP_ECORRUPT, "%s served as %s is refused", swaps[i].sealed,
		       swaps[i].served);
		ok(strstr(pgk_errmsg(), swaps[i].served) &&
		   strstr(pgk_errmsg(), "stored under another name"), "  saying so: %s",
		   pgk_errmsg());
		is_int(plain.len, 0, "  nothing returned");
		ret = obj_open(&key, swaps[i].kind, swaps[i].sealed, obj.data, obj.len, &plain);
		ok(ret == 0 && plain.len == 10, "  it opens under its own name");
	}

	/* The reseal for another repository keeps the name bound. */
	buf_reset(&obj);
	obj_seal(&key, OBJ_WAL, "wal/00000001/000000010000000000000001", 0, "segment", 7, &obj);
	ret = obj_reseal(&key, &other, OBJ_WAL, "wal/00000001/000000010000000000000002", &obj);
	is_int(ret, PGKEEP_ECORRUPT, "resealing under another name is refused");
	buf_reset(&obj);
	obj_seal(&key, OBJ_WAL, "wal/00000001/000000010000000000000001", 0, "segment", 7, &obj);
	obj_reseal(&key, &other, OBJ_WAL, "wal/00000001/000000010000000000000001", &obj);
	buf_reset(&plain);
	ok(obj_open(&other, OBJ_WAL, "wal/00000001/000000010000000000000001", obj.data, obj.len,
		    &plain) == 0 &&
	   obj_open(&other, OBJ_WAL, "wal/00000002/000000020000000000000001", obj.data, obj.len,
		    &plain) == PGKEEP_ECORRUPT,
	   "  a resealed object opens under its name only");

	/* A delta and its bases' list are bound too. */
	buf_reset(&obj);
	got.n = 1;
	memset(got.id[0], 'a', 64);
	got.id[0][64] = '\0';
	got.plain = bases;
	buf_append(&got.plain, "some bytes, and more", 20);
	ret = obj_seal_delta(&key, "chunks/cd/cd01", 3, &got, "some bytes, and less", 20, &obj);
	bases = got.plain;
	ok(ret == 0 && obj_chunk_bases(&key, "chunks/cd/cd02", obj.data, obj.len, &got) ==
			       PGKEEP_ECORRUPT,
	   "a delta served under another chunk's name is refused");
	buf_free(&obj);
	buf_free(&plain);
	buf_free(&bases);
}

/* The golden format 1 objects, and what happens to one resealed. */
static void format_1(void)
{
	struct pgk_buf slot = PGK_BUF_INIT, obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	struct repo_keys k;
	int ret;

	read_file("keyslot.json", &slot);
	keyslot_unwrap(&k, "golden passphrase", slot.data, slot.len);
	read_file("plain.obj", &obj);
	is_int(obj.len > 8 ? obj.data[7] : 0, 1, "format 1: the golden object says version 1");
	ret = obj_open(&k, OBJ_META, "meta/anything", obj.data, obj.len, &plain);
	ok(ret == 0 && plain.len == 27, "  and opens under any name (none is bound): %s",
	   ret ? pgk_errmsg() : "ok");
	if (obj.len <= 8) {
		printf("Bail out! the golden object plain.obj is missing\n");
		exit(1);
	}
	obj.data[7] = 2;
	buf_reset(&plain);
	ret = obj_open(&k, OBJ_META, "meta/anything", obj.data, obj.len, &plain);
	is_int(ret, PGKEEP_ECORRUPT, "  made to say version 2, it does not open");
	obj.data[7] = 1;
	ret = obj_reseal(&k, &key, OBJ_META, "meta/note", &obj);
	is_int(ret, 0, "  resealed (as copy does): %s", ret ? pgk_errmsg() : "ok");
	is_int(obj.data[7], 2, "  it is format 2");
	buf_reset(&plain);
	ok(obj_open(&key, OBJ_META, "meta/note", obj.data, obj.len, &plain) == 0 && plain.len == 27 &&
	   memcmp(plain.data, "uncompressed golden object\n", 27) == 0,
	   "  and opens to the same bytes under its name");
	is_int(obj_open(&key, OBJ_META, "meta/other", obj.data, obj.len, &plain), PGKEEP_ECORRUPT,
	       "  and under no other");
	keys_wipe(&k);
	buf_free(&slot);
	buf_free(&obj);
	buf_free(&plain);
}

/* Objects written by the first release of format 2 must read forever, by name. */
static void golden_v2(void)
{
	static const char history[] = "1\t0/3000000\tno recovery target specified\n";
	struct pgk_buf slot = PGK_BUF_INIT, obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	struct repo_keys k;
	size_t i, bad = 0;
	int ret;

	read_file("keyslot.json", &slot);
	keyslot_unwrap(&k, "golden passphrase", slot.data, slot.len);
	read_file("format-v2/plain.obj", &obj);
	ret = obj_open(&k, OBJ_WAL, "wal/history/00000002.history", obj.data, obj.len, &plain);
	ok(ret == 0 && plain.len == strlen(history) && memcmp(plain.data, history, plain.len) == 0,
	   "golden format 2 WAL object opens under its name: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&plain);
	is_int(obj_open(&k, OBJ_WAL, "wal/history/00000003.history", obj.data, obj.len, &plain),
	       PGKEEP_ECORRUPT, "  and not under another");
	buf_reset(&obj);
	read_file("format-v2/zstd.obj", &obj);
	ret = obj_open(&k, OBJ_CHUNK, "chunks/00/golden", obj.data, obj.len, &plain);
	for (i = 0; ret == 0 && i < plain.len; i++)
		bad += plain.data[i] != (uint8_t)"pgkeep format v2 golden object\n"[i % 31];
	ok(ret == 0 && obj.data[9] == 1 && plain.len == 2000 * 31 && bad == 0,
	   "golden format 2 zstd chunk opens under its name: %s", ret ? pgk_errmsg() : "ok");
	buf_reset(&plain);
	is_int(obj_open(&k, OBJ_CHUNK, "chunks/00/golden2", obj.data, obj.len, &plain),
	       PGKEEP_ECORRUPT, "  and not under another");
	keys_wipe(&k);
	buf_free(&slot);
	buf_free(&obj);
	buf_free(&plain);
}

/* Store bytes as they are under key in ms. */
static void plant(struct pgk_store *ms, const char *key_name, const void *data, size_t len)
{
	store_put(ms, key_name, data, len, 0);
}

/* A header for kind that claims plainlen bytes, compression comp. */
static void forge_header(uint8_t *h, enum obj_kind kind, uint8_t comp, uint64_t plainlen)
{
	int i;

	memcpy(h, "PGKEEP\0\2", 8);
	h[8] = (uint8_t)kind;
	h[9] = comp;
	h[10] = 1;
	h[11] = 0;
	memcpy(h + 12, key.key_id, PGK_KEY_ID_LEN);
	memset(h + 20, 7, 12);
	for (i = 0; i < 8; i++)
		h[32 + i] = (uint8_t)(plainlen >> (56 - 8 * i));
}

/*
 * obj_fetch takes no more than an object of its kind can hold, and looks
 * at the header before more than its first bytes are taken.
 */
static void fetch_caps(void)
{
	struct pgk_store *ms = memstore_open();
	struct pgk_buf obj = PGK_BUF_INIT, big = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	size_t n = (size_t)OBJ_CHUNK_PLAIN_MAX + 1;
	uint8_t *junk = xzalloc(n + OBJ_OVERHEAD);
	int ret;

	obj_seal(&key, OBJ_LIST, "lists/s/0-0", 3, "entries", 7, &obj);
	plant(ms, "lists/s/0-0", obj.data, obj.len);
	ret = obj_fetch(ms, "lists/s/0-0", OBJ_LIST, &big);
	ok(ret == 0 && big.len == obj.len && memcmp(big.data, obj.data, obj.len) == 0,
	   "fetch: a list object comes whole");
	ret = obj_fetch(ms, "lists/s/0-0", OBJ_CHUNK, &big);
	ok(ret == PGKEEP_ECORRUPT && big.len == 0 && strstr(pgk_errmsg(), "expected chunk"),
	   "  fetched as a chunk, refused from its header: %s", pgk_errmsg());
	is_int(obj_fetch(ms, "lists/none", OBJ_LIST, &big), PGKEEP_ENOTFOUND,
	       "  an absent object: ENOTFOUND");

	plant(ms, "chunks/zz/junk", junk, n + OBJ_OVERHEAD);
	ret = obj_fetch(ms, "chunks/zz/junk", OBJ_CHUNK, &big);
	ok(ret == PGKEEP_ECORRUPT && big.len == 0 &&
	   strstr(pgk_errmsg(), "chunks/zz/junk is not a pgkeep object"),
	   "  4 MiB of zeros: not an object: %s", pgk_errmsg());

	forge_header(junk, OBJ_CHUNK, 0, n);
	plant(ms, "chunks/zz/big", junk, n + OBJ_OVERHEAD);
	ret = obj_fetch(ms, "chunks/zz/big", OBJ_CHUNK, &big);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "more than a chunk object holds"),
	   "  a chunk claiming a byte more than the chunker cuts: %s", pgk_errmsg());

	forge_header(junk, OBJ_META, 0, 16);
	plant(ms, "meta/long", junk, (size_t)OBJ_META_PLAIN_MAX + OBJ_OVERHEAD);
	ret = obj_fetch(ms, "meta/long", OBJ_META, &big);
	ok(ret == PGKEEP_ECORRUPT && big.len == 0 &&
	   strstr(pgk_errmsg(), "meta/long is larger than 72 bytes"),
	   "  an object longer than its header allows stops there: %s", pgk_errmsg());

	forge_header(junk, OBJ_META, 0, 1);
	plant(ms, "meta/short", junk, 20);
	ret = obj_fetch(ms, "meta/short", OBJ_META, &big);
	ok(ret == 0 && big.len == 20, "  one shorter than a header is fetched");
	ret = obj_open(&key, OBJ_META, "meta/short", big.data, big.len, &plain);
	ok(ret == PGKEEP_ECORRUPT && strstr(pgk_errmsg(), "truncated"),
	   "  and said truncated when opened: %s", pgk_errmsg());

	is_int(obj_plain_max(OBJ_WAL), 1 << 30, "the largest WAL object holds 1 GiB");
	is_int(obj_plain_max(OBJ_CHUNK), 4 << 20, "the largest chunk object holds 4 MiB");
	free(junk);
	buf_free(&obj);
	buf_free(&big);
	buf_free(&plain);
	memstore_close(ms);
}

/* obj_open refuses what its kind cannot hold, even sealed with the key. */
static void open_caps(void)
{
	size_t n = (size_t)OBJ_CHUNK_PLAIN_MAX + 1;
	uint8_t *data = xzalloc(n);
	struct pgk_buf obj = PGK_BUF_INIT, plain = PGK_BUF_INIT;
	int ret;

	obj_seal(&key, OBJ_CHUNK, "chunks/aa/aa", 3, data, n, &obj);
	ret = obj_open(&key, OBJ_CHUNK, "chunks/aa/aa", obj.data, obj.len, &plain);
	ok(ret == PGKEEP_ECORRUPT && plain.len == 0,
	   "a chunk object of more than 4 MiB is refused: %s", pgk_errmsg());
	free(data);
	buf_free(&obj);
	buf_free(&plain);
}

int main(void)
{
	static const size_t sizes[] = { 0, 1, 100, 64 << 10, 1 << 20, 16 << 20, 20 << 20 };
	size_t i;

	keys_generate(&key);
	keys_generate(&other);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip(sizes[i], false, 0);
		round_trip(sizes[i], false, 3);
		round_trip(sizes[i], true, 0);
		round_trip(sizes[i], true, 3);
		from_file(sizes[i], false, 0);
		from_file(sizes[i], false, 3);
		from_file(sizes[i], true, 3);
	}
	damage(0);
	damage(3);
	wrong_key_and_kind();
	fresh_nonces();
	golden();
	deltas();
	reseal(0, false);
	reseal(3, false);
	reseal(3, true);
	names();
	format_1();
	golden_v2();
	fetch_caps();
	open_caps();
	keys_wipe(&key);
	keys_wipe(&other);
	return done_testing();
}

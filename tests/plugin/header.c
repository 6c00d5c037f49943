/*
 * The plugin ABI header as a plugin author's compiler sees it: this file is
 * built with -std=c99 and again with -std=c11, -pedantic -Werror and only
 * include/ on the path (tests/plugin/Makefile.inc), so a GNU extension or a
 * C11 construct in include/pgkeep/storage.h breaks `make check`.  At run
 * time it checks the key rule every plugin applies through the header.
 */
#include <pgkeep/storage.h>

#include <stdio.h>
#include <string.h>

static int tests, failures;

static void check(int cond, const char *what, const char *s)
{
	tests++;
	if (!cond)
		failures++;
	printf("%sok %d - %s '%s'\n", cond ? "" : "not ", tests, what, s);
}

static int put_begin(void *h, const char *key, uint64_t size_hint, unsigned flags, void **put,
		     char *err)
{
	(void)h;
	(void)size_hint;
	(void)flags;
	(void)put;
	return pgkeep_fail(err, PGKEEP_EUNSUPPORTED, "cannot store %s", key);
}

/* A table as a plugin writes one: the initialiser must be valid ISO C. */
static const struct pgkeep_storage_ops ops = {
	PGKEEP_STORAGE_OPS_INIT,
	"header",
	PGKEEP_FEAT_RANGE_GET,
	NULL, NULL, put_begin, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

int main(void)
{
	static const char *const good[] = {
		"pgkeep.json", "wal/00000001/000000010000000A00000042", "a", "a/b/c",
		"backups/20261208T020000Z.manifest", "x..y", ".hidden", "a-b_c.d", "...",
	};
	static const char *const bad[] = {
		"", "/abs", "a/", "a//b", ".", "..", "../x", "a/../b", "a/./b", "a/.",
		"sp ace", "a\\b", "caf\xc3\xa9", "k/x.tmp.0123456789abcdef", "k/x.tmp.y", "a.tmp.",
	};
	static const char *const good_prefix[] = { "", "wal/", "chunks/ab", "pins/x/", "a" };
	static const char *const bad_prefix[] = { "/", "/wal", "a//", "../", "a/../", "x.tmp./" };
	char err[PGKEEP_ERRLEN] = "";
	size_t i;

	check(ops.abi_version == PGKEEP_STORAGE_ABI_VERSION &&
		      ops.struct_size == sizeof(struct pgkeep_storage_ops),
	      "PGKEEP_STORAGE_OPS_INIT fills the version fields of", ops.name);
	check(ops.put_begin(NULL, "k", 0, 0, NULL, err) == PGKEEP_EUNSUPPORTED &&
		      strcmp(err, "cannot store k") == 0,
	      "pgkeep_fail returns the code and writes", err);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		check(pgkeep_key_valid(good[i]), "a valid key:", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(!pgkeep_key_valid(bad[i]), "refused as a key:", bad[i]);
	for (i = 0; i < sizeof(good_prefix) / sizeof(good_prefix[0]); i++)
		check(pgkeep_prefix_valid(good_prefix[i]), "a valid prefix:", good_prefix[i]);
	for (i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++)
		check(!pgkeep_prefix_valid(bad_prefix[i]), "refused as a prefix:", bad_prefix[i]);
	printf("1..%d\n", tests);
	return failures ? 1 : 0;
}

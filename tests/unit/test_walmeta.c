/*
 * Timeline history and backup history files: what PostgreSQL writes is
 * accepted, and empty, garbled or misnamed ones are refused, one case per
 * row of the tables below.
 */
#include <string.h>

#include "common/error.h"
#include "pg/walmeta.h"
#include "tap.h"

struct meta_case {
	const char *name;	/* the file's name, which the content must fit */
	const char *text;
	size_t len;		/* 0: strlen(text) */
	int want;		/* 0 or PGKEEP_EINVAL */
	const char *msg;	/* a part of the message, for refusals */
};

#define BACKUP_OK \
	"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n" \
	"STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n" \
	"CHECKPOINT LOCATION: 0/2000060\n" \
	"BACKUP METHOD: streamed\n" \
	"BACKUP FROM: primary\n" \
	"START TIME: 2026-12-07 22:00:00 UTC\n" \
	"LABEL: pgkeep base backup: 20261207T220000Z-base\n" \
	"START TIMELINE: 1\n" \
	"STOP TIME: 2026-12-07 22:00:01 UTC\n" \
	"STOP TIMELINE: 1\n"

static const struct meta_case history_cases[] = {
	{ "00000002.history", "1\t0/3000158\tno recovery target specified\n", 0, 0, NULL },
	{ "00000003.history",
	  "1\t0/3000158\tno recovery target specified\n\n"
	  "2\t0/5000060\tat restore point \"before upgrade\"\n", 0, 0, NULL },
	{ "00000004.history", "# written by hand\n1\t0/3000158\n  3\tA/FF000028\tbefore x\r\n", 0, 0,
	  NULL },
	{ "00000002.history", "", 0, PGKEEP_EINVAL, "is empty" },
	{ "00000002.history", "\n\n# nothing\n", 0, PGKEEP_EINVAL, "lists no parent timeline" },
	{ "00000002.history", "garbage\n", 0, PGKEEP_EINVAL, "line 1: expected a timeline number" },
	{ "00000002.history", "1 garbage\n", 0, PGKEEP_EINVAL, "expected a switch point" },
	{ "00000002.history", "1\t0/3000158x\treason\n", 0, PGKEEP_EINVAL, "expected a switch point" },
	{ "00000002.history", "1\t0/123456789\treason\n", 0, PGKEEP_EINVAL, "expected a switch point" },
	{ "00000002.history", "0\t0/3000158\treason\n", 0, PGKEEP_EINVAL, "expected a timeline number" },
	{ "00000002.history", "1\t0/3000158\tx\n\0\n", 16, PGKEEP_EINVAL, "is not text" },
	{ "00000003.history", "2\t0/3000158\tx\n1\t0/4000000\ty\n", 0, PGKEEP_EINVAL,
	  "line 2: timeline 1 does not follow 2" },
	{ "00000002.history", "2\t0/3000158\tx\n", 0, PGKEEP_EINVAL,
	  "timeline 2 is not an ancestor of timeline 2" },
	{ "00000002.history", "1\t0/3000158\tx\n5\t0/4000000\ty\n", 0, PGKEEP_EINVAL,
	  "timeline 5 is not an ancestor" },
};

static const struct meta_case backup_cases[] = {
	{ "000000010000000000000002.00000028.backup", BACKUP_OK, 0, 0, NULL },
	/* 64 MiB segments: the offset is the LSN's within such a segment. */
	{ "000000010000000000000000.02000028.backup",
	  "START WAL LOCATION: 0/2000028 (file 000000010000000000000000)\n"
	  "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000000)\n", 0, 0, NULL },
	{ "000000010000000000000002.00000028.backup", "", 0, PGKEEP_EINVAL, "is empty" },
	{ "000000010000000000000002.00000028.backup", "\x7f" "ELF\x02\x01\x01 garbage", 0,
	  PGKEEP_EINVAL, "expected 'KEY: value'" },
	{ "000000010000000000000002.00000028.backup",
	  "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n", 0, PGKEEP_EINVAL,
	  "does not start with START WAL LOCATION" },
	{ "000000010000000000000002.00000028.backup",
	  "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n", 0, PGKEEP_EINVAL,
	  "has no STOP WAL LOCATION" },
	{ "000000010000000000000002.00000028.backup",
	  "START WAL LOCATION: 0/2000028\nSTOP WAL LOCATION: 0/2000100\n", 0, PGKEEP_EINVAL,
	  "line 1: bad START WAL LOCATION" },
	{ "000000010000000000000003.00000028.backup", BACKUP_OK, 0, PGKEEP_EINVAL,
	  "is not the one its name says" },
	{ "000000010000000000000002.00000060.backup", BACKUP_OK, 0, PGKEEP_EINVAL,
	  "is not the one its name says" },
	{ "000000020000000000000002.00000028.backup", BACKUP_OK, 0, PGKEEP_EINVAL,
	  "is not the one its name says" },
	{ "000000010000000000000002.00000028.backup",
	  "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	  "STOP WAL LOCATION: 0/2000000 (file 000000010000000000000002)\n", 0, PGKEEP_EINVAL,
	  "STOP WAL LOCATION is before START WAL LOCATION" },
	{ "000000010000000000000002.00000028.backup",
	  "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	  "STOP WAL LOCATION: 0/zz (file 000000010000000000000002)\n", 0, PGKEEP_EINVAL,
	  "line 2: bad STOP WAL LOCATION" },
};

static void run_cases(const struct meta_case *c, size_t n, bool history)
{
	struct wal_name wn;
	size_t i, len;
	int ret;

	for (i = 0; i < n; i++) {
		len = c[i].len ? c[i].len : strlen(c[i].text);
		if (walname_parse(c[i].name, &wn) < 0) {
			ok(0, "case %zu: %s parses", i, c[i].name);
			continue;
		}
		pgk_error_clear();
		ret = history ? walmeta_check_history(c[i].text, len, &wn, c[i].name)
			      : walmeta_check_backup(c[i].text, len, &wn, c[i].name);
		is_int(ret, c[i].want, "%s case %zu (%s): %s", history ? "history" : "backup", i,
		       c[i].name, c[i].want ? "refused" : "accepted");
		if (c[i].msg)
			ok(strstr(pgk_errmsg(), c[i].msg) && strstr(pgk_errmsg(), c[i].name) &&
				   !strchr(pgk_errmsg(), '\n'),
			   "  one line naming the file and saying '%s': %s", c[i].msg, pgk_errmsg());
	}
}

int main(void)
{
	run_cases(history_cases, sizeof(history_cases) / sizeof(history_cases[0]), true);
	run_cases(backup_cases, sizeof(backup_cases) / sizeof(backup_cases[0]), false);
	return done_testing();
}

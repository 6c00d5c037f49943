/*
 * backup_label and backup history files as PostgreSQL 15 writes them, LSN
 * text, history file names, and the quoting of recovery settings.
 */
#include <string.h>

#include "tap.h"
#include "common/error.h"
#include "pg/backup_label.h"
#include "pg/recovery.h"

static const char label[] =
	"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
	"CHECKPOINT LOCATION: 0/2000060\n"
	"BACKUP METHOD: streamed\n"
	"BACKUP FROM: primary\n"
	"START TIME: 2026-02-20 14:30:05 UTC\n"
	"LABEL: pg_basebackup base backup\n"
	"START TIMELINE: 1\n";

static const char history[] =
	"START WAL LOCATION: 16/B374D848 (file 0000000300000016000000B3)\n"
	"STOP WAL LOCATION: 16/B5000100 (file 0000000300000016000000B5)\n"
	"CHECKPOINT LOCATION: 16/B374D880\n"
	"BACKUP METHOD: streamed\n"
	"BACKUP FROM: standby\n"
	"START TIME: 2026-02-20 15:30:05 CET\n"
	"LABEL: nightly\n"
	"START TIMELINE: 3\n"
	"STOP TIME: 2026-02-20 14:31:00 +0100\n"
	"STOP TIMELINE: 3\n";

static void test_label(void)
{
	struct backup_label b;

	is_int(backup_label_parse(&b, label, strlen(label), false, "backup_label"), 0,
	       "a PostgreSQL 15 backup_label parses");
	ok(b.start_lsn == 0x2000028, "start LSN 0/2000028");
	is_str(b.start_wal, "000000010000000000000002", "start segment");
	ok(b.checkpoint_lsn == 0x2000060, "checkpoint LSN");
	is_int(b.start_tli, 1, "start timeline");
	is_int(b.start_time, 1771597805, "START TIME in UTC");
	is_str(b.label, "pg_basebackup base backup", "label");
	ok(!b.from_standby, "from a primary");
	ok(!b.has_stop, "a backup_label has no stop location");
	is_int(backup_label_parse(&b, label, strlen(label), true, "x.backup"), PGKEEP_ECORRUPT,
	       "a history file without STOP WAL LOCATION is refused");
	ok(strstr(pgk_errmsg(), "x.backup") && strstr(pgk_errmsg(), "STOP WAL LOCATION"),
	   "... naming the file and the line (%s)", pgk_errmsg());
}

static void test_history(void)
{
	struct backup_label b;

	is_int(backup_label_parse(&b, history, strlen(history), true, "h"), 0,
	       "a backup history file parses");
	ok(b.start_lsn == 0x16B374D848ull, "start LSN 16/B374D848");
	ok(b.stop_lsn == 0x16B5000100ull, "stop LSN 16/B5000100");
	is_str(b.stop_wal, "0000000300000016000000B5", "stop segment");
	is_int(b.stop_tli, 3, "stop timeline");
	ok(b.from_standby, "from a standby");
	is_int(b.start_time, 0, "a zone abbreviation other than UTC gives no time");
	is_int(b.stop_time, 1771594260, "a numeric offset is applied");
}

static void test_bad(void)
{
	static const char *bad[] = {
		"START WAL LOCATION: 0/20000ZZ (file 000000010000000000000002)\nSTART TIMELINE: 1\n",
		"START WAL LOCATION: 0/2000028 (file 00000001000000000000002)\nSTART TIMELINE: 1\n",
		"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: x\n",
		"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
		"CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n",
		"",
	};
	struct backup_label b;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(backup_label_parse(&b, bad[i], strlen(bad[i]), false, "bad"),
		       PGKEEP_ECORRUPT, "malformed label %zu is refused", i);
}

static void test_lsn(void)
{
	char text[PG_LSN_TEXT_MAX], name[64];
	uint64_t lsn;

	is_int(pg_lsn_parse("0/0", &lsn), 0, "0/0 parses");
	ok(lsn == 0, "... as 0");
	is_int(pg_lsn_parse("FFFFFFFF/FFFFFFFF", &lsn), 0, "the largest LSN parses");
	ok(lsn == UINT64_MAX, "... as 2^64-1");
	is_int(pg_lsn_parse("1/", &lsn), PGKEEP_EINVAL, "'1/' is refused");
	is_int(pg_lsn_parse("/1", &lsn), PGKEEP_EINVAL, "'/1' is refused");
	is_int(pg_lsn_parse("123456789/0", &lsn), PGKEEP_EINVAL, "nine hex digits are refused");
	is_int(pg_lsn_parse("0/1x", &lsn), PGKEEP_EINVAL, "trailing junk is refused");
	pg_lsn_format(0x16B374D848ull, text);
	is_str(text, "16/B374D848", "LSN text as PostgreSQL prints it");
	backup_history_name(name, sizeof(name), 1, 0x2000028, 16u << 20);
	is_str(name, "000000010000000000000002.00000028.backup", "history file name");
	backup_history_name(name, sizeof(name), 3, 0x16B374D848ull, 16u << 20);
	is_str(name, "0000000300000016000000B3.0074D848.backup",
	       "history file name: offset within the segment");
}

static void test_quote(void)
{
	char *q;

	q = conf_quote("it's");
	is_str(q, "'it''s'", "postgresql.conf quoting doubles quotes");
	free(q);
	q = shell_quote("/a b/it's");
	is_str(q, "'/a b/it'\\''s'", "shell quoting closes, escapes and reopens");
	free(q);
	is_str(recovery_target_setting(TARGET_LSN), "recovery_target_lsn", "target setting names");
}

int main(void)
{
	test_label();
	test_history();
	test_bad();
	test_lsn();
	test_quote();
	return done_testing();
}

/*
 * WAL names: classification, repository keys, LSN arithmetic for several
 * segment sizes, and the first-page header of a synthetic segment.
 */
#include <stdint.h>
#include <string.h>

#include "common/error.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "tap.h"

#define MiB (1024u * 1024u)

static void test_classify(void)
{
	struct wal_name wn;

	is_int(walname_parse("000000010000000A00000042", &wn), 0, "segment parses");
	is_int(wn.type, WAL_SEGMENT, "segment type");
	is_int(wn.tli, 1, "segment timeline");
	is_int(wn.log, 0xA, "segment log");
	is_int(wn.seg, 0x42, "segment seg");

	is_int(walname_parse("00000003FFFFFFFF000000FF.partial", &wn), 0, ".partial parses");
	is_int(wn.type, WAL_PARTIAL, ".partial type");
	is_int(wn.tli, 3, ".partial timeline");
	ok(wn.log == 0xFFFFFFFFu && wn.seg == 0xFF, ".partial log and seg");

	is_int(walname_parse("000000010000000000000002.00000028.backup", &wn), 0,
	       ".backup parses");
	is_int(wn.type, WAL_BACKUP, ".backup type");
	is_int(wn.offset, 0x28, ".backup offset");
	is_int(wn.seg, 2, ".backup seg");

	is_int(walname_parse("0000000A.history", &wn), 0, ".history parses");
	is_int(wn.type, WAL_HISTORY, ".history type");
	is_int(wn.tli, 10, ".history timeline");

	ok(walname_is_segment("000000010000000000000001"), "is_segment: segment");
	ok(!walname_is_segment("000000010000000000000001.partial"), "is_segment: not .partial");
}

static void test_refuse(void)
{
	static const char *const bad[] = {
		"",
		"00000001000000000000000",	/* 23 hex */
		"0000000100000000000000011",	/* 25 hex */
		"000000010000000a00000042",	/* lower case */
		"000000010000000G00000042",
		"000000000000000000000001",	/* timeline 0 */
		"000000010000000000000001.part",
		"000000010000000000000001.partial.x",
		"000000010000000000000001.0000028.backup",
		"000000010000000000000001.00000028.backu",
		"000000010000000000000001.0000002g.backup",
		"000000010000000000000001.00000028",
		"00000001.histor",
		"0000001.history",
		"00000001.history.tmp",
		"RECOVERYXLOG",
		"archive_status",
		"../000000010000000000000001",
		"/000000010000000000000001",
		"000000010000000000000001/",
		".000000010000000000000001",
		"000000010000000000000001 ",
	};
	size_t i;
	char key[LAYOUT_WAL_KEY_MAX];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pgk_error_clear();
		is_int(walname_parse(bad[i], NULL), PGKEEP_EINVAL, "refused: '%s'", bad[i]);
	}
	ok(strstr(pgk_errmsg(), "not a WAL segment") != NULL, "refusal message: %s",
	   pgk_errmsg());
	is_int(layout_wal_key("RECOVERYHISTORY", key, sizeof(key)), PGKEEP_EINVAL,
	       "no key for a non-WAL name");
}

static void test_keys(void)
{
	char key[LAYOUT_WAL_KEY_MAX];

	is_int(layout_wal_key("000000010000000A00000042", key, sizeof(key)), 0, "segment key");
	is_str(key, "wal/00000001/000000010000000A00000042", "segment key value");
	layout_wal_key("0000000200000000000000FF.partial", key, sizeof(key));
	is_str(key, "wal/00000002/0000000200000000000000FF.partial", ".partial key");
	layout_wal_key("000000010000000000000002.00000028.backup", key, sizeof(key));
	is_str(key, "wal/00000001/000000010000000000000002.00000028.backup", ".backup key");
	layout_wal_key("0000000B.history", key, sizeof(key));
	is_str(key, "wal/history/0000000B.history", ".history key");
	is_int(layout_wal_key("000000010000000000000002.00000028.backup", key, 20),
	       PGKEEP_EINVAL, "key buffer too small is an error");
}

static void test_lsn(void)
{
	char name[WAL_SEG_NAME_LEN + 1];
	struct wal_name wn;
	uint64_t segno;

	ok(wal_seg_size_valid(16 * MiB), "16 MiB is a valid segment size");
	ok(wal_seg_size_valid(1 * MiB), "1 MiB is valid");
	ok(wal_seg_size_valid(1024 * MiB), "1 GiB is valid");
	ok(!wal_seg_size_valid(512 * 1024), "512 KiB is not");
	ok(!wal_seg_size_valid(2048ull * MiB), "2 GiB is not");
	ok(!wal_seg_size_valid(24 * MiB), "24 MiB (not a power of two) is not");

	/* pg_walfile_name('0/1000000') on timeline 1, 16 MiB segments. */
	wal_lsn_to_name(name, 1, 0x1000000, 16 * MiB);
	is_str(name, "000000010000000000000001", "16 MiB: 0/1000000");
	wal_lsn_to_name(name, 1, 0x1FFFFFF, 16 * MiB);
	is_str(name, "000000010000000000000001", "16 MiB: 0/1FFFFFF, same segment");
	wal_lsn_to_name(name, 2, UINT64_C(0xA42000028), 16 * MiB);
	is_str(name, "000000020000000A00000042", "16 MiB: A/42000028");
	wal_lsn_to_name(name, 1, UINT64_C(0x1FF000000), 16 * MiB);
	is_str(name, "0000000100000001000000FF", "16 MiB: last segment of log 1");

	/* 1 MiB: 4096 segments per log, segment field up to 00000FFF. */
	wal_lsn_to_name(name, 1, UINT64_C(0x3ABC00000), 1 * MiB);
	is_str(name, "000000010000000300000ABC", "1 MiB: 3/ABC00000");
	/* 64 MiB: 64 segments per log. */
	wal_lsn_to_name(name, 1, UINT64_C(0x5C4000000), 64 * MiB);
	is_str(name, "000000010000000500000031", "64 MiB: 5/C4000000");
	/* 1 GiB: 4 segments per log. */
	wal_lsn_to_name(name, 7, UINT64_C(0x2C0000001), 1024 * MiB);
	is_str(name, "000000070000000200000003", "1 GiB: 2/C0000001");

	walname_parse("000000010000000300000ABC", &wn);
	is_int(wal_name_to_segno(&wn, 1 * MiB, &segno), 0, "segno of a 1 MiB name");
	is_int(segno, UINT64_C(0x3ABC00000) / MiB, "segno value");
	is_int(wal_name_to_segno(&wn, 16 * MiB, &segno), PGKEEP_EINVAL,
	       "segment field 0xABC is out of range for 16 MiB segments");

	is_int(wal_next_segment("0000000100000000000000FE", 16 * MiB, name), 0, "next segment");
	is_str(name, "0000000100000000000000FF", "next within a log");
	wal_next_segment("0000000100000000000000FF", 16 * MiB, name);
	is_str(name, "000000010000000100000000", "next crosses to the next log (16 MiB)");
	wal_next_segment("000000010000000000000003", 1024 * MiB, name);
	is_str(name, "000000010000000100000000", "next crosses to the next log (1 GiB)");
	is_int(wal_next_segment("00000001.history", 16 * MiB, name), PGKEEP_EINVAL,
	       "no next segment for a history file");
}

/* A synthetic first page as PostgreSQL 15 writes it. */
static void make_page(uint8_t *p, uint16_t info, uint64_t sysid, uint32_t seg_size)
{
	uint16_t magic = 0xD110;
	uint32_t tli = 1, rem = 0, blcksz = 8192;
	uint64_t pageaddr = 0x3000000;

	memset(p, 0, 64);
	memcpy(p + 0, &magic, 2);
	memcpy(p + 2, &info, 2);
	memcpy(p + 4, &tli, 4);
	memcpy(p + 8, &pageaddr, 8);
	memcpy(p + 16, &rem, 4);
	memcpy(p + 24, &sysid, 8);
	memcpy(p + 32, &seg_size, 4);
	memcpy(p + 36, &blcksz, 4);
}

static void test_first_page(void)
{
	uint8_t page[64];
	struct wal_page_info pi;
	uint64_t sysid = UINT64_C(7318296745921345678);

	make_page(page, 0x0002 | 0x0004, sysid, 16 * MiB);
	is_int(wal_read_first_page(page, 16 * MiB, "seg", &pi), 0, "first page reads");
	ok(pi.sysid == sysid, "sysid read back");
	is_int(pi.seg_size, 16 * MiB, "segment size read back");
	is_int(pi.blcksz, 8192, "block size read back");
	is_int(pi.magic, 0xD110, "magic read back");
	is_int(pi.tli, 1, "page timeline read back");
	ok(pi.pageaddr == 0x3000000, "page address read back");

	is_int(wal_read_first_page(page, 16 * MiB - 8192, "seg", &pi), PGKEEP_EINVAL,
	       "file size different from the header's segment size is refused");
	ok(strstr(pgk_errmsg(), "page header says") != NULL, "size message: %s", pgk_errmsg());
	is_int(wal_read_first_page(page, 20, "seg", &pi), PGKEEP_EINVAL, "too short");

	make_page(page, 0x0001, sysid, 16 * MiB);
	is_int(wal_read_first_page(page, 16 * MiB, "seg", &pi), PGKEEP_EINVAL,
	       "no long-header flag is refused");
	make_page(page, 0x0002, sysid, 3 * MiB);
	is_int(wal_read_first_page(page, 3 * MiB, "seg", &pi), PGKEEP_EINVAL,
	       "invalid segment size is refused");
	make_page(page, 0x0002, sysid, 64 * MiB);
	is_int(wal_read_first_page(page, 64 * MiB, "seg", &pi), 0, "64 MiB segment reads");
	make_page(page, 0x0002, 0, 16 * MiB);
	is_int(wal_read_first_page(page, 16 * MiB, "seg", &pi), PGKEEP_EINVAL,
	       "zero sysid is refused");
}

int main(void)
{
	test_classify();
	test_refuse();
	test_keys();
	test_lsn();
	test_first_page();
	return done_testing();
}

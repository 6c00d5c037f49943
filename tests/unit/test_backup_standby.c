/*
 * The WAL side of a base backup: a timeline history file from the server is
 * stored when the archive lacks it, under wal-push's key and as sent, left
 * alone when the archive has it, and refused when it is not one; a backup
 * from a standby waits for segments the primary has not archived, and its
 * timeout names the segment, the repository and the setting.
 */
#include <stdbool.h>
#include <string.h>

#include "cmd/backup_standby.h"
#include "common/error.h"
#include "common/mem.h"
#include "memstore.h"
#include "pg/backup_label.h"
#include "pg/walname.h"
#include "repo/layout.h"
#include "repo/repo.h"
#include "tap.h"

static struct repo repo;

static const char history[] = "1\t0/3000148\tno recovery target specified\n";

static void test_history(void)
{
	struct pgk_buf got = PGK_BUF_INIT;
	char key[LAYOUT_WAL_KEY_MAX];

	layout_wal_key("00000002.history", key, sizeof(key));
	is_int(backup_history_store(&repo, "00000002.history", history, strlen(history)), 0,
	       "a history file the archive lacks is stored: %s", pgk_errmsg());
	ok(repo_get(&repo, key, OBJ_WAL, &got) == 0 && got.len == strlen(history) &&
	   memcmp(got.data, history, got.len) == 0, "  under wal-push's key, as the server sent it");
	buf_free(&got);
	is_int(memstore_count(repo.store, key), 1, "  once");

	is_int(backup_history_store(&repo, "00000002.history", "1\t0/4000000\tother\n", 18),
	       0, "one the archive has already is left alone");
	ok(repo_get(&repo, key, OBJ_WAL, &got) == 0 && got.len == strlen(history),
	   "  the archived file stays");
	buf_free(&got);

	ok(backup_history_store(&repo, "00000003.history", "garbage", 7) < 0,
	   "a file that is not a history file is refused");
	layout_wal_key("00000003.history", key, sizeof(key));
	is_int(memstore_count(repo.store, key), 0, "  and not stored");
	ok(backup_history_store(&repo, "000000030000000000000001", history,
				    strlen(history)) < 0, "a segment name is refused");
}

static int no_signal(void)
{
	return 0;
}

static void test_standby_wait(void)
{
	struct standby_wait w = {
		.repo = &repo, .backup_id = "20260101T000000Z-base",
		.wal_seg_size = WAL_SEG_SIZE_DEFAULT, .timeout = 1, .interrupted = no_signal,
	};
	struct backup_label bl, hist;
	char key[LAYOUT_WAL_KEY_MAX];

	layout_wal_key("000000010000000000000005", key, sizeof(key));
	repo_put(&repo, key, OBJ_WAL, "x", 1, 0);
	is_int(backup_standby_wait(&w, 5, 5, 1), 0, "an archived segment is not waited for");
	ok(backup_standby_wait(&w, 5, 6, 1) < 0, "a missing one times out");
	is_str(pgk_errmsg(), "WAL segment 000000010000000000000006 needed by backup "
	       "20260101T000000Z-base (taken from a standby) did not reach repository test within "
	       "1 s (standby_wal_timeout): the primary must archive it there with pgkeep wal-push",
	       "  naming the segment, the repository and the timeout");

	memset(&bl, 0, sizeof(bl));
	bl.start_lsn = 0x5000028;
	bl.start_tli = 1;
	ok(backup_standby_stop(&bl, 0x6000100, 1, &hist) < 0,
	   "a backup_label without BACKUP FROM: standby is refused");
	bl.from_standby = true;
	ok(backup_standby_stop(&bl, 0, 0, &hist) < 0, "no end position is refused");
	ok(backup_standby_stop(&bl, 0x6000100, 1, &hist) == 0 && hist.stop_lsn == 0x6000100 &&
	   hist.stop_tli == 1 && hist.start_lsn == 0x5000028,
	   "the stop is the server's end position");
}

int main(void)
{
	repo.store = memstore_open();
	repo.name = "test";
	repo.compress_level = 3;
	if (keys_generate(&repo.keys)) {
		diag("keys: %s", pgk_errmsg());
		return 1;
	}
	test_history();
	test_standby_wait();
	memstore_close(repo.store);
	keys_wipe(&repo.keys);
	return done_testing();
}

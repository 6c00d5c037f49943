/*
 * Which archived segment monitoring calls the newest: the highest one on
 * the timeline the cluster is on (the server's, else the one stored to most
 * recently), never a stale segment of a higher timeline.
 */
#include <string.h>

#include "cmd/monitor.h"
#include "tap.h"

struct seg {
	const char *name;
	int64_t mtime;
};

/* The newest of segs given a server on timeline tli (0: no server). */
static const char *newest_of(const struct seg *segs, size_t n, uint32_t tli, uint64_t srv_sysid,
			     uint64_t repo_sysid)
{
	static char out[WAL_SEG_NAME_LEN + 1];
	struct monitor_wal w = { NULL, 0, 0 };
	struct monitor_server srv;
	size_t i;

	memset(&srv, 0, sizeof(srv));
	if (tli) {
		srv.up = true;
		srv.sysid = srv_sysid;
		srv.seg_size = 16u << 20;
		snprintf(srv.current, sizeof(srv.current), "%08X%08X%08X", tli, 0u, 0x40u);
	}
	for (i = 0; i < n; i++) {
		struct pgkeep_stat st = { 16u << 20, segs[i].mtime };

		monitor_wal_add(&w, segs[i].name, &st);
	}
	monitor_wal_add(&w, "00000002.history", &(struct pgkeep_stat){ 50, 9000 });
	monitor_wal_newest(&w, tli ? &srv : NULL, repo_sysid, out);
	is_int((int)w.count, (int)n, "every segment counted, nothing else");
	monitor_wal_free(&w);
	return out;
}

int main(void)
{
	/* Live timeline 1, stored just now; a stale timeline 2 segment from days ago. */
	static const struct seg stale[] = {
		{ "000000010000000000000010", 1000 },
		{ "000000010000000000000012", 1002 },
		{ "000000010000000000000011", 1003 },
		{ "000000020000000000000003", 100 },
	};
	/* Promoted onto timeline 2 after segment 0x11: timeline 2 is live. */
	static const struct seg promoted[] = {
		{ "000000010000000000000010", 1000 },
		{ "000000010000000000000011", 1001 },
		{ "000000020000000000000011", 1002 },
		{ "000000020000000000000012", 1003 },
	};
	static const struct seg tie[] = {
		{ "000000010000000000000011", 1000 },
		{ "000000020000000000000011", 1000 },
	};
	const size_t ns = sizeof(stale) / sizeof(stale[0]);

	is_str(newest_of(stale, ns, 1, 0, 0), "000000010000000000000012",
	       "server on timeline 1: its highest segment, not the stale timeline 2 one");
	is_str(newest_of(stale, ns, 0, 0, 0), "000000010000000000000012",
	       "no server: the timeline stored to most recently");
	is_str(newest_of(stale, ns, 3, 0, 0), "000000010000000000000012",
	       "server on timeline 3 with nothing archived on it yet: the most recent below it");
	is_str(newest_of(stale, ns, 2, 0, 0), "000000020000000000000003",
	       "server on timeline 2: timeline 2's segment");
	is_str(newest_of(stale, ns, 2, 7, 8), "000000010000000000000012",
	       "a server of another cluster is not asked");
	is_str(newest_of(stale, ns, 2, 8, 8), "000000020000000000000003",
	       "the repository's own cluster is");
	is_str(newest_of(promoted, 4, 0, 0, 0), "000000020000000000000012",
	       "after a promotion, no server: the new timeline");
	is_str(newest_of(promoted, 4, 2, 0, 0), "000000020000000000000012",
	       "after a promotion, server on timeline 2: the new timeline");
	is_str(newest_of(tie, 2, 0, 0, 0), "000000020000000000000011",
	       "stored in the same second: the higher timeline");
	is_str(newest_of(NULL, 0, 1, 0, 0), "", "no segment at all: none");
	return done_testing();
}

/*
 * --tablespace-map OLDDIR=NEWDIR, spelt as pg_basebackup's -T: '\=' for a
 * '=' in a path, trailing '/'s dropped; refused: no '=' or two, relative
 * paths, '..', an OLDDIR or a NEWDIR given twice.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "cmd/restore_tblspc.h"
#include "common/error.h"
#include "common/mem.h"

static void refused(const char *arg, const char *why)
{
	struct tblspc_maps maps = { 0 };

	is_int(tblspc_map_parse(&maps, arg), PGKEEP_EINVAL, "%s is refused", why);
	ok(maps.n == 0 && strstr(pgk_errmsg(), "tablespace-map"), "  saying why: %s",
	   pgk_errmsg());
	tblspc_maps_free(&maps);
}

static void test_parse(void)
{
	struct tblspc_maps maps = { 0 };
	char *esc;

	is_int(tblspc_map_parse(&maps, "/srv/old=/srv/new"), 0, "OLDDIR=NEWDIR");
	is_int(tblspc_map_parse(&maps, "/a\\=b/=/c d//"), 0, "'\\=' in OLDDIR, trailing '/'s");
	ok(maps.n == 2 && strcmp(maps.v[0].old_dir, "/srv/old") == 0 &&
	   strcmp(maps.v[0].new_dir, "/srv/new") == 0 && strcmp(maps.v[1].old_dir, "/a=b") == 0 &&
	   strcmp(maps.v[1].new_dir, "/c d") == 0, "  both read as meant");
	is_int(tblspc_map_parse(&maps, "/srv/old=/srv/other"), PGKEEP_EINVAL,
	       "an OLDDIR mapped twice is refused");
	ok(strstr(pgk_errmsg(), "mapped twice") != NULL, "  %s", pgk_errmsg());
	is_int(tblspc_map_parse(&maps, "/srv/third=/srv/new/"), PGKEEP_EINVAL,
	       "a NEWDIR given twice (even with a trailing '/') is refused");
	is_int((int)maps.n, 2, "  the refused maps are not kept");
	tblspc_maps_free(&maps);

	refused("/srv/old", "a map without '='");
	refused("/a=/b=/c", "a map with two '='");
	refused("=/srv/new", "an empty OLDDIR");
	refused("/srv/old=", "an empty NEWDIR");
	refused("srv/old=/srv/new", "a relative OLDDIR");
	refused("/srv/old=new", "a relative NEWDIR");
	refused("/srv/old=/srv/../etc", "a NEWDIR with '..'");
	refused("/srv/./old=/srv/new", "an OLDDIR with '.'");
	refused("/srv/old=/srv/a\nb", "a NEWDIR with a newline");

	esc = tblspc_map_escape("/a=b\\c");
	is_str(esc, "/a\\=b\\c", "escape: '=' gets a '\\', nothing else does");
	free(esc);
	esc = xasprintf("%s=/new", "/a\\=b\\c");
	is_int(tblspc_map_parse(&maps, esc), 0, "an escaped OLDDIR parses back");
	ok(maps.n == 1 && strcmp(maps.v[0].old_dir, "/a=b\\c") == 0, "  to itself");
	free(esc);
	tblspc_maps_free(&maps);
}

int main(void)
{
	test_parse();
	return done_testing();
}

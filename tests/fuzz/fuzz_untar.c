/*
 * libFuzzer target: the extraction of a base backup's tar (pg/untar.c) into
 * a scratch directory.  Whatever the input, nothing may appear beside that
 * directory, every file in it is 0600, every directory 0700, and every link
 * one untar_link_allowed accepts; anything else aborts.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/untar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], root[96];

static int check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path + strlen(root) + 1;
	char target[4096];
	ssize_t n;

	(void)flag;
	if (ftw->level == 0)
		return (st->st_mode & 07777) == UNTAR_DIR_MODE ? 0 : (abort(), 0);
	if (S_ISREG(st->st_mode) && (st->st_mode & 07777) != UNTAR_FILE_MODE)
		abort();
	if (S_ISDIR(st->st_mode) && (st->st_mode & 07777) != UNTAR_DIR_MODE)
		abort();
	if (S_ISLNK(st->st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			abort();
		target[n] = '\0';
		if (!untar_link_allowed(rel, target))
			abort();
	} else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		abort();
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag;
	return ftw->level == 0 ? 0 : remove(path);
}

/* The scratch directory's parent holds only the directory itself. */
static void check_beside(void)
{
	struct dirent *d;
	DIR *dir = opendir(base);

	if (!dir)
		abort();
	while ((d = readdir(dir)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") && strcmp(d->d_name, "data"))
			abort();
	closedir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct archive_entry *e;
	struct archive *in;
	struct untar u;
	int rc = 0;

	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/pgkeep-fuzz-untar.XXXXXX");
		if (!mkdtemp(base) || libarchive_load() < 0)
			abort();
		snprintf(root, sizeof(root), "%s/data", base);
		if (mkdir(root, 0700) < 0)
			abort();
		umask(022);
	}
	if (libarchive_read_new(&in) < 0)
		abort();
	archive_read_support_format_tar(in);
	if (archive_read_open_memory(in, data, size) == ARCHIVE_OK && untar_open(&u, root) == 0) {
		while (rc == 0 && archive_read_next_header(in, &e) == ARCHIVE_OK)
			rc = untar_entry(&u, in, e, NULL);
		untar_close(&u);
	}
	archive_read_free(in);
	nftw(root, check_entry, 16, FTW_PHYS);
	check_beside();
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

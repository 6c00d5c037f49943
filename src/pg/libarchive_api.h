/*
 * libarchive, opened the first time a command reads or writes a tar or a
 * compressed dump (see common/lazylib.h).  Include this, never <archive.h>
 * or <archive_entry.h>: the types are libarchive's own, and each function is
 * #defined to its slot in a table that loading fills.
 */
#ifndef PGK_LIBARCHIVE_API_H
#define PGK_LIBARCHIVE_API_H

#include <archive.h>
#include <archive_entry.h>

#include "common/lazylib.h"

/*
 * Every libarchive function pgkeep calls.  A new one takes a line here and
 * its #define below; forget the #define and the call does not link (pgkeep
 * does not link libarchive), forget this line and it does not compile.
 */
#define PGK_LIBARCHIVE_FUNCS(X) \
	X(archive_entry_filetype) \
	X(archive_entry_hardlink) \
	X(archive_entry_mtime) \
	X(archive_entry_mtime_nsec) \
	X(archive_entry_pathname) \
	X(archive_entry_set_hardlink) \
	X(archive_entry_set_pathname) \
	X(archive_entry_size) \
	X(archive_entry_symlink) \
	X(archive_error_string) \
	X(archive_filter_bytes) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_fd) \
	X(archive_read_open_memory) \
	X(archive_read_support_filter_by_code) \
	X(archive_read_support_format_raw) \
	X(archive_read_support_format_tar) \
	X(archive_write_data_block) \
	X(archive_write_disk_new) \
	X(archive_write_disk_set_options) \
	X(archive_write_finish_entry) \
	X(archive_write_free) \
	X(archive_write_header)

/* The slots take their types from archive.h, so a call is type-checked. */
struct pgk_libarchive {
#define PGK_LIBARCHIVE_SLOT(f) __typeof__(f) *fn_##f;
	PGK_LIBARCHIVE_FUNCS(PGK_LIBARCHIVE_SLOT)
#undef PGK_LIBARCHIVE_SLOT
};
extern struct pgk_libarchive pgk_libarchive;
/* What libarchive_load() opens; not static only so that a test can break it. */
extern struct lazylib libarchive_lazylib;

/* 0, or "cannot load libarchive.so.13 (needed for tar streams and compressed dumps): why". */
int libarchive_load(void);

/*
 * The only ways to a struct archive: both load libarchive first, so an
 * archive in hand proves the table is filled, and every other function
 * takes one (or an entry read from one).
 */
int libarchive_read_new(struct archive **out);
int libarchive_write_disk_new(struct archive **out);

#define archive_entry_filetype		(pgk_libarchive.fn_archive_entry_filetype)
#define archive_entry_hardlink		(pgk_libarchive.fn_archive_entry_hardlink)
#define archive_entry_mtime		(pgk_libarchive.fn_archive_entry_mtime)
#define archive_entry_mtime_nsec	(pgk_libarchive.fn_archive_entry_mtime_nsec)
#define archive_entry_pathname		(pgk_libarchive.fn_archive_entry_pathname)
#define archive_entry_set_hardlink	(pgk_libarchive.fn_archive_entry_set_hardlink)
#define archive_entry_set_pathname	(pgk_libarchive.fn_archive_entry_set_pathname)
#define archive_entry_size		(pgk_libarchive.fn_archive_entry_size)
#define archive_entry_symlink		(pgk_libarchive.fn_archive_entry_symlink)
#define archive_error_string		(pgk_libarchive.fn_archive_error_string)
#define archive_filter_bytes		(pgk_libarchive.fn_archive_filter_bytes)
#define archive_read_data		(pgk_libarchive.fn_archive_read_data)
#define archive_read_data_block		(pgk_libarchive.fn_archive_read_data_block)
#define archive_read_free		(pgk_libarchive.fn_archive_read_free)
#define archive_read_next_header	(pgk_libarchive.fn_archive_read_next_header)
#define archive_read_open_fd		(pgk_libarchive.fn_archive_read_open_fd)
#define archive_read_open_memory	(pgk_libarchive.fn_archive_read_open_memory)
#define archive_read_support_filter_by_code (pgk_libarchive.fn_archive_read_support_filter_by_code)
#define archive_read_support_format_raw	(pgk_libarchive.fn_archive_read_support_format_raw)
#define archive_read_support_format_tar	(pgk_libarchive.fn_archive_read_support_format_tar)
#define archive_write_data_block	(pgk_libarchive.fn_archive_write_data_block)
#define archive_write_disk_set_options	(pgk_libarchive.fn_archive_write_disk_set_options)
#define archive_write_finish_entry	(pgk_libarchive.fn_archive_write_finish_entry)
#define archive_write_free		(pgk_libarchive.fn_archive_write_free)
#define archive_write_header		(pgk_libarchive.fn_archive_write_header)

/*
 * Constructors: through a slot they could run before anything loaded
 * libarchive.  Use the wrappers above, or add one for a new constructor.
 */
#pragma GCC poison archive_read_new archive_write_disk_new archive_write_new \
	archive_read_disk_new archive_entry_new

#endif

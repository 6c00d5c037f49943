/*
 * Whole reads and writes on a file descriptor: short transfers and EINTR
 * retried, failures reported once with pgk_error naming `what`.
 */
#ifndef PGK_FILEIO_H
#define PGK_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Write all len bytes. */
int write_full(int fd, const void *buf, size_t len, const char *what);
/* Read exactly len bytes from offset off (pread): a file that ends first
 * "shrank while being read". */
int pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what);

#endif

/*
 * Whole reads and writes: the loops every caller of read(2) and write(2)
 * needs, written once.
 */
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fileio.h"

int write_full(int fd, const void *buf, size_t len, const char *what)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot write %s: %s", what, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgk_error(PGKEEP_EIO, "cannot read %s: %s", what, strerror(errno));
		if (n == 0)
			return pgk_error(PGKEEP_EIO, "%s shrank while being read", what);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

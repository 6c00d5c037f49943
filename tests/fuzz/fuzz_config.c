/*
 * libFuzzer target: the config parser, fed through a memory file so that
 * the real file path (config_load) is what runs.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgk_config cfg = { 0 };
	char path[64];
	int fd = memfd_create("pgkeep-fuzz.conf", MFD_CLOEXEC);

	/* A memfd is 0777; config_load refuses a config others may write. */
	if (fd < 0 || fchmod(fd, 0600) < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (config_load(&cfg, path) == 0) {
		const struct pgk_config_repo *rc;

		(void)config_repo(&cfg, NULL, &rc);
	}
	config_free(&cfg);
	close(fd);
	return 0;
}

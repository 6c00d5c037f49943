/*
 * libFuzzer target: the checks wal-push runs on timeline history and backup
 * history files before storing them, and the WAL file names they are read
 * against.  The input's first line is the file's name, the rest its body;
 * the body is checked under that name and under two fixed names, so that
 * the seeds reach both checks whatever the name says.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/walmeta.h"
#include "pg/walname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_as(const char *name, const uint8_t *body, size_t len)
{
	struct wal_name wn;

	if (walname_parse(name, &wn) < 0)
		return;
	if (wn.type == WAL_HISTORY)
		(void)walmeta_check_history(body, len, &wn, name);
	else if (wn.type == WAL_BACKUP)
		(void)walmeta_check_backup(body, len, &wn, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
	size_t name_len = nl ? (size_t)(nl - data) : 0;
	char name[65];
	uint8_t *body;
	size_t len;

	memcpy(name, data, name_len);
	name[name_len] = '\0';
	/* A copy of exactly its own size, so a read past the end is caught. */
	len = size - (nl ? name_len + 1 : 0);
	body = malloc(len ? len : 1);
	if (!body)
		return 0;
	memcpy(body, data + (size - len), len);
	check_as(name, body, len);
	check_as("00000003.history", body, len);
	check_as("000000010000000000000002.00000028.backup", body, len);
	free(body);
	return 0;
}

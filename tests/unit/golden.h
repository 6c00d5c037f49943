/*
 * What the golden backups in tests/data/backups hold: make_golden wrote them
 * once with the writers of their day, test_golden reads them back forever.
 * Only the content lives here; the stored bytes are the files themselves.
 */
#ifndef PGK_TEST_GOLDEN_H
#define PGK_TEST_GOLDEN_H

#include <stdint.h>
#include <stdio.h>

#include "common/mem.h"

/* The key: tests/data/format-v1/keyslot.json opened with this passphrase. */
#define GOLDEN_PASSPHRASE "golden passphrase"

/* Backup 1: manifest format 2, base.tar of three chunks in two lists. */
#define GOLDEN_BACKUP_1 "20261208T020000Z-base"
/* Backup 2: manifest format 3, base.tar (first chunk a delta) and a tablespace. */
#define GOLDEN_BACKUP_2 "20261208T030000Z-base"
#define GOLDEN_SYSID 7312345678901234567ULL
#define GOLDEN_PG_VERSION 150010
#define GOLDEN_TBLSPC_OID 16385
#define GOLDEN_TBLSPC_LOCATION "/srv/golden/tblspc"

/* Rows first .. first+n-1 of a text; variant v changes every 16th row. */
static inline void golden_rows(struct pgk_buf *out, unsigned first, unsigned n, unsigned v)
{
	unsigned i;

	for (i = first; i < first + n; i++)
		buf_printf(out, "row %06u of the golden backup, variant %u\n", i,
			   i % 16 == 0 ? v : 0);
}

/* n bytes that no compressor shrinks, from a fixed seed (xorshift32). */
static inline void golden_noise(struct pgk_buf *out, size_t n, uint32_t seed)
{
	uint8_t b;
	size_t i;

	for (i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		b = (uint8_t)(seed >> 24);
		buf_append(out, &b, 1);
	}
}

/* The chunks, as plaintext: backup 1's base.tar is A0 N A2, backup 2's B0 N A2, its tablespace T. */
static inline void golden_chunk(struct pgk_buf *out, char which)
{
	switch (which) {
	case 'a': golden_rows(out, 0, 120, 0); break;		/* A0 */
	case 'n': golden_noise(out, 3000, 0x9e3779b9u); break;	/* N, stored uncompressed */
	case 'c': golden_rows(out, 120, 60, 0); break;		/* A2 */
	case 'b': golden_rows(out, 0, 120, 1); break;		/* B0, a delta of A0 */
	case 't': golden_rows(out, 1000, 40, 2); break;		/* T */
	}
}

#endif

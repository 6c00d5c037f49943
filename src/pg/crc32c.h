/*
 * CRC-32C (Castagnoli), the checksum PostgreSQL's backup manifests offer
 * besides the SHA-2 family: reflected polynomial 0x82F63B78, initial value
 * and final xor 0xFFFFFFFF.
 */
#ifndef PGK_CRC32C_H
#define PGK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0xFFFFFFFFu

/* Feed len bytes into a running value that starts at CRC32C_INIT. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* The CRC of everything fed so far. */
static inline uint32_t crc32c_final(uint32_t crc)
{
	return crc ^ 0xFFFFFFFFu;
}

#endif

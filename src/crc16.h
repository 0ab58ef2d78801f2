/* crc16.h - Redis Cluster key slot computation (CRC16-XMODEM, hash tags). Pure. */
#ifndef DLOCK_CRC16_H
#define DLOCK_CRC16_H

#include <stddef.h>
#include <stdint.h>

/* CRC16 (XMODEM polynomial 0x1021, as Redis Cluster uses). */
uint16_t dl_crc16(const char *buf, size_t len);

/* Cluster slot (0..16383) of a key, honouring the {hash tag} rule. */
int dl_key_slot(const char *key, size_t len);

#endif

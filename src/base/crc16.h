/* crc16.h - Redis Cluster key slot computation (CRC16-XMODEM, hash tags). Pure. */
#ifndef DLOCK_CRC16_H
#define DLOCK_CRC16_H

#include <stddef.h>
#include <stdint.h>

/* CRC16 (XMODEM polynomial 0x1021, as Redis Cluster uses) of len bytes.
 * dl_crc16("123456789", 9) == 0x31C3. buf may be NULL when len is 0. */
uint16_t dl_crc16(const char *buf, size_t len);

/* Cluster slot (0..16383) of a key of len bytes (NULs allowed), honouring
 * the {hash tag} rule exactly as Redis does: if the key has a '{' and a '}'
 * after it with at least one byte between them, only the bytes between the
 * first '{' and the next '}' are hashed. key may be NULL when len is 0. */
int dl_key_slot(const char *key, size_t len);

#endif

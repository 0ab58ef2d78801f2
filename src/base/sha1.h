/* sha1.h - SHA-1 of a buffer, for EVALSHA script digests. Pure. */
#ifndef DLOCK_SHA1_H
#define DLOCK_SHA1_H

#include <stddef.h>

/* Write the 40-hex-digit SHA-1 of buf[0..len) and a NUL into out[41]. */
void dl_sha1_hex(const void *buf, size_t len, char out[41]);

#endif

/* token.h - lock tokens: 128 bits from the kernel CSPRNG, hex-encoded. Pure
 * apart from getrandom(). */
#ifndef DLOCK_TOKEN_H
#define DLOCK_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define DL_TOKEN_BYTES 16
#define DL_TOKEN_HEX (2 * DL_TOKEN_BYTES) /* 32 characters, plus NUL */

/* Fill buf with n random bytes from getrandom(2). Returns 0, or -1 if the
 * kernel could not provide them (errno set). */
int dl_random_bytes(void *buf, size_t n);

/* Write a new 32-hex-digit token and a NUL into out[33]. Returns 0 or -1. */
int dl_token_new(char out[DL_TOKEN_HEX + 1]);

/* 1 if s is exactly 32 lowercase hex digits, else 0. */
int dl_token_valid(const char *s);

/* Encode n bytes as lowercase hex into out (2n+1 bytes with NUL). */
void dl_hex_encode(const unsigned char *in, size_t n, char *out);

#endif

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

/* A per-client pool of kernel randomness, so that an acquire does not pay
 * a getrandom(2) call each time. The page is marked MADV_WIPEONFORK: a
 * forked child finds it zeroed and refills it, so parent and child never
 * share tokens. Used bytes are wiped. Where the kernel lacks
 * MADV_WIPEONFORK the pool is off and every token calls getrandom. */
typedef struct dl_rand_pool {
    unsigned char *page; /* NULL: no pool */
} dl_rand_pool;

void dl_pool_init(dl_rand_pool *p);
void dl_pool_free(dl_rand_pool *p);
/* Like dl_token_new, drawing from the pool. Returns 0 or -1. */
int dl_pool_token(dl_rand_pool *p, char out[DL_TOKEN_HEX + 1]);

/* Decimal digits of v into out (no NUL); returns the length (<= 20). */
size_t dl_fmt_i64(char *out, int64_t v);

/* 1 if s is exactly 32 lowercase hex digits, else 0. */
int dl_token_valid(const char *s);

/* Encode n bytes as lowercase hex into out (2n+1 bytes with NUL). */
void dl_hex_encode(const unsigned char *in, size_t n, char *out);

#endif

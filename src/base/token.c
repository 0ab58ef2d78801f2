/* token.c - random tokens from getrandom(2). */
#include "token.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

int dl_random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void dl_hex_encode(const unsigned char *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int dl_token_new(char out[DL_TOKEN_HEX + 1]) {
    unsigned char raw[DL_TOKEN_BYTES];
    if (dl_random_bytes(raw, sizeof raw) != 0)
        return -1;
    dl_hex_encode(raw, sizeof raw, out);
    return 0;
}

int dl_token_valid(const char *s) {
    if (s == NULL)
        return 0;
    for (int i = 0; i < DL_TOKEN_HEX; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    return s[DL_TOKEN_HEX] == '\0';
}

/* Pool page layout: [0, 8) bytes still unused (a size_t), [64, 4096) the
 * random bytes, consumed from the front. */
#define POOL_PAGE 4096
#define POOL_DATA 64
#define POOL_BYTES (POOL_PAGE - POOL_DATA)

void dl_pool_init(dl_rand_pool *p) {
    p->page = NULL;
#ifdef MADV_WIPEONFORK
    void *m = mmap(NULL, POOL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    if (madvise(m, POOL_PAGE, MADV_WIPEONFORK) != 0) {
        munmap(m, POOL_PAGE);
        return;
    }
    p->page = m; /* zero-filled: "0 bytes left" */
#endif
}

void dl_pool_free(dl_rand_pool *p) {
    if (p->page != NULL) {
        explicit_bzero(p->page, POOL_PAGE);
        munmap(p->page, POOL_PAGE);
        p->page = NULL;
    }
}

int dl_pool_token(dl_rand_pool *p, char out[DL_TOKEN_HEX + 1]) {
    if (p->page == NULL)
        return dl_token_new(out);
    size_t left;
    memcpy(&left, p->page, sizeof left);
    if (left < DL_TOKEN_BYTES || left > POOL_BYTES) {
        if (dl_random_bytes(p->page + POOL_DATA, POOL_BYTES) != 0)
            return -1;
        left = POOL_BYTES;
    }
    unsigned char *src = p->page + POOL_DATA + (POOL_BYTES - left);
    dl_hex_encode(src, DL_TOKEN_BYTES, out);
    explicit_bzero(src, DL_TOKEN_BYTES);
    left -= DL_TOKEN_BYTES;
    memcpy(p->page, &left, sizeof left);
    return 0;
}

size_t dl_fmt_i64(char *out, int64_t v) {
    char tmp[24];
    size_t k = 0, n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        out[n++] = '-';
    while (k > 0)
        out[n++] = tmp[--k];
    return n;
}

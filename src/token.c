/* token.c - random tokens from getrandom(2). */
#include "token.h"

#include <errno.h>
#include <string.h>
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

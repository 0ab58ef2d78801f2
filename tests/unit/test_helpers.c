/* test_helpers.c - the pure helpers: backoff, validity, tokens, SHA-1,
 * status strings. No server. */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "dlock.h"
#include "sha1.h"
#include "token.h"
#include "unit.h"

static void test_backoff(void) {
    uint64_t rng = 12345;
    /* Without jitter: base * 2^(n-1), capped. */
    CHECK_INT(dl_backoff_ms(1, 100, 1000, 0, &rng), 100);
    CHECK_INT(dl_backoff_ms(2, 100, 1000, 0, &rng), 200);
    CHECK_INT(dl_backoff_ms(3, 100, 1000, 0, &rng), 400);
    CHECK_INT(dl_backoff_ms(4, 100, 1000, 0, &rng), 800);
    CHECK_INT(dl_backoff_ms(5, 100, 1000, 0, &rng), 1000);
    CHECK_INT(dl_backoff_ms(1000000, 100, 1000, 0, &rng), 1000); /* no overflow */
    CHECK_INT(dl_backoff_ms(1, 0, 0, 0, &rng), 1);                /* floors */
    CHECK_INT(dl_backoff_ms(3, 100, 50, 0, &rng), 100);           /* max < base */
    /* With jitter: within +-pct, and not constant. */
    int64_t lo = 1 << 30, hi = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t d = dl_backoff_ms(2, 100, 1000, 20, &rng);
        CHECK(d >= 160 && d <= 240);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(hi - lo > 40);
    CHECK(dl_backoff_ms(1, 1, 10, 100, &rng) >= 1);
    /* The PRNG never sticks at zero. */
    uint64_t z = 0;
    CHECK(dl_rand_next(&z) != 0 && z != 0);
}

static void test_validity(void) {
    CHECK_INT(dl_drift_ms(10000, 0.01), 102);
    CHECK_INT(dl_drift_ms(1, 0.01), 3);
    CHECK_INT(dl_drift_ms(1000, 0), 2);
    CHECK_INT(dl_drift_ms(1000, -1), 2);
    CHECK_INT(dl_valid_until_us(5000000, 10000, 0.01), 5000000 + (10000 - 102) * 1000);
    CHECK(dl_valid_until_us(0, DLOCK_TTL_MAX, 0.49) > 0);
}

static void test_tokens(void) {
    char a[DL_TOKEN_HEX + 1], b[DL_TOKEN_HEX + 1];
    CHECK_INT(dl_token_new(a), 0);
    CHECK_INT(dl_token_new(b), 0);
    CHECK_INT(strlen(a), 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(dl_token_valid(a));
    CHECK(!dl_token_valid(NULL));
    CHECK(!dl_token_valid(""));
    CHECK(!dl_token_valid("0123456789abcdef0123456789abcdeF"));
    CHECK(!dl_token_valid("0123456789abcdef0123456789abcde"));
    CHECK(!dl_token_valid("0123456789abcdef0123456789abcdef0"));
    CHECK(dl_token_valid("0123456789abcdef0123456789abcdef"));
    /* Bits look random: each hex digit position varies over many tokens. */
    int seen[32][16] = {{0}};
    for (int i = 0; i < 400; i++) {
        CHECK_INT(dl_token_new(a), 0);
        for (int j = 0; j < 32; j++)
            seen[j][a[j] <= '9' ? a[j] - '0' : a[j] - 'a' + 10]++;
    }
    for (int j = 0; j < 32; j++) {
        int distinct = 0;
        for (int k = 0; k < 16; k++)
            distinct += seen[j][k] > 0;
        CHECK(distinct >= 12);
    }
    unsigned char raw[3] = {0x00, 0xab, 0xff};
    char hex[7];
    dl_hex_encode(raw, 3, hex);
    CHECK_STR(hex, "00abff");
}

static void test_pool(void) {
    dl_rand_pool p;
    dl_pool_init(&p);
    char a[DL_TOKEN_HEX + 1], b[DL_TOKEN_HEX + 1];
    /* Many more tokens than one page holds: refills work. */
    char prev[DL_TOKEN_HEX + 1] = "";
    for (int i = 0; i < 1000; i++) {
        CHECK_INT(dl_pool_token(&p, a), 0);
        CHECK(dl_token_valid(a));
        CHECK(strcmp(a, prev) != 0);
        memcpy(prev, a, sizeof prev);
    }
    /* A forked child must not draw the parent's next token. */
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char t[DL_TOKEN_HEX + 1];
        dl_pool_token(&p, t);
        ssize_t w = write(fds[1], t, DL_TOKEN_HEX);
        _exit(w == DL_TOKEN_HEX ? 0 : 1);
    }
    CHECK_INT(dl_pool_token(&p, a), 0);
    CHECK_INT(read(fds[0], b, DL_TOKEN_HEX), DL_TOKEN_HEX);
    b[DL_TOKEN_HEX] = '\0';
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strcmp(a, b) != 0);
    close(fds[0]);
    close(fds[1]);
    dl_pool_free(&p);
    dl_pool_free(&p); /* twice is harmless */
}

static void test_fmt(void) {
    char buf[24];
    size_t n = dl_fmt_i64(buf, 0);
    CHECK_INT(n, 1);
    CHECK(memcmp(buf, "0", 1) == 0);
    n = dl_fmt_i64(buf, 1234567890123LL);
    CHECK(n == 13 && memcmp(buf, "1234567890123", 13) == 0);
    n = dl_fmt_i64(buf, -42);
    CHECK(n == 3 && memcmp(buf, "-42", 3) == 0);
    n = dl_fmt_i64(buf, INT64_MIN);
    CHECK(n == 20 && memcmp(buf, "-9223372036854775808", 20) == 0);
}

static void test_sha1(void) {
    char out[41];
    dl_sha1_hex("", 0, out);
    CHECK_STR(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    dl_sha1_hex("abc", 3, out);
    CHECK_STR(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    dl_sha1_hex(m, strlen(m), out);
    CHECK_STR(out, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* Lengths around the 55/56/64-byte padding boundaries. */
    char buf[130];
    memset(buf, 'a', sizeof buf);
    dl_sha1_hex(buf, 55, out);
    CHECK_STR(out, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    dl_sha1_hex(buf, 56, out);
    CHECK_STR(out, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    dl_sha1_hex(buf, 64, out);
    CHECK_STR(out, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

static void test_status_strings(void) {
    CHECK_STR(dlock_err_name(DLOCK_EBUSY), "DLOCK_EBUSY");
    CHECK_STR(dlock_err_name(DLOCK_EUNKNOWN), "DLOCK_EUNKNOWN");
    CHECK_STR(dlock_strerror(DLOCK_OK), "success");
    CHECK_STR(dlock_strerror(-999), "unknown status");
    CHECK_STR(dlock_err_name(-999), "DLOCK_UNKNOWN_STATUS");
}

static void test_clock(void) {
    int64_t a = dl_mono_us();
    dl_sleep_until_us(a + 2000);
    int64_t b = dl_mono_us();
    CHECK(b - a >= 2000);
    CHECK(dl_wall_ms() > 1600000000000LL);
}

int main(void) {
    test_backoff();
    test_validity();
    test_tokens();
    test_pool();
    test_fmt();
    test_sha1();
    test_status_strings();
    test_clock();
    UNIT_DONE();
}

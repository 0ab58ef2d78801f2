/* fuzz_url.c - libFuzzer target for dl_url_parse, dl_url_redact (and the
 * cluster slot function, which is cheap to cover on the same bytes).
 *
 * The input is used as a NUL-terminated URL (an embedded NUL ends it).
 * Beyond "no crash, no sanitizer report", it checks, and abort()s on:
 *   - the return value is 0 or -1; the error message is empty on success,
 *     non-empty on failure, NUL-terminated, one printable line, and the
 *     same (truncated) with a smaller buffer; errlen 0 writes nothing;
 *   - parsing is deterministic (same bytes in the struct twice);
 *   - a parsed URL is consistent: hosts non-empty and printable, ports in
 *     1..65535, at most DL_URL_MAX_HOSTS, kind matches the scheme and host
 *     count, strings terminated, option values in range, no duplicate host;
 *   - redaction: output is terminated, truncation gives a prefix of the full
 *     output; for a valid URL redacting twice changes nothing, without a
 *     password the output is the input, and with one the output is the input
 *     with exactly one span replaced by "***", where that span percent-decodes
 *     to the parsed password; the redacted URL parses to the same struct
 *     with the password "***";
 *   - password leaks: the input's password span (as redaction sees it) is
 *     replaced by a canary; the canary must not appear in the error message
 *     unless it also survives in the redacted URL (i.e. sits outside the
 *     password).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc16.h"
#include "url.h"

#define CANARY "Zq7CanaryPw9"
#define MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)        \
    do {                     \
        if (!(cond))         \
            abort();         \
    } while (0)

static int terminated(const char *buf, size_t cap) { return memchr(buf, '\0', cap) != NULL; }

static int printable_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static int same_nocase(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Independent percent-decoder: does s[0..n) decode to want? */
static int decodes_to(const char *s, size_t n, const char *want)
{
    size_t o = 0, wn = strlen(want);
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return 0;
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (o >= wn || (unsigned char)want[o] != c)
            return 0;
        o++;
    }
    return o == wn;
}

static void check_parsed(const dl_url *u)
{
    REQUIRE(u->kind == DL_URL_SINGLE || u->kind == DL_URL_REDLOCK ||
            u->kind == DL_URL_SENTINEL || u->kind == DL_URL_CLUSTER);
    REQUIRE(u->tls == 0 || u->tls == 1);
    REQUIRE(u->unix_socket == 0 || u->unix_socket == 1);
    REQUIRE(u->has_password == 0 || u->has_password == 1);
    REQUIRE(u->has_prefix == 0 || u->has_prefix == 1);
    REQUIRE(terminated(u->path, sizeof u->path));
    REQUIRE(terminated(u->user, sizeof u->user));
    REQUIRE(terminated(u->password, sizeof u->password));
    REQUIRE(terminated(u->master_name, sizeof u->master_name));
    REQUIRE(terminated(u->prefix, sizeof u->prefix));
    REQUIRE(terminated(u->tls_ca, sizeof u->tls_ca));
    REQUIRE(terminated(u->tls_ca_dir, sizeof u->tls_ca_dir));
    REQUIRE(terminated(u->tls_cert, sizeof u->tls_cert));
    REQUIRE(terminated(u->tls_key, sizeof u->tls_key));
    REQUIRE(terminated(u->tls_server_name, sizeof u->tls_server_name));
    REQUIRE(u->tls_verify == 0 || u->tls_verify == 1);
    /* TLS options only with a TLS scheme; a client certificate with its key. */
    if (!u->tls)
        REQUIRE(u->tls_verify == 1 && u->tls_ca[0] == '\0' && u->tls_ca_dir[0] == '\0' &&
                u->tls_cert[0] == '\0' && u->tls_key[0] == '\0' &&
                u->tls_server_name[0] == '\0');
    REQUIRE((u->tls_cert[0] == '\0') == (u->tls_key[0] == '\0'));
    REQUIRE(u->tls_verify || (u->tls_ca[0] == '\0' && u->tls_ca_dir[0] == '\0'));
    REQUIRE(u->has_password || u->password[0] == '\0');
    REQUIRE(u->has_prefix || u->prefix[0] == '\0');
    REQUIRE(u->db >= 0);
    /* The limits url.h states (1 h; replica_timeout 0 = as long as the
     * call allows; replicas 0..100). */
    REQUIRE(u->connect_timeout_ms == -1 ||
            (u->connect_timeout_ms >= 1 && u->connect_timeout_ms <= 3600000));
    REQUIRE(u->command_timeout_ms == -1 ||
            (u->command_timeout_ms >= 1 && u->command_timeout_ms <= 3600000));
    REQUIRE(u->replica_timeout_ms == -1 ||
            (u->replica_timeout_ms >= 0 && u->replica_timeout_ms <= 3600000));
    REQUIRE(u->replicas >= -1 && u->replicas <= 100);

    if (u->unix_socket) {
        REQUIRE(u->kind == DL_URL_SINGLE);
        REQUIRE(u->tls == 0);
        REQUIRE(u->nhosts == 0);
        REQUIRE(u->path[0] == '/' && u->path[1] != '\0');
    } else {
        REQUIRE(u->path[0] == '\0');
        REQUIRE(u->nhosts >= 1 && u->nhosts <= DL_URL_MAX_HOSTS);
        if (u->kind == DL_URL_SINGLE)
            REQUIRE(u->nhosts == 1);
        if (u->kind == DL_URL_REDLOCK)
            REQUIRE(u->nhosts > 1);
        for (int i = 0; i < u->nhosts; i++) {
            const dl_host *h = &u->hosts[i];
            REQUIRE(terminated(h->host, sizeof h->host));
            REQUIRE(h->host[0] != '\0');
            for (const char *c = h->host; *c; c++)
                REQUIRE((unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f);
            REQUIRE(h->port >= 1 && h->port <= 65535);
            for (int k = 0; k < i; k++)
                REQUIRE(!(u->hosts[k].port == h->port && same_nocase(u->hosts[k].host, h->host)));
        }
    }
    if (u->kind == DL_URL_SENTINEL)
        REQUIRE(u->master_name[0] != '\0');
    else
        REQUIRE(u->master_name[0] == '\0');
}

/* Find b, e with r == s[0..b) "***" s[e..len) and (if want != NULL) s[b..e)
 * decoding to want. Returns 1 and sets *pb, *pe when found. */
static int split_redaction(const char *s, const char *r, const char *want, size_t *pb,
                           size_t *pe)
{
    size_t len = strlen(s), rlen = strlen(r), p = 0;

    if (rlen < 3)
        return 0;
    while (p < len && p < rlen && s[p] == r[p])
        p++;
    if (p > rlen - 3)
        p = rlen - 3;
    for (size_t b = p + 1; b-- > 0;) {
        size_t tail = rlen - b - 3;
        if (tail > len || len - tail < b)
            continue;
        size_t e = len - tail;
        if (memcmp(s, r, b) != 0 || memcmp(r + b, "***", 3) != 0 ||
            memcmp(s + e, r + b + 3, tail) != 0)
            continue;
        if (want != NULL && !decodes_to(s + b, e - b, want))
            continue;
        *pb = b;
        *pe = e;
        return 1;
    }
    return 0;
}

static void check_one(const char *s, int depth)
{
    size_t len = strlen(s);
    dl_url u, u2;
    char err[256], err2[256], small[17];

    /* Parse, error buffer behaviour, determinism. */
    memset(err, 'x', sizeof err);
    int rc = dl_url_parse(s, &u, err, sizeof err);
    REQUIRE(rc == 0 || rc == -1);
    REQUIRE(terminated(err, sizeof err));
    REQUIRE(printable_line(err));
    REQUIRE(rc == 0 ? err[0] == '\0' : err[0] != '\0');

    size_t cap = 1 + len % sizeof small;
    memset(small, 'x', sizeof small);
    REQUIRE(dl_url_parse(s, &u2, small, cap) == rc);
    REQUIRE(terminated(small, cap));
    REQUIRE(strlen(small) == (strlen(err) < cap - 1 ? strlen(err) : cap - 1));
    REQUIRE(strncmp(small, err, strlen(small)) == 0);
    REQUIRE(memcmp(&u, &u2, sizeof u) == 0);
    memset(small, 'x', sizeof small);
    REQUIRE(dl_url_parse(s, &u2, small, 0) == rc);
    REQUIRE(small[0] == 'x');

    if (rc == 0)
        check_parsed(&u);

    /* Redaction: full output, truncation, idempotence. */
    size_t rcap = len + 4; /* at most 3 bytes longer than the input */
    char *r = malloc(rcap), *r2 = malloc(rcap);
    REQUIRE(r != NULL && r2 != NULL);
    dl_url_redact(s, r, rcap);
    size_t rlen = strlen(r);
    REQUIRE(rlen <= len + 3);
    REQUIRE(strcmp(r, s) == 0 || strstr(r, "***") != NULL);
    if (rc == 0) {
        /* Redacting twice changes nothing (for a URL the parser rejects, a
         * second pass may hide more, as the first removed the '/' or '?'
         * that made an '@' stray). */
        dl_url_redact(r, r2, rcap);
        REQUIRE(strcmp(r, r2) == 0);
    }
    size_t tcap = 1 + (len * 7) % rcap;
    dl_url_redact(s, r2, tcap);
    REQUIRE(strlen(r2) == (rlen < tcap - 1 ? rlen : tcap - 1));
    REQUIRE(strncmp(r2, r, strlen(r2)) == 0);
    if (strcmp(r, s) != 0) {
        size_t b, e;
        REQUIRE(split_redaction(s, r, NULL, &b, &e));
    }

    if (rc == 0) {
        if (!u.has_password) {
            REQUIRE(strcmp(r, s) == 0);
        } else {
            size_t b, e;
            REQUIRE(split_redaction(s, r, u.password, &b, &e));
            REQUIRE(dl_url_parse(r, &u2, err2, sizeof err2) == 0);
            REQUIRE(strcmp(u2.password, "***") == 0);
            memcpy(u2.password, u.password, sizeof u2.password);
            REQUIRE(memcmp(&u, &u2, sizeof u) == 0);
        }
    }

    /* Password leak check with a canary in the password span. */
    if (depth == 0 && strcmp(r, s) != 0) {
        size_t b, e;
        if (split_redaction(s, r, NULL, &b, &e)) {
            size_t n2 = b + strlen(CANARY) + (len - e);
            char *s2 = malloc(n2 + 1);
            REQUIRE(s2 != NULL);
            memcpy(s2, s, b);
            memcpy(s2 + b, CANARY, strlen(CANARY));
            memcpy(s2 + b + strlen(CANARY), s + e, len - e);
            s2[n2] = '\0';

            char *r3 = malloc(n2 + 4);
            REQUIRE(r3 != NULL);
            dl_url_redact(s2, r3, n2 + 4);
            if (dl_url_parse(s2, &u2, err2, sizeof err2) != 0 && strstr(r3, CANARY) == NULL)
                REQUIRE(strstr(err2, CANARY) == NULL);
            free(r3);
            check_one(s2, 1);
            free(s2);
        }
    }
    free(r);
    free(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;

    /* Slots: always in range; without '{' the whole key is hashed. */
    int slot = dl_key_slot((const char *)data, size);
    REQUIRE(slot >= 0 && slot < 16384);
    if (memchr(data, '{', size) == NULL)
        REQUIRE(slot == (dl_crc16((const char *)data, size) & 16383));

    char *s = malloc(size + 1);
    REQUIRE(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    check_one(s, 0);
    free(s);
    return 0;
}

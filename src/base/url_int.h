/* url_int.h - shared by the URL parser's files: url.c (scheme, hosts, path,
 * redaction), url_opts.c (the query options) and url_util.c (helpers both
 * use). Not for other code. The parser works on (pointer, length) spans of
 * the caller's string. */
#ifndef DLOCK_URL_INT_H
#define DLOCK_URL_INT_H

#include <stddef.h>
#include <string.h>

#include "url.h"

#define URL_HIDDEN __attribute__((visibility("hidden")))
#define URL_SHOW_MAX 48 /* longest excerpt of the input quoted in a message */

typedef struct span {
    const char *p;
    size_t n;
} span;

static inline span mkspan(const char *p, size_t n)
{
    span sp;
    sp.p = p;
    sp.n = n;
    return sp;
}

/* Index of the first `c` in sp, or sp.n. */
static inline size_t span_find(span sp, char c)
{
    size_t i = 0;
    while (i < sp.n && sp.p[i] != c)
        i++;
    return i;
}

static inline int span_eq(span sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.n == n && memcmp(sp.p, lit, n) == 0;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_ctl_or_space(unsigned char c) { return c <= 0x20 || c == 0x7f; }

static inline int hexval(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* url_util.c */
/* A printable excerpt of sp in buf (cap >= 8) for an error message:
 * non-printable bytes become '?', long input is cut and ends in "...". */
URL_HIDDEN const char *dl_url_show(span sp, char *buf, size_t cap);
/* Write the message into err (when err and errlen allow) and return -1. */
URL_HIDDEN int dl_url_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A non-empty run of decimal digits: 0 and *out set, -1 when empty or not
 * digits, -2 when above INT_MAX. */
URL_HIDDEN int dl_url_uint(span sp, int *out);
/* Percent-decode sp into dst (cap bytes with the NUL); on failure -1 with a
 * message naming `what` (never quoting the input: it may be a password). */
URL_HIDDEN int dl_url_decode(span sp, char *dst, size_t cap, const char *what, char *err,
                             size_t errlen);

/* url_opts.c */
/* The '&'-separated options after '?' into u (u->tls already set). is_unix:
 * a unix:// URL. */
URL_HIDDEN int dl_url_query(span q, int is_unix, dl_url *u, char *err, size_t errlen);
/* The TLS options agree with each other. */
URL_HIDDEN int dl_url_check_tls(const dl_url *u, char *err, size_t errlen);

#endif

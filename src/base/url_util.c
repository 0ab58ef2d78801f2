/* url_util.c - the URL parser's shared helpers (url_int.h): excerpts and
 * messages, decimal numbers, percent-decoding. Pure: no allocation, no I/O,
 * no locale. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "url_int.h"

/* Copy a printable excerpt of sp into buf (cap >= 8) for an error message:
 * non-printable bytes become '?', long input is cut and ends in "...". */
const char *dl_url_show(span sp, char *buf, size_t cap)
{
    size_t lim = sp.n, o = 0;
    int cut = sp.n > cap - 1;

    if (cut)
        lim = cap - 4;
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)sp.p[i];
        buf[o++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int dl_url_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Parse a non-empty run of decimal digits. Returns 0 and sets *out, -1 when
 * sp is empty or has a non-digit, -2 when the number exceeds INT_MAX. */
int dl_url_uint(span sp, int *out)
{
    long long v = 0;
    int big = 0;

    if (sp.n == 0)
        return -1;
    for (size_t i = 0; i < sp.n; i++) {
        if (!is_digit((unsigned char)sp.p[i]))
            return -1;
        if (!big) {
            v = v * 10 + (sp.p[i] - '0');
            if (v > INT_MAX)
                big = 1;
        }
    }
    if (big)
        return -2;
    *out = (int)v;
    return 0;
}

enum { DEC_OK, DEC_BAD, DEC_LONG, DEC_NUL, DEC_CTL };

/* Percent-decode sp into dst (cap bytes including the NUL). Raw control
 * characters and spaces are refused (they must be written as %XX). */
static int pct_decode(span sp, char *dst, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < sp.n; i++) {
        unsigned char c = (unsigned char)sp.p[i];
        if (is_ctl_or_space(c))
            return DEC_CTL;
        if (c == '%') {
            int hi, lo;
            if (sp.n - i < 3)
                return DEC_BAD;
            hi = hexval((unsigned char)sp.p[i + 1]);
            lo = hexval((unsigned char)sp.p[i + 2]);
            if (hi < 0 || lo < 0)
                return DEC_BAD;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return DEC_NUL;
            i += 2;
        }
        if (o + 1 >= cap)
            return DEC_LONG;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return DEC_OK;
}

/* pct_decode with an error message naming `what`. Never quotes the input:
 * `what` may be the password. */
int dl_url_decode(span sp, char *dst, size_t cap, const char *what, char *err, size_t errlen)
{
    switch (pct_decode(sp, dst, cap)) {
    case DEC_OK:
        return 0;
    case DEC_BAD:
        return dl_url_fail(err, errlen,
                           "bad percent-encoding in %s (expected %%XX with two hex digits)", what);
    case DEC_LONG:
        return dl_url_fail(err, errlen, "%s too long (max %zu bytes)", what, cap - 1);
    case DEC_NUL:
        return dl_url_fail(err, errlen, "%%00 (NUL byte) not allowed in %s", what);
    default:
        return dl_url_fail(err, errlen, "whitespace or control character in %s (percent-encode it)",
                           what);
    }
}

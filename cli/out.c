/* out.c - output helpers: a small JSON writer (written by hand, with full
 * string escaping), safe text for messages, URL redaction, durations. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF rejected). */
int cli_utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    int n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL terminator */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void json_string(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    putc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc((int)c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            default: fprintf(f, "\\u%04x", c); break;
            }
            p++;
        } else if (c < 0x80) {
            putc((int)c, f);
            p++;
        } else {
            int n = cli_utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    putc('"', f);
}

void jw_begin(jw *w, FILE *f) {
    w->f = f;
    w->n = 0;
    putc('{', f);
}

static void key(jw *w, const char *k) {
    if (w->n++)
        putc(',', w->f);
    json_string(w->f, k);
    putc(':', w->f);
}

void jw_str(jw *w, const char *k, const char *val) {
    key(w, k);
    if (val == NULL)
        fputs("null", w->f);
    else
        json_string(w->f, val);
}

void jw_int(jw *w, const char *k, long long val) {
    key(w, k);
    fprintf(w->f, "%lld", val);
}

void jw_bool(jw *w, const char *k, int val) {
    key(w, k);
    fputs(val ? "true" : "false", w->f);
}

void jw_null(jw *w, const char *k) {
    key(w, k);
    fputs("null", w->f);
}

void jw_end(jw *w) {
    fputs("}\n", w->f);
    fflush(w->f);
}

const char *cli_safe(const char *s, char *buf, size_t n) {
    size_t len = strlen(s), o = 0;
    int cut = len > n - 1;
    size_t keep = cut ? (n > 4 ? n - 4 : 0) : len;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (cut && n > 4) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/*
 * The library's URL parser takes the user info as everything up to the LAST
 * '@' of the authority, and rejects a stray '@' after it. Hiding everything
 * between "://" and the last '@' anywhere in the string therefore hides the
 * password in every URL the parser accepts, and in every one it rejects.
 * A URL without "://" (a bad one) is hidden entirely if it holds an '@'.
 */
void cli_redact_url(const char *url, char *buf, size_t n) {
    const char *at = strrchr(url, '@');
    const char *sep = strstr(url, "://");
    char tmp[1024];
    if (at == NULL) {
        snprintf(tmp, sizeof tmp, "%s", url);
    } else if (sep == NULL || sep > at) {
        snprintf(tmp, sizeof tmp, "***");
    } else {
        snprintf(tmp, sizeof tmp, "%.*s***%s", (int)(sep + 3 - url), url, at);
    }
    cli_safe(tmp, buf, n);
}

const char *cli_dur(int64_t ms, char *buf, size_t n) {
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, n, "%" PRId64 " ms", ms);
    else if (ms < 60000)
        snprintf(buf, n, "%.1f s", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, n, "%" PRId64 " min %" PRId64 " s", ms / 60000, ms % 60000 / 1000);
    else
        snprintf(buf, n, "%" PRId64 " h %" PRId64 " min", ms / 3600000, ms % 3600000 / 60000);
    return buf;
}

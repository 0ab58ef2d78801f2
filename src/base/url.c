/* url.c - parse and redact dlock connection URLs (see url.h).
 *
 * The parser works on (pointer, length) spans of the caller's string and
 * writes only into the caller's dl_url: no allocation, no global mutable
 * state, no locale (no <ctype.h>), so it is safe from any thread.
 *
 * Splitting rules (shared with dl_url_redact, which must agree with them):
 *   1. scheme = leading [A-Za-z0-9+.-]* immediately followed by "://".
 *   2. authority = after "://" up to the first '/' or '?'.
 *   3. userinfo = authority up to its LAST '@' (so a raw '@' in a password
 *      works); user = userinfo up to its first ':', password = the rest.
 *   4. path = after the authority up to the first '?'; query = after it.
 * A password containing a raw '/' or '?' would end the authority early and
 * leave an '@' in the path or query. The parser rejects any such "stray" '@'
 * before it looks at hosts or ports, so no part of such a password is ever
 * echoed in an error message, and dl_url_redact hides everything up to the
 * last stray '@' as well.
 */
#include "url.h"
#include "url_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define URL_EXPECTED                                                                  \
    "redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, redis-cluster:// " \
    "or rediss-cluster://"
#define URL_AT_HINT                                                                   \
    "'@' after the host part of the URL: percent-encode '@', '/' and '?' in user " \
    "names and passwords (%40, %2F, %3F)"

enum scheme_id { SCHEME_REDIS, SCHEME_UNIX, SCHEME_SENTINEL, SCHEME_CLUSTER };

static const struct scheme {
    const char *name;
    enum scheme_id id;
    enum dl_url_kind kind;
    int default_port;
    int tls;
} schemes[] = {
    {"redis", SCHEME_REDIS, DL_URL_SINGLE, 6379, 0},
    {"rediss", SCHEME_REDIS, DL_URL_SINGLE, 6379, 1},
    {"unix", SCHEME_UNIX, DL_URL_SINGLE, 0, 0},
    {"redis-sentinel", SCHEME_SENTINEL, DL_URL_SENTINEL, 26379, 0},
    {"rediss-sentinel", SCHEME_SENTINEL, DL_URL_SENTINEL, 26379, 1},
    {"redis-cluster", SCHEME_CLUSTER, DL_URL_CLUSTER, 6379, 0},
    {"rediss-cluster", SCHEME_CLUSTER, DL_URL_CLUSTER, 6379, 1},
};


/* ---- small helpers ---------------------------------------------------- */

static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }


static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int is_scheme_char(unsigned char c)
{
    return is_alnum(c) || c == '+' || c == '-' || c == '.';
}



static int span_eq_nocase(span sp, const char *lit)
{
    if (sp.n != strlen(lit))
        return 0;
    for (size_t i = 0; i < sp.n; i++)
        if (to_lower((unsigned char)sp.p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static int str_eq_nocase(const char *a, const char *b)
{
    while (*a && to_lower((unsigned char)*a) == to_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

/* ---- structure shared with dl_url_redact ------------------------------- */

/* Length of the scheme if s starts with "scheme://", else 0. */
static size_t scheme_len(const char *s)
{
    size_t i = 0;
    while (is_scheme_char((unsigned char)s[i]))
        i++;
    if (i > 0 && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/')
        return i;
    return 0;
}

/* Position of the last "stray" '@' in s[from..len) (the part after the
 * authority): any '@' in the path, in an option name, or in an option value
 * other than prefix's. Returns len when there is none. */
static size_t stray_at(const char *s, size_t from, size_t len)
{
    size_t i = from, last = len;

    while (i < len && s[i] != '?') {
        if (s[i] == '@')
            last = i;
        i++;
    }
    while (i < len) { /* s[i] is '?' or '&': one query segment follows */
        size_t j = i + 1, eq;
        while (j < len && s[j] != '&')
            j++;
        eq = i + 1;
        while (eq < j && s[eq] != '=')
            eq++;
        int is_prefix = span_eq(mkspan(s + i + 1, eq - i - 1), "prefix");
        for (size_t k = i + 1; k < j; k++)
            if (s[k] == '@' && (k < eq || !is_prefix))
                last = k;
        i = j;
    }
    return last;
}

/* ---- hosts --------------------------------------------------------------- */

static int valid_ipv4(span sp)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        int v = 0, nd = 0;
        if (part > 0) {
            if (i >= sp.n || sp.p[i] != '.')
                return 0;
            i++;
        }
        while (i < sp.n && is_digit((unsigned char)sp.p[i]) && nd < 4) {
            v = v * 10 + (sp.p[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0 || nd > 3 || v > 255)
            return 0;
    }
    return i == sp.n;
}

/* RFC 4291 text form: up to 8 groups of 1-4 hex digits, at most one "::",
 * optionally ending in a dotted IPv4 address (worth two groups). */
static int valid_ipv6(span sp)
{
    size_t i = 0;
    int groups = 0, dcolon = 0;

    if (sp.n >= 2 && sp.p[0] == ':' && sp.p[1] == ':') {
        dcolon = 1;
        i = 2;
        if (i == sp.n)
            return 1;
    }
    for (;;) {
        size_t start = i;
        while (i < sp.n && hexval((unsigned char)sp.p[i]) >= 0)
            i++;
        if (i < sp.n && sp.p[i] == '.') {
            if (!valid_ipv4(mkspan(sp.p + start, sp.n - start)))
                return 0;
            groups += 2;
            break;
        }
        if (i == start || i - start > 4)
            return 0;
        groups++;
        if (i == sp.n)
            break;
        if (sp.p[i] != ':')
            return 0;
        i++;
        if (i < sp.n && sp.p[i] == ':') {
            if (dcolon)
                return 0;
            dcolon = 1;
            i++;
            if (i == sp.n)
                break;
        } else if (i == sp.n) {
            return 0;
        }
    }
    return dcolon ? groups <= 7 : groups == 8;
}

static int is_zone_char(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Bracket contents "addr" or "addr%25zone" (RFC 6874). A raw "%zone" is
 * accepted too, unless the zone starts with "25", which is always read as
 * the encoded '%'. Writes "addr" or "addr%zone" (the form getaddrinfo takes)
 * into dst. Returns 0, -1 when invalid, -2 when too long. */
static int parse_ipv6(span sp, char *dst, size_t cap)
{
    size_t pct = span_find(sp, '%');
    span addr = mkspan(sp.p, pct), zone = mkspan(sp.p + sp.n, 0);

    if (!valid_ipv6(addr))
        return -1;
    if (pct < sp.n) {
        zone = mkspan(sp.p + pct + 1, sp.n - pct - 1);
        if (zone.n >= 2 && zone.p[0] == '2' && zone.p[1] == '5')
            zone = mkspan(zone.p + 2, zone.n - 2);
        if (zone.n == 0)
            return -1;
        for (size_t i = 0; i < zone.n; i++)
            if (!is_zone_char((unsigned char)zone.p[i]))
                return -1;
    }
    if (addr.n + (zone.n ? zone.n + 1 : 0) >= cap)
        return -2;
    memcpy(dst, addr.p, addr.n);
    if (zone.n) {
        dst[addr.n] = '%';
        memcpy(dst + addr.n + 1, zone.p, zone.n);
    }
    dst[addr.n + (zone.n ? zone.n + 1 : 0)] = '\0';
    return 0;
}

static int check_hostname(span name, char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];

    if (name.n == 0)
        return dl_url_fail(err, errlen, "missing host in URL");
    if (name.n > DL_URL_HOST_MAX - 1)
        return dl_url_fail(err, errlen, "host too long in URL (%zu bytes, max %d)", name.n,
                           DL_URL_HOST_MAX - 1);
    for (size_t i = 0; i < name.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if (c >= 0x80)
            return dl_url_fail(err, errlen,
                               "non-ASCII character in host '%s' (use the punycode form)",
                               dl_url_show(name, b, sizeof b));
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
            return dl_url_fail(err, errlen, "invalid character '%c' in host '%s'", c,
                               dl_url_show(name, b, sizeof b));
    }
    return 0;
}

static int parse_port(span sp, int *port, char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];
    int r = dl_url_uint(sp, port);

    if (r == -1)
        return dl_url_fail(err, errlen, "bad port '%s' in URL (expected a number 1..65535)",
                           dl_url_show(sp, b, sizeof b));
    if (r == -2 || *port < 1 || *port > 65535)
        return dl_url_fail(err, errlen, "bad port '%s' in URL (out of range, expected 1..65535)",
                           dl_url_show(sp, b, sizeof b));
    return 0;
}

/* One element of the host list: name, name:port, [v6] or [v6]:port. */
static int parse_host(span e, int default_port, dl_host *h, char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];
    span port = mkspan(NULL, 0);
    int has_port = 0;

    for (size_t i = 0; i < e.n; i++)
        if (is_ctl_or_space((unsigned char)e.p[i]))
            return dl_url_fail(err, errlen, "whitespace or control character in host '%s'",
                               dl_url_show(e, b, sizeof b));
    if (e.p[0] == '[') {
        size_t rb = span_find(e, ']');
        span inner;
        if (rb == e.n)
            return dl_url_fail(err, errlen, "unterminated IPv6 literal '%s' in URL (missing ']')",
                               dl_url_show(e, b, sizeof b));
        inner = mkspan(e.p + 1, rb - 1);
        if (rb + 1 < e.n) {
            if (e.p[rb + 1] != ':')
                return dl_url_fail(err, errlen, "unexpected text after ']' in host '%s'",
                                   dl_url_show(e, b, sizeof b));
            has_port = 1;
            port = mkspan(e.p + rb + 2, e.n - rb - 2);
        }
        switch (parse_ipv6(inner, h->host, sizeof h->host)) {
        case 0:
            break;
        case -2:
            return dl_url_fail(err, errlen, "host too long in URL (max %d bytes)",
                               DL_URL_HOST_MAX - 1);
        default:
            return dl_url_fail(err, errlen, "bad IPv6 address '[%s]' in URL",
                               dl_url_show(inner, b, sizeof b));
        }
    } else {
        size_t colon = span_find(e, ':');
        span name = mkspan(e.p, colon);
        if (colon < e.n) {
            port = mkspan(e.p + colon + 1, e.n - colon - 1);
            if (span_find(port, ':') < port.n)
                return dl_url_fail(err, errlen,
                                   "IPv6 address '%s' must be in brackets, e.g. redis://[::1]:6379",
                                   dl_url_show(e, b, sizeof b));
            has_port = 1;
        }
        if (check_hostname(name, err, errlen) != 0)
            return -1;
        memcpy(h->host, name.p, name.n);
        h->host[name.n] = '\0';
    }
    if (!has_port) {
        h->port = default_port;
        return 0;
    }
    return parse_port(port, &h->port, err, errlen);
}

/* Comma-separated host list into u->hosts. */
static int parse_hosts(span list, int default_port, dl_url *u, char *err, size_t errlen)
{
    size_t i = 0;

    if (list.n == 0)
        return dl_url_fail(err, errlen, "missing host in URL");
    for (;;) {
        size_t j = i;
        span e;
        dl_host *h;
        while (j < list.n && list.p[j] != ',')
            j++;
        e = mkspan(list.p + i, j - i);
        if (e.n == 0)
            return dl_url_fail(err, errlen, "empty host in host list of URL (stray ',')");
        if (u->nhosts == DL_URL_MAX_HOSTS)
            return dl_url_fail(err, errlen, "too many hosts in URL (max %d)", DL_URL_MAX_HOSTS);
        h = &u->hosts[u->nhosts];
        if (parse_host(e, default_port, h, err, errlen) != 0)
            return -1;
        for (int k = 0; k < u->nhosts; k++) {
            if (u->hosts[k].port == h->port && str_eq_nocase(u->hosts[k].host, h->host)) {
                char b[URL_SHOW_MAX];
                return dl_url_fail(err, errlen, "duplicate host '%s' (port %d) in URL",
                                   dl_url_show(mkspan(h->host, strlen(h->host)), b, sizeof b),
                                   h->port);
            }
        }
        u->nhosts++;
        if (j == list.n)
            return 0;
        i = j + 1;
    }
}

/* ---- paths --------------------------------------------------------------- */

static int parse_path(span path, const struct scheme *sc, dl_url *u, char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];

    switch (sc->id) {
    case SCHEME_SENTINEL:
        if (path.n == 0)
            return dl_url_fail(err, errlen,
                               "missing master name in redis-sentinel:// URL (expected "
                               "redis-sentinel://host:26379/mymaster)");
        if (span_find(path, '/') < path.n)
            return dl_url_fail(err, errlen, "bad master name '%s' in URL (must not contain '/')",
                               dl_url_show(path, b, sizeof b));
        if (dl_url_decode(path, u->master_name, sizeof u->master_name, "master name", err,
                          errlen) != 0)
            return -1;
        for (const char *c = u->master_name; *c; c++)
            if (is_ctl_or_space((unsigned char)*c))
                return dl_url_fail(err, errlen,
                                   "bad master name '%s' in URL (whitespace or control character)",
                                   dl_url_show(path, b, sizeof b));
        return 0;
    case SCHEME_CLUSTER:
        if (path.n > 0)
            return dl_url_fail(err, errlen,
                               "path '/%s' not allowed in a redis-cluster:// URL (a cluster "
                               "has only database 0)",
                               dl_url_show(path, b, sizeof b));
        return 0;
    default: /* redis, rediss: optional /db */
        if (path.n == 0)
            return 0;
        if (dl_url_uint(path, &u->db) != 0)
            return dl_url_fail(err, errlen, "bad db '%s' in URL (expected a number 0..%d)",
                               dl_url_show(path, b, sizeof b), INT_MAX);
        return 0;
    }
}

/* ---- entry points ------------------------------------------------------- */

static void url_reset(dl_url *u)
{
    memset(u, 0, sizeof *u);
    u->kind = DL_URL_SINGLE;
    u->connect_timeout_ms = -1;
    u->command_timeout_ms = -1;
    u->replicas = -1;
    u->replica_timeout_ms = -1;
    u->tls_verify = 1;
    u->sentinel_watch = 1;
}

static int url_parse(const char *s, dl_url *u, char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];
    const struct scheme *sc = NULL;
    size_t len, slen, a, q, at;
    const char *rest;
    span auth, hosts;

    if (s == NULL || s[0] == '\0')
        return dl_url_fail(err, errlen, "empty URL");
    len = strlen(s);

    /* 1. scheme */
    slen = scheme_len(s);
    if (slen == 0) {
        size_t i = 0;
        while (is_scheme_char((unsigned char)s[i]))
            i++;
        for (size_t k = 0; i > 0 && s[i] == ':' && k < sizeof schemes / sizeof schemes[0]; k++)
            if (span_eq_nocase(mkspan(s, i), schemes[k].name))
                return dl_url_fail(err, errlen,
                                   "malformed URL: expected '//' after '%s:' (e.g. %s://host)",
                                   schemes[k].name, schemes[k].name);
        return dl_url_fail(err, errlen, "missing scheme in URL (expected " URL_EXPECTED ")");
    }
    for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++)
        if (span_eq_nocase(mkspan(s, slen), schemes[k].name))
            sc = &schemes[k];
    if (sc == NULL)
        return dl_url_fail(err, errlen, "unsupported scheme '%s' (expected " URL_EXPECTED ")",
                           dl_url_show(mkspan(s, slen), b, 24));
    u->kind = sc->kind;
    u->tls = sc->tls;

    /* 2. authority, path, query */
    rest = s + slen + 3;
    len -= slen + 3;
    for (a = 0; a < len && rest[a] != '/' && rest[a] != '?'; a++)
        ;
    for (q = a; q < len && rest[q] != '?'; q++)
        ;
    if (stray_at(rest, a, len) < len)
        return dl_url_fail(err, errlen, "%s", URL_AT_HINT);

    /* 3. userinfo: up to the last '@' of the authority */
    auth = mkspan(rest, a);
    hosts = auth;
    for (at = auth.n; at > 0 && auth.p[at - 1] != '@'; at--)
        ;
    if (at > 0) {
        span ui = mkspan(auth.p, at - 1);
        size_t colon = span_find(ui, ':');
        hosts = mkspan(auth.p + at, auth.n - at);
        if (dl_url_decode(mkspan(ui.p, colon), u->user, sizeof u->user, "user name", err,
                          errlen) != 0)
            return -1;
        if (colon < ui.n) {
            u->has_password = 1;
            if (dl_url_decode(mkspan(ui.p + colon + 1, ui.n - colon - 1), u->password,
                              sizeof u->password, "password", err, errlen) != 0)
                return -1;
        }
    }

    /* 4. where the server is */
    if (sc->id == SCHEME_UNIX) {
        span path = mkspan(rest + a, q - a); /* with its leading '/' */
        if (hosts.n > 0)
            return dl_url_fail(err, errlen, "unix:// URL takes no host (use three slashes: "
                                            "unix:///path/to/redis.sock)");
        if (path.n <= 1)
            return dl_url_fail(
                err, errlen, "empty unix socket path in URL (expected unix:///path/to/redis.sock)");
        if (dl_url_decode(path, u->path, sizeof u->path, "unix socket path", err, errlen) != 0)
            return -1;
        u->unix_socket = 1;
    } else {
        if (parse_hosts(hosts, sc->default_port, u, err, errlen) != 0)
            return -1;
        if (u->kind == DL_URL_SINGLE && u->nhosts > 1)
            u->kind = DL_URL_REDLOCK;
        if (parse_path(mkspan(rest + a + (a < q), q - a - (a < q)), sc, u, err, errlen) != 0)
            return -1;
    }

    /* 5. options */
    if (q < len &&
        dl_url_query(mkspan(rest + q + 1, len - q - 1), sc->id == SCHEME_UNIX, u, err, errlen) != 0)
        return -1;
    return dl_url_check_tls(u, err, errlen);
}

int dl_url_parse(const char *s, dl_url *out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return dl_url_fail(err, errlen, "no dl_url to parse into");
    url_reset(out);
    if (url_parse(s, out, err, errlen) != 0) {
        url_reset(out); /* leave no half-parsed password behind */
        return -1;
    }
    return 0;
}

void dl_url_redact(const char *s, char *out, size_t outlen)
{
    size_t len, start, a, at, end, pw = 0, pw_end = 0, o = 0;

    if (out == NULL || outlen == 0)
        return;
    if (s == NULL) {
        out[0] = '\0';
        return;
    }
    len = strlen(s);
    start = scheme_len(s);
    if (start > 0)
        start += 3;
    for (a = start; a < len && s[a] != '/' && s[a] != '?'; a++)
        ;
    /* The userinfo ends at the last '@' of the authority, or at the last
     * stray '@' after it (a URL dl_url_parse rejects, but which may still be
     * logged): hide the most that could be a password. */
    end = stray_at(s, a, len);
    if (end == len)
        for (end = a; end > start && s[end - 1] != '@'; end--)
            ;
    else
        end++;
    if (end > start) {
        at = end - 1;
        for (pw = start; pw < at && s[pw] != ':'; pw++)
            ;
        if (pw < at) {
            pw++;
            pw_end = at;
        } else {
            pw = 0;
        }
    }

    /* Emit s[0..pw) "***" s[pw_end..len), or s unchanged, truncating. */
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        if (pw > 0 && i == pw) {
            for (const char *st = "***"; *st && o + 1 < outlen; st++)
                out[o++] = *st;
            i = pw_end;
            if (o + 1 >= outlen)
                break;
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
}

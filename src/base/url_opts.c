/* url_opts.c - the query options of a dlock URL (url.h lists them): one
 * table, one parser per kind of value, and the checks that tie the TLS
 * options to a TLS scheme. Pure, like url.c: no allocation, no I/O. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "url_int.h"

#define URL_TIMEOUT_MAX_MS 3600000 /* 1 h, as dlock_options allows */
#define URL_REPLICAS_MAX 100       /* as dlock_options allows */
#define URL_TLS_SCHEMES "rediss://, rediss-sentinel:// or rediss-cluster://"

enum opt_type {
    OPT_TIMEOUT, /* milliseconds, 1..URL_TIMEOUT_MAX_MS */
    OPT_WAIT_MS, /* replica_timeout: 0..URL_TIMEOUT_MAX_MS (0: as long as the call allows) */
    OPT_COUNT,   /* replicas */
    OPT_DB,      /* unix:// only */
    OPT_STRING,  /* percent-decoded into the field at `off` */
    OPT_ONOFF    /* "on" or "off" into the int at `off` */
};

#define FIELD(f) offsetof(dl_url, f), sizeof(((dl_url *)0)->f)

static const struct option {
    const char *name;
    enum opt_type type;
    size_t off, size; /* OPT_STRING, OPT_ONOFF: the field in dl_url */
    int tls;          /* a TLS option: needs a TLS scheme */
} options[] = {
    {"connect_timeout", OPT_TIMEOUT, FIELD(connect_timeout_ms), 0},
    {"timeout", OPT_TIMEOUT, FIELD(command_timeout_ms), 0},
    {"db", OPT_DB, FIELD(db), 0},
    {"replicas", OPT_COUNT, FIELD(replicas), 0},
    {"replica_timeout", OPT_WAIT_MS, FIELD(replica_timeout_ms), 0},
    {"prefix", OPT_STRING, FIELD(prefix), 0},
    {"tls_ca", OPT_STRING, FIELD(tls_ca), 1},
    {"tls_ca_dir", OPT_STRING, FIELD(tls_ca_dir), 1},
    {"tls_cert", OPT_STRING, FIELD(tls_cert), 1},
    {"tls_key", OPT_STRING, FIELD(tls_key), 1},
    {"tls_server_name", OPT_STRING, FIELD(tls_server_name), 1},
    {"tls_verify", OPT_ONOFF, FIELD(tls_verify), 1},
    {"sentinel_watch", OPT_ONOFF, FIELD(sentinel_watch), 0},
};
#define NOPTIONS (sizeof options / sizeof options[0])
#define URL_KNOWN_OPTIONS                                                            \
    "connect_timeout, timeout, db, replicas, replica_timeout, prefix, tls_ca, "      \
    "tls_ca_dir, tls_cert, tls_key, tls_server_name, tls_verify, sentinel_watch"

static int parse_int_option(span val, const char *name, int lo, int hi, int is_ms, int *out,
                            char *err, size_t errlen)
{
    char b[URL_SHOW_MAX];
    int v = 0, r;

    if (val.n > 0 && val.p[0] == '-')
        return dl_url_fail(err, errlen, "option '%s' must not be negative (got '%s')", name,
                           dl_url_show(val, b, sizeof b));
    r = dl_url_uint(val, &v);
    if (r == -1)
        return dl_url_fail(err, errlen, "option '%s' must be a non-negative integer%s (got '%s')",
                           name, is_ms ? " of milliseconds" : "", dl_url_show(val, b, sizeof b));
    if (r == -2 || v < lo || v > hi)
        return dl_url_fail(err, errlen, "option '%s' out of range (got '%s', expected %d..%d%s)",
                           name, dl_url_show(val, b, sizeof b), lo, hi, is_ms ? " ms" : "");
    *out = v;
    return 0;
}

/* A string option: percent-decoded, and (but for the prefix, which may be
 * any bytes) free of control characters once decoded: the value may reach
 * a file name or an error message. */
static int parse_string_option(span val, const struct option *o, dl_url *u, char *err,
                               size_t errlen)
{
    char what[40];
    char *dst = (char *)u + o->off;

    snprintf(what, sizeof what, "option '%s'", o->name);
    if (dl_url_decode(val, dst, o->size, what, err, errlen) != 0)
        return -1;
    if (strcmp(o->name, "prefix") == 0) {
        u->has_prefix = 1;
        return 0;
    }
    if (dst[0] == '\0')
        return dl_url_fail(err, errlen, "option '%s' needs a value (%s=...)", o->name, o->name);
    for (const char *c = dst; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return dl_url_fail(err, errlen, "control character in option '%s'", o->name);
    return 0;
}

static int parse_option(span seg, int is_unix, unsigned *seen, dl_url *u, char *err,
                        size_t errlen)
{
    char b[URL_SHOW_MAX];
    size_t eq = span_find(seg, '=');
    span name = mkspan(seg.p, eq), val;
    size_t idx;

    for (idx = 0; idx < NOPTIONS; idx++)
        if (span_eq(name, options[idx].name))
            break;
    if (idx == NOPTIONS)
        return dl_url_fail(err, errlen, "unknown option '%s' in URL (known: " URL_KNOWN_OPTIONS ")",
                           dl_url_show(name, b, sizeof b));
    const struct option *o = &options[idx];
    if (o->tls && !u->tls)
        return dl_url_fail(err, errlen,
                           "option '%s' needs TLS: use " URL_TLS_SCHEMES
                           " (this URL would send everything in clear text)",
                           o->name);
    if (strcmp(o->name, "sentinel_watch") == 0 && u->kind != DL_URL_SENTINEL)
        return dl_url_fail(err, errlen, "option 'sentinel_watch' is only for "
                                        "redis-sentinel:// and rediss-sentinel:// URLs");
    if (*seen & (1u << idx))
        return dl_url_fail(err, errlen, "option '%s' given twice in URL", o->name);
    *seen |= 1u << idx;
    if (eq == seg.n)
        return dl_url_fail(err, errlen, "option '%s' needs a value (%s=...)", o->name, o->name);
    val = mkspan(seg.p + eq + 1, seg.n - eq - 1);
    int *num = (int *)(void *)((char *)u + o->off);

    switch (o->type) {
    case OPT_STRING:
        return parse_string_option(val, o, u, err, errlen);
    case OPT_ONOFF:
        if (span_eq(val, "on") || span_eq(val, "off")) {
            *num = span_eq(val, "on");
            return 0;
        }
        return dl_url_fail(err, errlen, "option '%s' must be on or off (got '%s')", o->name,
                           dl_url_show(val, b, sizeof b));
    case OPT_DB:
        if (!is_unix)
            return dl_url_fail(err, errlen,
                               "option 'db' is only for unix:// URLs (put the database in the "
                               "path: redis://host:6379/N)");
        return parse_int_option(val, o->name, 0, INT_MAX, 0, num, err, errlen);
    case OPT_COUNT:
        return parse_int_option(val, o->name, 0, URL_REPLICAS_MAX, 0, num, err, errlen);
    case OPT_WAIT_MS:
        return parse_int_option(val, o->name, 0, URL_TIMEOUT_MAX_MS, 1, num, err, errlen);
    case OPT_TIMEOUT:
    default:
        return parse_int_option(val, o->name, 1, URL_TIMEOUT_MAX_MS, 1, num, err, errlen);
    }
}

int dl_url_query(span q, int is_unix, dl_url *u, char *err, size_t errlen)
{
    unsigned seen = 0;

    for (size_t i = 0; i < q.n;) {
        size_t j = i;
        while (j < q.n && q.p[j] != '&')
            j++;
        if (j > i && parse_option(mkspan(q.p + i, j - i), is_unix, &seen, u, err, errlen) != 0)
            return -1;
        i = j + 1;
    }
    return 0;
}

int dl_url_check_tls(const dl_url *u, char *err, size_t errlen)
{
    if ((u->tls_cert[0] != '\0') != (u->tls_key[0] != '\0'))
        return dl_url_fail(err, errlen, "options 'tls_cert' and 'tls_key' go together (a "
                                        "client certificate needs its private key)");
    if (!u->tls_verify && (u->tls_ca[0] != '\0' || u->tls_ca_dir[0] != '\0'))
        return dl_url_fail(err, errlen, "option '%s' has no use with tls_verify=off (nothing "
                                        "is checked against it)",
                           u->tls_ca[0] ? "tls_ca" : "tls_ca_dir");
    return 0;
}

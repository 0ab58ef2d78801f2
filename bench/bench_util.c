/* bench_util.c - see bench_util.h. */
#include "bench_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clocks ---- */

int64_t bu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bu_sleep_until_ns(int64_t t_ns) {
    struct timespec ts = {.tv_sec = t_ns / 1000000000, .tv_nsec = t_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void bu_sleep_ns(int64_t ns) {
    if (ns > 0)
        bu_sleep_until_ns(bu_now_ns() + ns);
}

/* ---- samples ---- */

int bu_samples_init(bu_samples *s, size_t cap) {
    memset(s, 0, sizeof *s);
    s->v = malloc(cap * sizeof *s->v);
    if (s->v == NULL)
        return -1;
    s->cap = cap;
    s->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)bu_now_ns();
    return 0;
}

static uint64_t xorshift(uint64_t *st) {
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

void bu_samples_add(bu_samples *s, int64_t ns) {
    uint32_t v = ns < 0 ? 0 : ns > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    s->seen++;
    if (s->n < s->cap) {
        s->v[s->n++] = v;
        return;
    }
    uint64_t j = xorshift(&s->rng) % s->seen; /* reservoir: keep a uniform subset */
    if (j < s->cap)
        s->v[j] = v;
}

void bu_samples_free(bu_samples *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void bu_samples_sort(bu_samples *s) { qsort(s->v, s->n, sizeof *s->v, cmp_u32); }

double bu_samples_quantile(const bu_samples *s, double p) {
    if (s->n == 0)
        return 0;
    size_t rank = (size_t)(p * (double)s->n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return s->v[rank - 1];
}

/* ---- servers ---- */

const char *bu_server_addr(const bu_server *s, char *buf, size_t len) {
    if (s->path[0])
        snprintf(buf, len, "%s", s->path);
    else if (strchr(s->host, ':'))
        snprintf(buf, len, "[%s]:%d", s->host, s->port);
    else
        snprintf(buf, len, "%s:%d", s->host, s->port);
    return buf;
}

static int reply_err(redisContext *ctx, redisReply *r, const char *what, const bu_server *s,
                     char *err, size_t errlen) {
    char a[300];
    bu_server_addr(s, a, sizeof a);
    if (r == NULL)
        snprintf(err, errlen, "%s on %s: %s", what, a,
                 ctx->errstr[0] ? ctx->errstr : "connection lost");
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "%s on %s: %s", what, a, r->str);
    else
        snprintf(err, errlen, "%s on %s: unexpected reply type %d", what, a, r->type);
    return -1;
}

redisContext *bu_connect(const bu_target *t, const bu_server *s, int timeout_ms, int select_db,
                         char *err, size_t errlen) {
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    char a[300];
    bu_server_addr(s, a, sizeof a);
    redisContext *ctx = s->path[0] ? redisConnectUnixWithTimeout(s->path, tv)
                                   : redisConnectWithTimeout(s->host, s->port, tv);
    if (ctx == NULL) {
        snprintf(err, errlen, "connect %s: out of memory", a);
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, errlen, "connect %s: %s", a, ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    const dl_url *u = &t->url;
    if (u->has_password) {
        redisReply *r;
        if (u->user[0])
            r = redisCommand(ctx, "AUTH %s %s", u->user, u->password);
        else
            r = redisCommand(ctx, "AUTH %s", u->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            reply_err(ctx, r, "AUTH", s, err, errlen);
            if (r)
                freeReplyObject(r);
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (select_db && u->db != 0) {
        redisReply *r = redisCommand(ctx, "SELECT %d", u->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            reply_err(ctx, r, "SELECT", s, err, errlen);
            if (r)
                freeReplyObject(r);
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }
    return ctx;
}

static int add_server(bu_target *t, const char *host, int port) {
    for (int i = 0; i < t->nservers; i++)
        if (t->servers[i].port == port && strcmp(t->servers[i].host, host) == 0)
            return 0;
    if (t->nservers >= BU_MAX_SERVERS)
        return -1;
    bu_server *s = &t->servers[t->nservers++];
    memset(s, 0, sizeof *s);
    snprintf(s->host, sizeof s->host, "%s", host);
    s->port = port;
    return 0;
}

static int str_reply(const redisReply *r, char *out, size_t len) {
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) ||
        r->len >= len)
        return -1;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

static int int_reply(const redisReply *r, int *out) {
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (int)r->integer;
        return 0;
    }
    char buf[16];
    if (str_reply(r, buf, sizeof buf) != 0)
        return -1;
    *out = atoi(buf);
    return 0;
}

/* Sentinel: ask each sentinel in turn for the master's address. */
static int resolve_sentinel(bu_target *t, char *err, size_t errlen) {
    char last[512] = "no sentinel answered";
    for (int i = 0; i < t->url.nhosts; i++) {
        bu_server s;
        memset(&s, 0, sizeof s);
        snprintf(s.host, sizeof s.host, "%s", t->url.hosts[i].host);
        s.port = t->url.hosts[i].port;
        redisContext *ctx = bu_connect(t, &s, 2000, 0, last, sizeof last);
        if (ctx == NULL) {
            /* Sentinels often have no password while the master does. */
            bu_target plain = *t;
            plain.url.has_password = 0;
            ctx = bu_connect(&plain, &s, 2000, 0, last, sizeof last);
            if (ctx == NULL)
                continue;
        }
        redisReply *r =
            redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", t->url.master_name);
        char host[DL_URL_HOST_MAX];
        int port;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            str_reply(r->element[0], host, sizeof host) == 0 &&
            int_reply(r->element[1], &port) == 0) {
            freeReplyObject(r);
            redisFree(ctx);
            return add_server(t, host, port);
        }
        if (r && r->type == REDIS_REPLY_NIL)
            snprintf(last, sizeof last, "sentinel %s:%d does not know master '%s'", s.host,
                     s.port, t->url.master_name);
        else
            reply_err(ctx, r, "SENTINEL get-master-addr-by-name", &s, last, sizeof last);
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
    }
    snprintf(err, errlen, "%s", last);
    return -1;
}

/* Cluster: every master in CLUSTER SLOTS of the first seed that answers. */
static int resolve_cluster(bu_target *t, char *err, size_t errlen) {
    char last[512] = "no cluster node answered";
    for (int i = 0; i < t->url.nhosts; i++) {
        bu_server s;
        memset(&s, 0, sizeof s);
        snprintf(s.host, sizeof s.host, "%s", t->url.hosts[i].host);
        s.port = t->url.hosts[i].port;
        redisContext *ctx = bu_connect(t, &s, 2000, 0, last, sizeof last);
        if (ctx == NULL)
            continue;
        redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            reply_err(ctx, r, "CLUSTER SLOTS", &s, last, sizeof last);
            if (r)
                freeReplyObject(r);
            redisFree(ctx);
            continue;
        }
        for (size_t j = 0; j < r->elements; j++) {
            const redisReply *range = r->element[j];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3)
                continue;
            const redisReply *m = range->element[2];
            char host[DL_URL_HOST_MAX];
            int port;
            if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
                str_reply(m->element[0], host, sizeof host) != 0 ||
                int_reply(m->element[1], &port) != 0)
                continue;
            if (host[0] == '\0' || strcmp(host, "?") == 0)
                snprintf(host, sizeof host, "%s", s.host);
            add_server(t, host, port);
        }
        freeReplyObject(r);
        redisFree(ctx);
        if (t->nservers > 0)
            return 0;
        snprintf(last, sizeof last, "CLUSTER SLOTS on %s:%d listed no master", s.host, s.port);
    }
    snprintf(err, errlen, "%s", last);
    return -1;
}

int bu_target_resolve(bu_target *t, const char *url, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (dl_url_parse(url, &t->url, err, errlen) != 0)
        return -1;
    /* The library talks TLS; the bench's own hiredis connections cannot
     * (hiredis 0.14), and Sentinel and Cluster are resolved over them. */
    if (t->url.tls && (t->url.kind == DL_URL_SENTINEL || t->url.kind == DL_URL_CLUSTER)) {
        snprintf(err, errlen,
                 "rediss-sentinel:// and rediss-cluster:// are not supported: dlock-bench "
                 "finds their servers over its own connections, which cannot do TLS "
                 "(hiredis 0.14); use rediss://host or a rediss:// Redlock list");
        return -1;
    }
    switch (t->url.kind) {
    case DL_URL_SENTINEL:
        return resolve_sentinel(t, err, errlen);
    case DL_URL_CLUSTER:
        return resolve_cluster(t, err, errlen);
    default:
        break;
    }
    if (t->url.unix_socket) {
        t->nservers = 1;
        snprintf(t->servers[0].path, sizeof t->servers[0].path, "%s", t->url.path);
        return 0;
    }
    for (int i = 0; i < t->url.nhosts; i++)
        add_server(t, t->url.hosts[i].host, t->url.hosts[i].port);
    return 0;
}

/* ---- INFO commandstats ---- */

long long bu_cmdstats_get(const bu_cmdstats *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return s->e[i].calls;
    return 0;
}

static void cmdstats_put(bu_cmdstats *s, const char *name, long long calls) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0) {
            s->e[i].calls += calls;
            return;
        }
    if (s->n >= BU_MAX_CMDSTATS)
        return;
    snprintf(s->e[s->n].name, sizeof s->e[s->n].name, "%s", name);
    s->e[s->n].calls = calls;
    s->n++;
}

int bu_cmdstats_add(redisContext *ctx, bu_cmdstats *acc, char *err, size_t errlen) {
    redisReply *r = redisCommand(ctx, "INFO commandstats");
    if (r == NULL || (r->type != REDIS_REPLY_STRING)) {
        snprintf(err, errlen, "INFO commandstats: %s",
                 r == NULL ? (ctx->errstr[0] ? ctx->errstr : "connection lost")
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    /* Lines: cmdstat_<name>:calls=<n>,usec=...  */
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > 8 && memcmp(p, "cmdstat_", 8) == 0) {
            const char *name = p + 8;
            const char *colon = memchr(name, ':', (size_t)(eol - name));
            if (colon && colon - name < 64 && (size_t)(eol - colon) > 7 &&
                memcmp(colon + 1, "calls=", 6) == 0) {
                char nm[64];
                size_t nl = (size_t)(colon - name);
                for (size_t i = 0; i < nl; i++)
                    nm[i] = (char)tolower((unsigned char)name[i]);
                nm[nl] = '\0';
                cmdstats_put(acc, nm, strtoll(colon + 7, NULL, 10));
            }
        }
        p = eol + 1;
    }
    freeReplyObject(r);
    return 0;
}

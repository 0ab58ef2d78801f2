/* keywatch.c - the key sampler of keywatch.h. */
#include "keywatch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "harness.h"

#define KW_MAX_SERVERS 8
#define KW_MAX_SAMPLES 1000
#define KW_LINE 400

struct kw {
    int ports[KW_MAX_SERVERS];
    int n;
    char match[64];
    pthread_t thread;
    atomic_int stop;
    redisContext *ctx[KW_MAX_SERVERS];
    int nsamples;
    int64_t at[KW_MAX_SAMPLES];
    char line[KW_MAX_SAMPLES][KW_LINE];
};

static redisReply *cmd(kw *w, int i, const char *fmt, const char *arg) {
    if (w->ctx[i] == NULL) {
        struct timeval tv = {0, 100000};
        w->ctx[i] = redisConnectWithTimeout("127.0.0.1", w->ports[i], tv);
        if (w->ctx[i] == NULL || w->ctx[i]->err) {
            redisFree(w->ctx[i]);
            w->ctx[i] = NULL;
            return NULL;
        }
        redisSetTimeout(w->ctx[i], tv);
    }
    redisReply *r = arg ? redisCommand(w->ctx[i], fmt, arg) : redisCommand(w->ctx[i], fmt);
    if (r == NULL) {
        redisFree(w->ctx[i]);
        w->ctx[i] = NULL;
    }
    return r;
}

/* Append to buf (of cap bytes, *len used) what fits. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, const char *s, long long v) {
    if (*len + 1 >= cap)
        return;
    int n = snprintf(buf + *len, cap - *len, fmt, s, v);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* One key, briefly, after the end of its name: a hash as "H=<holder
 * token's first 6>/<pttl>", a zset as "Q=<n>[<each member's first 4>]";
 * the fence counter is not shown. */
static void describe(kw *w, int i, const char *key, char *out, size_t cap, size_t *len) {
    redisReply *t = cmd(w, i, "TYPE %s", key);
    const char *type = t != NULL && t->type == REDIS_REPLY_STATUS ? t->str : "";
    size_t kl = strlen(key);
    if (strcmp(type, "hash") == 0) {
        redisReply *h = cmd(w, i, "HGET %s t", key);
        redisReply *p = cmd(w, i, "PTTL %s", key);
        put(out, cap, len, " %s", kl > 10 ? key + kl - 10 : key, 0);
        put(out, cap, len, " H=%.6s/%lld", h && h->type == REDIS_REPLY_STRING ? h->str : "-",
            p && p->type == REDIS_REPLY_INTEGER ? p->integer : -9);
        freeReplyObject(h);
        freeReplyObject(p);
    } else if (strcmp(type, "zset") == 0) {
        redisReply *z = cmd(w, i, "ZRANGE %s 0 -1", key);
        int ok = z != NULL && z->type == REDIS_REPLY_ARRAY;
        put(out, cap, len, " %s", kl > 10 ? key + kl - 10 : key, 0);
        put(out, cap, len, " Q=%s%lld[", "", ok ? (long long)z->elements : 0);
        for (size_t k = 0; ok && k < z->elements && k < 8; k++)
            put(out, cap, len, k ? ",%.4s" : "%.4s", z->element[k]->str, 0);
        put(out, cap, len, "%s]", "", 0);
        freeReplyObject(z);
    }
    freeReplyObject(t);
}

static void sample(kw *w) {
    char *s = w->line[w->nsamples];
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < w->n; i++) {
        redisReply *role = cmd(w, i, "ROLE", NULL);
        char head[32];
        snprintf(head, sizeof head, "%s%d", i ? " | " : "", w->ports[i]);
        put(s, KW_LINE, &len, "%s", head, 0);
        put(s, KW_LINE, &len, "(%s):",
            role && role->type == REDIS_REPLY_ARRAY && role->elements > 0 ? role->element[0]->str
                                                                            : "down",
            0);
        freeReplyObject(role);
        redisReply *keys = cmd(w, i, "KEYS %s", w->match);
        for (size_t k = 0; keys && keys->type == REDIS_REPLY_ARRAY && k < keys->elements; k++)
            describe(w, i, keys->element[k]->str, s, KW_LINE, &len);
        freeReplyObject(keys);
    }
    w->at[w->nsamples++] = th_now_us();
}

static void *loop(void *arg) {
    kw *w = arg;
    while (!atomic_load(&w->stop) && w->nsamples < KW_MAX_SAMPLES) {
        sample(w);
        th_sleep_ms(200);
    }
    return NULL;
}

kw *kw_start(const int *ports, int n, const char *match) {
    kw *w = calloc(1, sizeof *w);
    if (w == NULL || n > KW_MAX_SERVERS) {
        free(w);
        return NULL;
    }
    memcpy(w->ports, ports, sizeof *ports * (size_t)n);
    w->n = n;
    snprintf(w->match, sizeof w->match, "%s", match);
    if (pthread_create(&w->thread, NULL, loop, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

void kw_stop(kw *w) {
    if (w == NULL || atomic_exchange(&w->stop, 1))
        return;
    pthread_join(w->thread, NULL);
}

void kw_print(const kw *w, int64_t t0_us) {
    if (w == NULL)
        return;
    fprintf(stderr, "the keys '%s' every 200 ms (s after the fault; H=holder/pttl, Q=queue):\n",
            w->match);
    for (int i = 0; i < w->nsamples; i++)
        fprintf(stderr, "  %+6.2f %s\n", (double)(w->at[i] - t0_us) / 1e6, w->line[i]);
}

void kw_free(kw *w) {
    if (w == NULL)
        return;
    kw_stop(w);
    for (int i = 0; i < w->n; i++)
        redisFree(w->ctx[i]);
    free(w);
}

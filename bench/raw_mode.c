/* raw_mode.c - dlock-bench --mode raw: the ceiling, two raw hiredis EVALSHA
 * round trips per pair on one blocking connection. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"
#include <sys/random.h>
#include "client.h" /* dl_script_source: the library's Lua, for --raw-script dlock */

static const char RAW_ACQ[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "return 0\n";
static const char RAW_REL[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

static int script_load(redisContext *ctx, const char *src, char sha[41], char *err,
                       size_t errlen) {
    redisReply *r = redisCommand(ctx, "SCRIPT LOAD %s", src);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok)
        memcpy(sha, r->str, 41);
    else
        snprintf(err, errlen, "SCRIPT LOAD: %s",
                 r == NULL                       ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

typedef struct raw_ctx {
    redisContext *ctx;
    int dlock_scripts;
    const char *acq_argv[16], *rel_argv[16];
    size_t acq_len[16], rel_len[16];
    int acq_argc, rel_argc;
    char tok[33];
    uint64_t tok_hi, tok_seq;
} raw_ctx;

static int raw_pair(raw_ctx *x, char *err, size_t errlen) {
    snprintf(x->tok, sizeof x->tok, "%016" PRIx64 "%016" PRIx64, x->tok_hi, x->tok_seq++);
    redisReply *r = redisCommandArgv(x->ctx, x->acq_argc, x->acq_argv, x->acq_len);
    int ok = r != NULL && (x->dlock_scripts
                               ? r->type == REDIS_REPLY_STRING /* the fence: granted */
                               : r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    if (!ok) {
        snprintf(err, errlen, "raw acquire: %s",
                 r == NULL                       ? x->ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not granted (key held?) or unexpected reply");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    r = redisCommandArgv(x->ctx, x->rel_argc, x->rel_argv, x->rel_len);
    ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    if (!ok) {
        snprintf(err, errlen, "raw release: %s",
                 r == NULL                       ? x->ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not released or unexpected reply");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int run_raw(const bench_opts *o, const bu_target *t, result *res) {
    char err[600];
    char a[300];
    /* Keys: the library's layout (prefix{name}, :fence, :q, :qi) under a
     * prefix of our own, so the raw runs never touch the library's lock. */
    char keys[4][DLOCK_NAME_MAX + 64];
    static const char *const sfx[4] = {"", ":fence", ":q", ":qi"};
    int nkeys = o->raw_dlock ? 4 : 1;
    for (int i = 0; i < nkeys; i++)
        snprintf(keys[i], sizeof keys[i], "dlock-bench-raw:{%s}%s", o->name, sfx[i]);
    bu_server srv;
    if (locate_server(t, keys[0], &srv, err, sizeof err) != 0)
        return fail("%s", err);
    if (t->url.kind == DL_URL_REDLOCK)
        fprintf(stderr, "dlock-bench: note: raw mode uses only the first server, %s\n",
                bu_server_addr(&srv, a, sizeof a));
    raw_ctx x;
    memset(&x, 0, sizeof x);
    x.dlock_scripts = o->raw_dlock;
    x.ctx = bu_connect(t, &srv, 2000, 1, err, sizeof err);
    if (x.ctx == NULL)
        return fail("%s", err);
    if (getrandom(&x.tok_hi, sizeof x.tok_hi, 0) != (ssize_t)sizeof x.tok_hi)
        x.tok_hi = (uint64_t)bu_now_ns();
    char sha_acq[41], sha_rel[41];
    size_t len;
    const char *src_acq = o->raw_dlock ? dl_script_source(DL_S_ACQUIRE, &len) : RAW_ACQ;
    const char *src_rel = o->raw_dlock ? dl_script_source(DL_S_RELEASE, &len) : RAW_REL;
    if (script_load(x.ctx, src_acq, sha_acq, err, sizeof err) ||
        script_load(x.ctx, src_rel, sha_rel, err, sizeof err)) {
        redisFree(x.ctx);
        return fail("%s", err);
    }
    char ttl[24], nk[4], host[256] = "", meta[400];
    snprintf(ttl, sizeof ttl, "%" PRId64, o->ttl_ms);
    snprintf(nk, sizeof nk, "%d", nkeys);
    gethostname(host, sizeof host - 1);
    snprintf(meta, sizeof meta, "%s\t%ld\t", host, (long)getpid());
    int n = 0;
    x.acq_argv[n++] = "EVALSHA";
    x.acq_argv[n++] = sha_acq;
    x.acq_argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        x.acq_argv[n++] = keys[i];
    x.acq_argv[n++] = x.tok;
    x.acq_argv[n++] = ttl;
    if (o->raw_dlock) {
        /* ARGV: token, ttl_ms, meta, fencing (1: INCR), enqueue 0, wait_ms
         * (unused without enqueue, but the script wants 1 or more),
         * acquired_ms */
        x.acq_argv[n++] = meta;
        x.acq_argv[n++] = "1";
        x.acq_argv[n++] = "0";
        x.acq_argv[n++] = "1";
        x.acq_argv[n++] = "0";
    }
    x.acq_argc = n;
    n = 0;
    x.rel_argv[n++] = "EVALSHA";
    x.rel_argv[n++] = sha_rel;
    x.rel_argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        x.rel_argv[n++] = keys[i];
    x.rel_argv[n++] = x.tok;
    x.rel_argc = n;
    for (int i = 0; i < x.acq_argc; i++)
        x.acq_len[i] = strlen(x.acq_argv[i]);
    for (int i = 0; i < x.rel_argc; i++)
        x.rel_len[i] = strlen(x.rel_argv[i]);
    x.acq_len[3 + nkeys] = 32; /* the token, filled in per pair */
    x.rel_len[3 + nkeys] = 32;

    int64_t warm_end = bu_now_ns() + (int64_t)(o->warmup * 1e9);
    do {
        if (raw_pair(&x, err, sizeof err) != 0) {
            redisFree(x.ctx);
            return fail("warm-up: %s", err);
        }
    } while (bu_now_ns() < warm_end);

    bu_samples s;
    if (bu_samples_init(&s, SAMPLE_CAP) != 0) {
        redisFree(x.ctx);
        return fail("out of memory");
    }
    stats_conns sc;
    stats_open(&sc, t);
    bu_cmdstats before, after;
    int got_before = stats_read(&sc, &before);
    uint64_t cnt = 0;
    int rc = 0;
    int64_t t_start = bu_now_ns(), t_end = t_start + (int64_t)(o->seconds * 1e9), t1 = t_start;
    while (t1 < t_end) {
        int64_t t0 = t1;
        if (raw_pair(&x, err, sizeof err) != 0) {
            rc = fail("%s", err);
            break;
        }
        t1 = bu_now_ns();
        cnt++;
        bu_samples_add(&s, t1 - t0);
    }
    double secs = (double)(t1 - t_start) / 1e9;
    int got_after = stats_read(&sc, &after);
    stats_close(&sc);
    redisFree(x.ctx);
    if (rc == 0) {
        bu_samples_sort(&s);
        printf("mode raw (%s scripts): server %s, key '%s', ttl %" PRId64 " ms\n",
               o->raw_dlock ? "dlock's" : "minimal", bu_server_addr(&srv, a, sizeof a),
               keys[0], o->ttl_ms);
        print_latency("raw hiredis EVALSHA pairs", cnt, secs, &s, res);
        if (got_before > 0 && got_before == got_after) {
            inner_set in;
            memset(&in, 0, sizeof in);
            inner_scan(&in, src_acq);
            inner_scan(&in, src_rel);
            double lib;
            own_calls none = {0, 0};
            res->cmds_per_acq =
                cmds_report(&before, &after, &in, &none, (long long)cnt, "pair", &lib);
        } else {
            res->cmds_per_acq = -1;
        }
    }
    bu_samples_free(&s);
    return rc;
}


/* report.c - what dlock-bench prints besides its own timings: commands
 * per acquisition from INFO commandstats (which of them the library's
 * scripts call), the server a key lives on, the latency lines. */
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
#include "client.h" /* dl_script_source: which commands the library's scripts call */

/* ---- commands per acquisition, from INFO commandstats ---- */

/* Collect the command names a Lua source calls: redis.call('X' / redis.pcall("X". */
void inner_scan(inner_set *s, const char *src) {
    static const char *const pats[] = {"redis.call(", "redis.pcall("};
    for (int k = 0; k < 2; k++) {
        const char *p = src;
        while ((p = strstr(p, pats[k])) != NULL) {
            p += strlen(pats[k]);
            while (*p == ' ')
                p++;
            if (*p != '\'' && *p != '"')
                continue;
            char q = *p++;
            const char *e = strchr(p, q);
            if (e == NULL || e - p >= 32 || e == p)
                continue;
            char nm[32];
            size_t n = (size_t)(e - p);
            for (size_t i = 0; i < n; i++)
                nm[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            nm[n] = '\0';
            int dup = 0;
            for (int i = 0; i < s->n; i++)
                dup |= strcmp(s->name[i], nm) == 0;
            if (!dup && s->n < MAX_INNER)
                snprintf(s->name[s->n++], sizeof s->name[0], "%s", nm);
            p = e;
        }
    }
}

void inner_library(inner_set *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < DL_NSCRIPTS; i++) {
        size_t len;
        inner_scan(s, dl_script_source((enum dl_script_id)i, &len));
    }
}

static int inner_has(const inner_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return 1;
    return 0;
}

void stats_open(stats_conns *sc, const bu_target *t) {
    memset(sc, 0, sizeof *sc);
    sc->t = t;
    if (t->url.tls) {
        printf("note: commands per pair are not counted over TLS (the bench's own INFO "
               "connections are plain hiredis 0.14)\n");
        return;
    }
    sc->n = t->nservers;
    for (int i = 0; i < t->nservers; i++) {
        char err[512];
        sc->ctx[i] = bu_connect(t, &t->servers[i], 2000, 0, err, sizeof err);
        if (sc->ctx[i] == NULL)
            fprintf(stderr, "dlock-bench: warning: INFO commandstats: %s (server left out)\n",
                    err);
        else
            sc->ok++;
    }
}

void stats_close(stats_conns *sc) {
    for (int i = 0; i < sc->n; i++)
        if (sc->ctx[i])
            redisFree(sc->ctx[i]);
    memset(sc, 0, sizeof *sc);
}

/* Sum of every reachable server's commandstats. Returns the servers read. */
int stats_read(stats_conns *sc, bu_cmdstats *out) {
    memset(out, 0, sizeof *out);
    int got = 0;
    for (int i = 0; i < sc->n; i++) {
        if (sc->ctx[i] == NULL)
            continue;
        char err[512];
        if (bu_cmdstats_add(sc->ctx[i], out, err, sizeof err) != 0) {
            char a[300];
            fprintf(stderr, "dlock-bench: warning: %s: %s (server left out)\n",
                    bu_server_addr(&sc->t->servers[i], a, sizeof a), err);
            redisFree(sc->ctx[i]);
            sc->ctx[i] = NULL;
            continue;
        }
        got++;
    }
    return got;
}

/* Print the per-command breakdown and return client commands per
 * acquisition: every command but INFO and the ones the scripts call, plus
 * the bench's own GET/SET (which the scripts' GET/SET would otherwise hide).
 * *lib_only receives the same without the bench's own commands. */
double cmds_report(const bu_cmdstats *b, const bu_cmdstats *a, const inner_set *inner,
                          const own_calls *own, long long acq, const char *unit,
                          double *lib_only) {
    long long own_total = own->get + own->set;
    long long client = own_total, in_scripts = 0;
    char line[2048] = "", iline[2048] = "";
    size_t ll = 0, il = 0;
    *lib_only = 0;
    if (acq <= 0)
        return 0;
    for (int i = 0; i < a->n; i++) {
        const char *nm = a->e[i].name;
        if (strcmp(nm, "info") == 0)
            continue;
        long long d = a->e[i].calls - bu_cmdstats_get(b, nm);
        if (!inner_has(inner, nm)) {
            if (d > 0) {
                client += d;
                if (ll < sizeof line - 64)
                    ll += (size_t)snprintf(line + ll, sizeof line - ll, " %s=%.3f", nm,
                                           (double)d / (double)acq);
            }
            continue;
        }
        if (strcmp(nm, "get") == 0)
            d -= own->get;
        else if (strcmp(nm, "set") == 0)
            d -= own->set;
        if (d > 0) {
            in_scripts += d;
            if (il < sizeof iline - 64)
                il += (size_t)snprintf(iline + il, sizeof iline - il, " %s=%.2f", nm,
                                       (double)d / (double)acq);
        }
    }
    if (own_total > 0)
        snprintf(line + ll, sizeof line - ll, " | bench: get=%.3f set=%.3f",
                 (double)own->get / (double)acq, (double)own->set / (double)acq);
    double per = (double)client / (double)acq;
    *lib_only = (double)(client - own_total) / (double)acq;
    printf("commands per %s: %.3f  (client-sent:%s)\n", unit, per, line);
    printf("  called inside scripts per %s: %.2f (%s )\n", unit,
           (double)in_scripts / (double)acq, iline);
    return per;
}

/* The server that holds `key`: the first server of the URL, or in a
 * cluster the node its slot lives on (EXISTS, following MOVED). */
int locate_server(const bu_target *t, const char *key, bu_server *out, char *err,
                         size_t errlen) {
    *out = t->servers[0];
    if (t->url.kind != DL_URL_CLUSTER)
        return 0;
    for (int hop = 0; hop < 3; hop++) {
        redisContext *ctx = bu_connect(t, out, 2000, 0, err, errlen);
        if (ctx == NULL)
            return -1;
        redisReply *r = redisCommand(ctx, "EXISTS %s", key);
        const char *addr = NULL, *colon = NULL;
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0) {
            addr = strchr(r->str + 6, ' ');
            colon = addr ? strrchr(addr, ':') : NULL;
        }
        if (addr && colon && colon > addr + 1) {
            memset(out, 0, sizeof *out);
            size_t hl = (size_t)(colon - addr - 1);
            if (hl >= sizeof out->host)
                hl = sizeof out->host - 1;
            memcpy(out->host, addr + 1, hl);
            out->port = atoi(colon + 1);
            freeReplyObject(r);
            redisFree(ctx);
            continue;
        }
        int ok = r && r->type == REDIS_REPLY_INTEGER;
        if (!ok)
            snprintf(err, errlen, "EXISTS %s: %s", key,
                     r == NULL                       ? ctx->errstr
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "unexpected reply");
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
        return ok ? 0 : -1;
    }
    snprintf(err, errlen, "%s: too many MOVED redirections", key);
    return -1;
}


void print_latency(const char *what, uint64_t n, double secs, const bu_samples *s,
                          result *res) {
    res->pairs_per_s = (double)n / secs;
    res->p50_us = bu_samples_quantile(s, 0.50) / 1000.0;
    res->p99_us = bu_samples_quantile(s, 0.99) / 1000.0;
    printf("%s: %" PRIu64 " pairs in %.3f s = %.1f pairs/s\n", what, n, secs, res->pairs_per_s);
    printf("pair latency: p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
           res->p50_us, bu_samples_quantile(s, 0.90) / 1000.0, res->p99_us,
           bu_samples_quantile(s, 0.999) / 1000.0, bu_samples_quantile(s, 1.0) / 1000.0);
}


/* keepalive_mode.c - dlock-bench --mode keepalive: N locks kept alive by one
 * client's keepalive thread. Measures the extensions the server sees per
 * second (INFO commandstats), how many round trips carried them, and the
 * client process's CPU, and checks that no lease was lost. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "dlock.h"
#include "keepalive_mode.h"

static atomic_long lost;

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)status;
    (void)ud;
    atomic_fetch_add(&lost, 1);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int read_stats(const bu_target *t, bu_cmdstats *st) {
    memset(st, 0, sizeof *st);
    char err[256];
    for (int i = 0; i < t->nservers; i++) {
        redisContext *ctx = bu_connect(t, &t->servers[i], 2000, 1, err, sizeof err);
        if (ctx == NULL) {
            fprintf(stderr, "dlock-bench: %s\n", err);
            return -1;
        }
        int rc = bu_cmdstats_add(ctx, st, err, sizeof err);
        redisFree(ctx);
        if (rc != 0) {
            fprintf(stderr, "dlock-bench: %s\n", err);
            return -1;
        }
    }
    return 0;
}

int run_keepalive_mode(const char *url, const bu_target *t, int nlocks, double seconds,
                       int64_t ttl_ms) {
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, NULL);
    if (rc != DLOCK_OK) {
        fprintf(stderr, "dlock-bench: %s\n", c ? dlock_client_errstr(c) : dlock_strerror(rc));
        dlock_client_free(c);
        return 1;
    }
    dlock_lock **ls = calloc((size_t)nlocks, sizeof *ls);
    if (ls == NULL) {
        dlock_client_free(c);
        return 1;
    }
    int ok = 1;
    for (int i = 0; i < nlocks && ok; i++) {
        char name[48];
        snprintf(name, sizeof name, "ka-bench-%d", i);
        rc = dlock_try_acquire(c, name, ttl_ms, &ls[i]);
        if (rc == DLOCK_OK)
            rc = dlock_keepalive_start(ls[i], 0, on_lost, NULL);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "dlock-bench: lock %d: %s: %s\n", i, dlock_err_name(rc),
                    dlock_client_errstr(c));
            ok = 0;
        }
    }
    bu_cmdstats s0, s1;
    double cpu0 = cpu_seconds();
    int64_t t0 = bu_now_ns();
    if (ok && read_stats(t, &s0) != 0)
        ok = 0;
    if (ok)
        bu_sleep_ns((int64_t)(seconds * 1e9));
    if (ok && read_stats(t, &s1) != 0)
        ok = 0;
    double el = (double)(bu_now_ns() - t0) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    int held = 0;
    for (int i = 0; i < nlocks; i++)
        held += ls[i] != NULL && dlock_held(ls[i]);
    for (int i = 0; i < nlocks; i++) {
        if (ls[i] != NULL)
            dlock_release(ls[i]);
        dlock_lock_free(ls[i]);
    }
    free(ls);
    dlock_client_free(c);
    if (!ok)
        return 1;
    double ext = (double)(bu_cmdstats_get(&s1, "evalsha") - bu_cmdstats_get(&s0, "evalsha") +
                          bu_cmdstats_get(&s1, "eval") - bu_cmdstats_get(&s0, "eval")) /
                 el;
    /* Each extension runs HGET + PEXPIRE inside the script. */
    double inner = (double)(bu_cmdstats_get(&s1, "pexpire") - bu_cmdstats_get(&s0, "pexpire")) / el;
    printf("keepalive: %d locks, ttl %" PRId64 " ms (extended every ttl/3), %.1f s\n", nlocks,
           ttl_ms, el);
    printf("  server: %.0f extension scripts/s (%.0f PEXPIRE/s inside them); expected %.0f/s\n",
           ext, inner, nlocks / (ttl_ms / 3000.0));
    printf("  client: %.1f %% of one CPU (%.3f s CPU over %.1f s)\n", 100 * cpu / el, cpu, el);
    printf("  held at the end: %d of %d, lost callbacks: %ld\n", held, nlocks,
           atomic_load(&lost));
    printf("RESULT mode=keepalive locks=%d ttl_ms=%" PRId64 " ext_per_s=%.1f client_cpu_pct=%.2f "
           "held=%d lost=%ld\n",
           nlocks, ttl_ms, ext, 100 * cpu / el, held, atomic_load(&lost));
    return held == nlocks && atomic_load(&lost) == 0 ? 0 : 1;
}

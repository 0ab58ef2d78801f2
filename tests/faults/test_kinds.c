/* test_kinds.c - one kind of lock (argv[1]: sem, rw or multi) under every
 * fault the mutex meets in the other fault tests, with six worker
 * processes and the history checker; the short version of what `make
 * soak` runs for all kinds at once.
 *
 *   sem    a semaphore of 2 permits;
 *   rw     a read-write lock, a fifth of the acquisitions exclusive;
 *   multi  multi-locks of 2..3 of four names, and plain mutexes of them.
 *
 * 1. With --appendonly yes --appendfsync always, the server behind the
 *    fault proxy: every fault of ft_inject once, in a fixed order (proxy
 *    latency, reset, drop, stall, black hole, byte drip; server paused past
 *    the ttl, killed and restarted, SCRIPT FLUSH, CLIENT KILL; a worker
 *    stopped past its ttl). No violation at all: never more than 2 permit
 *    holders, never a writer with anyone, never a partial multi-lock,
 *    fences rising per kind (writers' and permits', in grant order), and
 *    every worker back at work after the faults.
 * 2. Without persistence, two restarts: the leases and the fence counter
 *    are lost, so holders may overlap across a restart; every violation
 *    the checker finds must straddle one (hist_loss), as for the mutex in
 *    test_restart.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

#define WORKERS 6

static const enum ft_fault cycle[] = {
    FT_LATENCY, FT_RESET,        FT_PAUSE,  FT_DROP,         FT_RESTART, FT_STALL,
    FT_DRIP,    FT_WORKER_STOP, FT_BLACKHOLE, FT_SCRIPT_FLUSH, FT_CLIENT_KILL};
#define NCYCLE (int)(sizeof cycle / sizeof cycle[0])

static int g_kind;

static ft_cfg *cfg(const char *name, int store_port, hist *h, ft_stats *st) {
    ft_cfg *x = ft_cfg_new();
    snprintf(x->name, sizeof x->name, "%s", name);
    x->kind = g_kind;
    x->nnames = g_kind == FT_MULTI ? 4 : 1;
    x->permits = 2;
    x->writer_pct = 20;
    x->multi_max = 3;
    x->ttl_ms = 500;
    x->wait_ms = 800;
    x->hold_steps = 15;
    x->step_us = 2000;
    x->random_hold = 1;
    x->extend = 1;
    x->store_port = store_port;
    x->h = h;
    x->st = st;
    return x;
}

/* Runs the workers for run_ms after `faults` of cycle[] (or restarts
 * only, lossy); returns the checker's result. */
static hist_result run(const char *label, const char *const *args, int lossy, int run_ms) {
    printf("== %s\n", label);
    th_server *store = th_server_start(NULL);
    th_server *s = th_server_start(args);
    TH_CHECK(store != NULL && s != NULL);
    hist *h = hist_new(200000);
    ft_stats *st = ft_stats_new();
    ft_cfg *x = cfg(lossy ? "kl" : "kf", th_server_port(store), h, st);
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i); /* before the proxy's thread: faults.h */
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    snprintf(x->url, sizeof x->url, "%s", th_proxy_url(p));
    x->end_us = th_now_us() + (int64_t)run_ms * 1000;
    ft_go(x);
    ft_env env = {.server = s, .proxy = p, .pids = pids, .nworkers = WORKERS,
                  .ttl_ms = x->ttl_ms, .lossy = lossy, .h = h};
    int64_t last_fault = 0;
    for (int k = 0; k < (lossy ? 2 : NCYCLE); k++) {
        th_sleep_ms(ft_rand(150, 300));
        enum ft_fault f = lossy ? FT_RESTART : cycle[k];
        ft_inject(&env, f, f == FT_PAUSE ? 700 : ft_rand(200, 500));
        last_fault = th_now_us();
    }
    TH_CHECK(th_now_us() < x->end_us - 500 * 1000LL); /* time left to recover */
    TH_EQ_INT(ft_join(pids, WORKERS, 30000), 0);
    hist_result res;
    TH_EQ_INT(hist_check(h, label, &res), 0);
    ft_stats_print(label, st);
    TH_EQ_INT(res.faults, lossy ? 2 : NCYCLE);
    TH_CHECK(res.acquisitions > 30);
    /* Work went on after the last fault. */
    int64_t after = 0;
    for (int64_t i = 0; i < h->n && i < h->cap; i++)
        after += h->rec[i].done && h->rec[i].start_us > last_fault;
    TH_CHECK(after > 0);
    /* The faults were felt: some call failed or timed out. */
    TH_CHECK(ft_stats_total(st->acquire) + ft_stats_total(st->release) +
                 ft_stats_total(st->extend) >
             atomic_load(&st->acquire[0]) + atomic_load(&st->release[0]) +
                 atomic_load(&st->extend[0]));
    TH_EQ_INT(atomic_load(&st->commit_err), 0);
    hist_free(h);
    th_proxy_stop(p);
    th_server_free(s);
    th_server_free(store);
    return res;
}

int main(int argc, char **argv) {
    th_test_init(110);
    const char *k = argc > 1 ? argv[1] : "";
    g_kind = strcmp(k, "sem") == 0 ? FT_SEM : strcmp(k, "rw") == 0 ? FT_RW
             : strcmp(k, "multi") == 0 ? FT_MULTI : -1;
    if (g_kind < 0)
        TH_FAIL("usage: test_kinds sem|rw|multi");
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    char label[64];
    snprintf(label, sizeof label, "%s, every fault, AOF always", k);
    hist_result res = run(label, aof, 0, 9000);
    TH_EQ_INT(res.violations, 0);
    if (g_kind == FT_MULTI) {
        TH_CHECK(res.multi > 10);
        TH_EQ_INT(res.partial_multi, 0);
    } else {
        TH_CHECK(res.max_holders >= 2); /* permits, or readers, held together */
    }
    snprintf(label, sizeof label, "%s, restarts without persistence", k);
    res = run(label, NULL, 1, 3000);
    printf("known weakness [%s]: %lld violations, all across a restart\n", label,
           (long long)res.violations);
    IT_PASS("test_kinds");
    return 0;
}

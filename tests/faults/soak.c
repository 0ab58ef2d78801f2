/* soak.c - the long run: worker processes of every kind contend on a
 * server behind the fault proxy while faults are switched at random, then
 * the history checker. Not part of `make test` (test_kinds is its short
 * version per kind); `make soak` runs it.
 *
 * Workers: 6 on three mutexes, 5 on a semaphore of 2 permits, 5 on a
 * read-write lock (a fifth of the acquisitions exclusive), 5 taking
 * multi-locks of 2..3 of four names (and, a quarter of the time, one of
 * them as a plain mutex).
 *
 * Duration: $DLOCK_SOAK_SECONDS (default 120). The lock server runs with
 * --appendonly yes --appendfsync always, so that its restarts lose nothing:
 * every violation is a failure (restarts without persistence are covered,
 * and their known weakness shown, by test_restart).
 *
 * Faults, one at a time, each for a random 50..1500 ms, with random gaps:
 *   proxy: latency (20..600 ms, often past the 300 ms command timeout),
 *          stall, drop (FIN), reset (RST), black hole, byte drip;
 *   server: SIGSTOP (shorter and longer than the TTL), SIGKILL + restart,
 *           SCRIPT FLUSH, CLIENT KILL;
 *   workers: SIGSTOP of a random worker past its TTL.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "faults.h"

static const struct group {
    int kind, workers, nnames;
    const char *name;
} groups[] = {
    {FT_MUTEX, 6, 3, "soak"},
    {FT_SEM, 5, 1, "soak-sem"},
    {FT_RW, 5, 1, "soak-rw"},
    {FT_MULTI, 5, 4, "soak-multi"},
};
#define NGROUPS (int)(sizeof groups / sizeof groups[0])
#define MAXW 32

static ft_cfg *group_cfg(const struct group *g, int store_port, hist *h) {
    ft_cfg *x = ft_cfg_new();
    snprintf(x->name, sizeof x->name, "%s", g->name);
    x->kind = g->kind;
    x->nnames = g->nnames;
    x->ttl_ms = 800;
    x->wait_ms = 1500;
    x->hold_steps = 20;
    x->step_us = 2000;
    x->random_hold = 1;
    x->extend = 1;
    x->connect_ms = 200;
    x->command_ms = 300;
    x->store_port = store_port;
    x->h = h;
    x->st = ft_stats_new();
    return x;
}

int main(void) {
    int seconds = 120;
    const char *envs = getenv("DLOCK_SOAK_SECONDS");
    if (envs != NULL && atoi(envs) > 0)
        seconds = atoi(envs);
    th_test_init(seconds + 120);
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    th_server *store = th_server_start(NULL);
    th_server *s = th_server_start(aof);
    TH_CHECK(store != NULL && s != NULL);

    /* Workers first: no thread may exist when they are forked (faults.h). */
    hist *h = hist_new(4000000);
    ft_cfg *x[NGROUPS];
    pid_t pids[MAXW];
    int nw = 0;
    for (int g = 0; g < NGROUPS; g++) {
        x[g] = group_cfg(&groups[g], th_server_port(store), h);
        for (int i = 0; i < groups[g].workers && nw < MAXW; i++, nw++)
            pids[nw] = ft_spawn_worker(x[g], nw);
    }
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    int64_t end_us = th_now_us() + (int64_t)seconds * 1000000;
    for (int g = 0; g < NGROUPS; g++) {
        snprintf(x[g]->url, sizeof x[g]->url, "%s", th_proxy_url(p));
        x[g]->end_us = end_us;
        ft_go(x[g]);
    }
    printf("soak: %d workers of every kind, %d s, ttl %d ms, server behind the fault proxy\n",
           nw, seconds, x[0]->ttl_ms);

    ft_env env = {.server = s, .proxy = p, .pids = pids, .nworkers = nw,
                  .ttl_ms = x[0]->ttl_ms, .h = h};
    long count[FT_NFAULTS] = {0};
    while (th_now_us() < end_us - 2000 * 1000LL) {
        th_sleep_ms(ft_rand(100, 1200));
        enum ft_fault f = (enum ft_fault)ft_rand(0, FT_NFAULTS - 1);
        count[f]++;
        ft_inject(&env, f, ft_rand(50, 1500));
    }
    TH_EQ_INT(ft_join(pids, nw, 60000), 0);
    printf("soak: faults:");
    for (int f = 0; f < FT_NFAULTS; f++)
        printf(" %s %ld", ft_fault_name((enum ft_fault)f), count[f]);
    printf("\n");
    hist_result res;
    int64_t bad = hist_check(h, "soak", &res);
    for (int g = 0; g < NGROUPS; g++)
        ft_stats_print(groups[g].name, x[g]->st);
    TH_EQ_INT(bad, 0);
    TH_EQ_INT(res.violations, 0);
    TH_EQ_INT(res.partial_multi, 0);
    TH_CHECK(res.multi > 0);
    TH_CHECK(res.acquisitions > (int64_t)seconds * 10);
    hist_free(h);
    th_proxy_stop(p);
    th_server_free(s);
    th_server_free(store);
    IT_PASS("soak");
    return 0;
}

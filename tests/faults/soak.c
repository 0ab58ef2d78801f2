/* soak.c - the long run: many worker processes contend for a few locks on a
 * server behind the fault proxy while faults are switched at random, then
 * the history checker. Not part of `make test`; `make soak` runs it.
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

#define WORKERS 10

enum fault { F_LATENCY, F_STALL, F_DROP, F_RESET, F_BLACKHOLE, F_DRIP, F_PAUSE, F_RESTART,
             F_SCRIPT_FLUSH, F_CLIENT_KILL, F_WORKER_STOP, F_N };
static const char *fault_name[F_N] = {"latency",  "stall",        "drop",        "reset",
                                      "blackhole", "drip",        "server-pause", "restart",
                                      "script-flush", "client-kill", "worker-stop"};

int main(void) {
    int seconds = 120;
    const char *env = getenv("DLOCK_SOAK_SECONDS");
    if (env != NULL && atoi(env) > 0)
        seconds = atoi(env);
    th_test_init(seconds + 120);
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    th_server *store = th_server_start(NULL);
    th_server *s = th_server_start(aof);
    TH_CHECK(store != NULL && s != NULL);

    /* Workers first: no thread may exist when they are forked (faults.h). */
    hist *h = hist_new(4000000);
    ft_stats *st = ft_stats_new();
    ft_cfg *x = ft_cfg_new();
    snprintf(x->name, sizeof x->name, "soak");
    x->nnames = 3;
    x->ttl_ms = 800;
    x->wait_ms = 1500;
    x->hold_steps = 20;
    x->step_us = 2000;
    x->random_hold = 1;
    x->extend = 1;
    x->connect_ms = 200;
    x->command_ms = 300;
    x->store_port = th_server_port(store);
    x->h = h;
    x->st = st;
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i);
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    snprintf(x->url, sizeof x->url, "%s", th_proxy_url(p));
    x->end_us = th_now_us() + (int64_t)seconds * 1000000;
    ft_go(x);
    printf("soak: %d workers, %d s, 3 locks, ttl %d ms, server behind the fault proxy\n",
           WORKERS, seconds, x->ttl_ms);

    long count[F_N] = {0};
    while (th_now_us() < x->end_us - 2000 * 1000LL) {
        th_sleep_ms(ft_rand(100, 1200));
        enum fault f = (enum fault)ft_rand(0, F_N - 1);
        int dur = ft_rand(50, 1500);
        count[f]++;
        hist_fault(h);
        switch (f) {
        case F_LATENCY:
            th_proxy_set(p, TH_LATENCY, ft_rand(20, 600));
            th_sleep_ms(dur);
            break;
        case F_STALL:
            th_proxy_set(p, TH_STALL, 0);
            th_sleep_ms(dur);
            break;
        case F_DROP:
            th_proxy_set(p, TH_DROP, 0);
            break;
        case F_RESET:
            th_proxy_set(p, TH_RESET, 0);
            break;
        case F_BLACKHOLE:
            th_proxy_set(p, TH_BLACKHOLE, 0);
            th_sleep_ms(dur);
            break;
        case F_DRIP:
            th_proxy_set(p, TH_DRIP, ft_rand(1, 20));
            th_sleep_ms(dur);
            break;
        case F_PAUSE:
            TH_EQ_INT(th_server_pause(s), 0);
            th_sleep_ms(dur);
            TH_EQ_INT(th_server_resume(s), 0);
            break;
        case F_RESTART:
            TH_EQ_INT(th_server_kill(s), 0);
            th_sleep_ms(dur / 4);
            TH_EQ_INT(th_server_restart(s), 0);
            break;
        case F_SCRIPT_FLUSH:
            freeReplyObject(th_server_cmd(s, "SCRIPT FLUSH"));
            break;
        case F_CLIENT_KILL:
            freeReplyObject(th_server_cmd(s, "CLIENT KILL TYPE normal"));
            break;
        case F_WORKER_STOP: {
            pid_t v = pids[ft_rand(0, WORKERS - 1)];
            kill(v, SIGSTOP);
            th_sleep_ms(x->ttl_ms + dur / 2);
            kill(v, SIGCONT);
            break;
        }
        case F_N:
            break;
        }
        th_proxy_set(p, TH_PASS, 0);
    }
    TH_EQ_INT(ft_join(pids, WORKERS, 60000), 0);
    printf("soak: faults:");
    for (int f = 0; f < F_N; f++)
        printf(" %s %ld", fault_name[f], count[f]);
    printf("\n");
    hist_result res;
    int64_t bad = hist_check(h, "soak", &res);
    ft_stats_print("soak", st);
    TH_EQ_INT(bad, 0);
    TH_EQ_INT(res.violations, 0);
    TH_CHECK(res.acquisitions > (int64_t)seconds * 10);
    hist_free(h);
    th_proxy_stop(p);
    th_server_free(s);
    th_server_free(store);
    IT_PASS("soak");
    return 0;
}

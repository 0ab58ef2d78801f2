/* test_restart.c - the lock server is SIGKILLed and restarted while six
 * worker processes contend for two locks (dlock_wait, a short critical
 * section with dlock_held checks, a fenced commit to a second "storage"
 * server, release).
 *
 * 1. Without persistence (the harness default): the restart loses every
 *    lease AND the fencing counter. A holder's lease vanishes while its
 *    local validity says held, so another worker can acquire at once: the
 *    believed-held intervals overlap, and the new fences start again at 1.
 *    This is the documented weakness of a single non-persistent server
 *    (docs/RELIABILITY.md). The test asserts that every violation the
 *    checker finds straddles a restart (nothing else breaks), that the
 *    workers recover after each restart, and reports what the storage-side
 *    fence check did with the holders that came after the restart.
 * 2. With --appendonly yes --appendfsync always: the lease and the counter
 *    survive the restart, so there must be no violation at all, and the
 *    fences keep rising across each restart.
 */
#include <stdlib.h>
#include <unistd.h>

#include "faults.h"

#define WORKERS 6
#define RUN_MS 6500
#define RESTARTS 3

static long long get_fence(th_server *s, const char *name) {
    redisReply *r = th_server_cmd(s, "GET dlock:{%s}:fence", name);
    long long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r != NULL && r->type == REDIS_REPLY_NIL)
        v = 0;
    freeReplyObject(r);
    return v;
}

static int64_t fence_of(dlock_lock *l) {
    dlock_info info;
    dlock_info_get(l, &info);
    return info.fence;
}

/* The restart, step by step: A holds fence n, the server restarts, B asks. */
static void demo(th_server *s, th_server *store, int persistent) {
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *a = it_client(th_server_url(s), &o);
    dlock_client *b = it_client(th_server_url(s), &o);
    redisContext *sc = th_connect(th_server_port(store), 2000);
    TH_CHECK(sc != NULL);
    dlock_lock *la = NULL, *lb = NULL;
    for (int i = 0; i < 5; i++) { /* some history: the storage has seen fence 5 */
        IT_RC(a, dlock_try_acquire(a, "demo", 5000, &la), DLOCK_OK);
        TH_EQ_INT(ft_store_commit(sc, "demo", fence_of(la)), 1);
        IT_RC(a, dlock_release(la), DLOCK_OK);
        dlock_lock_free(la);
    }
    IT_RC(a, dlock_try_acquire(a, "demo", 5000, &la), DLOCK_OK);
    int64_t fa = fence_of(la);
    TH_EQ_INT(fa, 6);
    TH_EQ_INT(th_server_kill(s), 0);
    TH_EQ_INT(th_server_restart(s), 0);
    TH_CHECK(dlock_held(la)); /* A's local validity knows nothing of the restart */
    int rc;
    long long t0 = th_now_us();
    do { /* the AOF server may still be loading (ESERVER LOADING) */
        rc = dlock_try_acquire(b, "demo", 5000, &lb);
    } while (rc == DLOCK_ESERVER && ft_ms_since(t0) < 3000 && (th_sleep_ms(10), 1));
    if (!persistent) {
        /* The lease is gone: B gets the lock while A still believes it
         * holds it, with a fence that starts again at 1. */
        IT_RC(b, rc, DLOCK_OK);
        int64_t fb = fence_of(lb);
        TH_CHECK(dlock_held(la) && dlock_held(lb));
        TH_EQ_INT(fb, 1);
        /* The storage check keeps the data consistent, at B's expense: B,
         * the holder the server knows, is refused until fences pass 6. */
        TH_EQ_INT(ft_store_commit(sc, "demo", fb), 0);
        TH_EQ_INT(ft_store_commit(sc, "demo", fa), 1);
        IT_RC(a, dlock_release(la), DLOCK_ENOTHELD);
        IT_RC(b, dlock_release(lb), DLOCK_OK);
        printf("demo (no persistence): after the restart B acquired at once with fence %lld "
               "while A (fence %lld) still held; the storage refused B and accepted A\n",
               (long long)fb, (long long)fa);
        dlock_lock_free(lb);
    } else {
        /* The lease survived: B must wait for A, then gets fence 7. */
        IT_RC(b, rc, DLOCK_EBUSY);
        IT_RC(a, dlock_release(la), DLOCK_OK);
        IT_RC(b, dlock_try_acquire(b, "demo", 5000, &lb), DLOCK_OK);
        TH_EQ_INT(fence_of(lb), 7);
        TH_EQ_INT(ft_store_commit(sc, "demo", fence_of(lb)), 1);
        IT_RC(b, dlock_release(lb), DLOCK_OK);
        printf("demo (AOF always): after the restart B was refused (EBUSY) until A released; "
               "then fence 7\n");
        dlock_lock_free(lb);
    }
    dlock_lock_free(la);
    redisFree(sc);
    dlock_client_free(a);
    dlock_client_free(b);
}

static void run(const char *label, const char *const *args, int persistent) {
    printf("== %s\n", label);
    th_server *store = th_server_start(NULL);
    th_server *s = th_server_start(args);
    TH_CHECK(store != NULL && s != NULL);
    demo(s, store, persistent);
    hist *h = hist_new(200000);
    ft_stats *st = ft_stats_new();
    ft_cfg *x = ft_cfg_new();
    snprintf(x->url, sizeof x->url, "%s", th_server_url(s));
    snprintf(x->name, sizeof x->name, "rs");
    x->nnames = 2;
    x->ttl_ms = 1500;
    x->wait_ms = 800;
    /* Holds of 5..300 ms: a restart (about 160 ms down) often lands inside
     * one, which is when the lost lease shows. */
    x->hold_steps = 60;
    x->step_us = 5000;
    x->random_hold = 1;
    x->store_port = th_server_port(store);
    x->end_us = th_now_us() + (int64_t)RUN_MS * 1000;
    x->h = h;
    x->st = st;
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i);
    ft_go(x);

    long long restart_at[RESTARTS];
    long long max_down_ms = 0;
    for (int k = 0; k < RESTARTS; k++) {
        th_sleep_ms(1500);
        long long before = get_fence(s, "rs-0");
        long long t_kill = th_now_us();
        TH_EQ_INT(th_server_kill(s), 0);
        hist_fault(h);
        if (!persistent)
            hist_loss(h, t_kill);
        long long t0 = th_now_us();
        th_sleep_ms(150); /* down: the workers see connection refused */
        TH_EQ_INT(th_server_restart(s), 0);
        restart_at[k] = th_now_us();
        long long down = ft_ms_since(t0);
        if (down > max_down_ms)
            max_down_ms = down;
        long long after = get_fence(s, "rs-0");
        printf("restart %d: server down %lld ms; fence counter of rs-0 %lld before the kill, "
               "%lld after the restart\n",
               k + 1, down, before, after);
        if (persistent)
            TH_CHECK(after >= before); /* the counter survived */
    }
    TH_EQ_INT(ft_join(pids, WORKERS, 30000), 0);

    hist_result res;
    int64_t bad = hist_check(h, label, &res);
    ft_stats_print(label, st);
    TH_CHECK(res.acquisitions > 10);
    TH_EQ_INT(bad, 0);
    if (persistent) {
        TH_EQ_INT(res.violations, 0);
    } else {
        printf("known weakness [%s]: %lld violations, all across a restart without "
               "persistence (longest overlap %lld ms)\n",
               label, (long long)res.violations, (long long)res.max_overlap_us / 1000);
    }
    /* The workers recovered after every restart. */
    for (int k = 0; k < RESTARTS; k++) {
        long long after = 0;
        for (int64_t i = 0; i < h->n && i < h->cap; i++)
            if (h->rec[i].done && h->rec[i].start_us > restart_at[k])
                after++;
        TH_CHECK(after > 0);
    }
    /* No call hung: the slowest is bounded by the wait timeout plus the
     * per-attempt connect + command timeouts. */
    TH_CHECK(atomic_load(&st->max_call_us) < (x->wait_ms + 2 * (200 + 300) + 500) * 1000LL);
    hist_free(h);
    th_server_free(s);
    th_server_free(store);
}

int main(void) {
    th_test_init(100);
    run("restart-no-persistence", NULL, 0);
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    run("restart-aof-always", aof, 1);
    IT_PASS("test_restart");
    return 0;
}

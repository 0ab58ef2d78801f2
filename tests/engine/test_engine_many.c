/* test_engine_many.c - 1,000 waits on 100 names in one loop on one client:
 * every wait is granted, each name's waiters in the order they queued
 * (FIFO), never two holders of a name at once, fences rising by one per
 * hand-over, and nothing left in the queues. The hand-overs come from
 * releases started in the callbacks, so the loop itself drives the chain. */
#include <stdlib.h>

#include "etest.h"

#define NAMES 100
#define PER 10
#define TOTAL (NAMES * PER)

typedef struct waiter {
    int name, seq;
    uint64_t id;
} waiter;

static dlock_client *g_c;
static waiter g_w[TOTAL];
static int g_held[NAMES];     /* holder's seq + 1, 0 when free */
static int g_next[NAMES];     /* the seq expected next */
static int64_t g_fence[NAMES];
static int g_granted, g_released;

static void on_release(const dlock_result *r, void *ud) {
    (void)ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("release: %s (%s)", dlock_err_name(r->status), r->detail);
    g_released++;
    dlock_lock_free(r->lock);
}

static void on_grant(const dlock_result *r, void *ud) {
    waiter *w = ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("wait %d/%d: %s (%s)", w->name, w->seq, dlock_err_name(r->status), r->detail);
    if (g_held[w->name] != 0)
        TH_FAIL("name %d granted to %d while %d holds it", w->name, w->seq,
                g_held[w->name] - 1);
    if (w->seq != g_next[w->name])
        TH_FAIL("name %d granted to waiter %d, want %d (not FIFO)", w->name, w->seq,
                g_next[w->name]);
    if (g_fence[w->name] != 0 && r->fence != g_fence[w->name] + 1)
        TH_FAIL("name %d: fence %lld after %lld", w->name, (long long)r->fence,
                (long long)g_fence[w->name]);
    g_fence[w->name] = r->fence;
    g_next[w->name]++;
    g_granted++;
    g_held[w->name] = 0; /* we stop using it now: the release follows */
    if (dlock_release_async(r->lock, on_release, NULL, NULL) != DLOCK_OK)
        TH_FAIL("release_async: %s", dlock_client_errstr(g_c));
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    g_c = it_client(th_server_url(s), NULL);
    /* Hold every name first, so that all 1,000 waiters queue. */
    dlock_client *holder = it_client(th_server_url(s), NULL);
    dlock_lock *h[NAMES];
    char name[32];
    for (int n = 0; n < NAMES; n++) {
        snprintf(name, sizeof name, "many-%d", n);
        IT_RC(holder, dlock_acquire(holder, name, 20000, &h[n]), DLOCK_OK);
        dlock_info info;
        dlock_info_get(h[n], &info);
        g_fence[n] = info.fence;
    }
    long long t0 = th_now_us();
    for (int seq = 0; seq < PER; seq++) {
        for (int n = 0; n < NAMES; n++) {
            waiter *w = &g_w[seq * NAMES + n];
            w->name = n;
            w->seq = seq;
            snprintf(name, sizeof name, "many-%d", n);
            IT_RC(g_c, dlock_wait_async(g_c, name, 60000, 10000, on_grant, w, &w->id), DLOCK_OK);
        }
        /* Let this round queue before the next, so arrival order is seq order. */
        while (dlock_client_process(g_c) > 0 && th_server_int(s, "ZCARD %s", "dlock:{many-99}:q") <= seq)
            dlock_poll_once(g_c, 5);
    }
    long long queued_ms = (th_now_us() - t0) / 1000;
    TH_EQ_INT(th_server_int(s, "ZCARD %s", "dlock:{many-0}:q"), PER);
    long long t1 = th_now_us();
    for (int n = 0; n < NAMES; n++)
        IT_RC(holder, dlock_release(h[n]), DLOCK_OK);
    while (g_released < TOTAL && th_now_us() - t1 < 60000000LL)
        dlock_poll_once(g_c, 50);
    long long ms = (th_now_us() - t1) / 1000;
    TH_EQ_INT(g_granted, TOTAL);
    TH_EQ_INT(g_released, TOTAL);
    TH_EQ_INT(dlock_poll_run(g_c, 5000), 0);
    for (int n = 0; n < NAMES; n++) {
        snprintf(name, sizeof name, "dlock:{many-%d}:q", n);
        TH_EQ_INT(th_server_int(s, "EXISTS %s", name), 0);
        snprintf(name, sizeof name, "dlock:{many-%d}", n);
        TH_EQ_INT(th_server_int(s, "EXISTS %s", name), 0);
    }
    printf("1000 waits queued in %lld ms; %d hand-overs in %lld ms (%.0f/s)\n", queued_ms, TOTAL,
           ms, ms > 0 ? TOTAL * 1000.0 / ms : 0.0);
    for (int n = 0; n < NAMES; n++)
        dlock_lock_free(h[n]);
    dlock_client_free(holder);
    dlock_client_free(g_c);
    th_server_free(s);
    IT_PASS("test_engine_many");
    return 0;
}

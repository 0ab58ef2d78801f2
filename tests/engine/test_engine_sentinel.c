/* test_engine_sentinel.c - the non-blocking API on a Sentinel group (a
 * master, its replica and 3 sentinels, down-after 1 s), driven by the
 * test's own poll loop (etopo.h), which times every dlock_client_process
 * call:
 *   1. every operation once: try, acquire, inspect, extend, a wait woken
 *      by a release, release; the keys are on the master the sentinels name,
 *      and the first start returns before the master is even known;
 *   2. a failover under the loop: a lock kept alive by the engine's timers
 *      and a waiter queued behind a holder whose lease runs out; the master
 *      is killed. The waiter gets the lock on the new master within its
 *      deadline, with a fence above the holder's; the keepalive extends it
 *      there; and no turn of the loop blocks while the sentinels are asked
 *      over and over (ETOPO_PROCESS_MAX_MS). */
#include <inttypes.h>

#include "etopo.h"

#define CONNECT_MS 300
#define COMMAND_MS 500

static et_res start_try(dlock_client *c, const char *name, int64_t ttl) {
    et_res r = {0};
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire_async(c, name, ttl, et_cb, &r, NULL), DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 20000); /* returns at once, master known or not */
    TH_CHECK(!r.done);
    etopo_run(c, &r.done, 5000);
    TH_CHECK(r.done);
    return r;
}

static void every_op(tt_sentinels *g) {
    th_server *m = g->data[0];
    dlock_client *c = etopo_client(g->url, CONNECT_MS, COMMAND_MS);
    et_res a = start_try(c, "s-ops", 5000);
    ET_STATUS(a, DLOCK_OK);
    TH_EQ_INT(th_server_int(m, "EXISTS %s", "dlock:{s-ops}"), 1);
    TH_CHECK(a.fence > 0);

    et_res in = {0};
    IT_RC(c, dlock_inspect_async(c, "s-ops", et_cb, &in, NULL), DLOCK_OK);
    etopo_run(c, &in.done, 5000);
    ET_STATUS(in, DLOCK_OK);
    TH_CHECK(in.has_holder && in.holder.locked && in.holder.fence == a.fence);

    et_res ex = {0};
    IT_RC(c, dlock_extend_async(a.lock, 20000, et_cb, &ex, NULL), DLOCK_OK);
    etopo_run(c, &ex.done, 5000);
    ET_STATUS(ex, DLOCK_OK);
    TH_CHECK(th_server_int(m, "PTTL %s", "dlock:{s-ops}") > 15000);

    /* A wait, woken by the release (push, not polling: well before the
     * 20 s lease ends). */
    et_res w = {0}, rel = {0};
    IT_RC(c, dlock_wait_async(c, "s-ops", 10000, 5000, et_cb, &w, NULL), DLOCK_OK);
    etopo_spin(c, 200);
    TH_CHECK(!w.done);
    IT_RC(c, dlock_release_async(a.lock, et_cb, &rel, NULL), DLOCK_OK);
    long long t0 = th_now_us();
    etopo_run(c, &w.done, 5000);
    etopo_run(c, &rel.done, 5000);
    ET_STATUS(rel, DLOCK_OK);
    ET_STATUS(w, DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 2000000);
    TH_CHECK(w.fence > a.fence);

    et_res r2 = {0};
    IT_RC(c, dlock_release_async(w.lock, et_cb, &r2, NULL), DLOCK_OK);
    etopo_run(c, &r2.done, 5000);
    ET_STATUS(r2, DLOCK_OK);
    TH_EQ_INT(th_server_int(m, "EXISTS %s", "dlock:{s-ops}"), 0);
    TH_EQ_INT(th_server_int(m, "EXISTS %s", "dlock:{s-ops}:q"), 0);
    dlock_lock_free(a.lock);
    dlock_lock_free(w.lock);

    /* The retrying acquire (dlock_acquire_async), on a free name. */
    et_res q = {0}, r3 = {0};
    IT_RC(c, dlock_acquire_async(c, "s-acq", 5000, et_cb, &q, NULL), DLOCK_OK);
    etopo_run(c, &q.done, 5000);
    ET_STATUS(q, DLOCK_OK);
    TH_EQ_INT(th_server_int(m, "EXISTS %s", "dlock:{s-acq}"), 1);
    IT_RC(c, dlock_release_async(q.lock, et_cb, &r3, NULL), DLOCK_OK);
    etopo_run(c, &r3.done, 5000);
    ET_STATUS(r3, DLOCK_OK);
    dlock_lock_free(q.lock);
    dlock_client_free(c);
    printf("every operation on the sentinels' master: ok\n");
}

static void failover(tt_sentinels *g) {
    th_server *m = g->data[0], *r = g->data[1];
    /* The holder: a blocking client, no keepalive: its lease runs out. */
    dlock_client *h = etopo_client(g->url, CONNECT_MS, COMMAND_MS);
    dlock_lock *hl = NULL;
    IT_RC(h, dlock_acquire(h, "s-fo", 3000, &hl), DLOCK_OK);
    dlock_info hi;
    dlock_info_get(hl, &hi);

    dlock_client *c = etopo_client(g->url, CONNECT_MS, COMMAND_MS);
    et_res k = start_try(c, "s-ka", 15000);
    ET_STATUS(k, DLOCK_OK);
    int lost = 0;
    IT_RC(c, dlock_keepalive_start(k.lock, 500, etopo_on_lost, &lost), DLOCK_OK);
    et_res w = {0};
    IT_RC(c, dlock_wait_async(c, "s-fo", 30000, 10000, et_cb, &w, NULL), DLOCK_OK);
    TH_EQ_INT(etopo_until_int(c, m, "ZCARD", "dlock:{s-fo}:q", 1, 5000), 1);
    TH_EQ_INT(tt_wait_replica_acks(m, "sync-fo", 1, 5000), 0);

    g_etopo_max_us = 0;
    long long t0 = th_now_us();
    TH_EQ_INT(th_server_kill(m), 0);
    etopo_run(c, &w.done, 30000);
    printf("master killed: the waiter got '%s' after %.2f s (fence %" PRId64 " -> %" PRId64
           ", epoch %" PRId64 "): %s\n",
           "s-fo", (th_now_us() - t0) / 1e6, hi.fence, w.fence, w.fence >> 40,
           w.done ? dlock_err_name(w.status) : "not done");
    ET_STATUS(w, DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 30000000);
    TH_CHECK(w.fence > hi.fence); /* the new master's fences are above */
    TH_EQ_INT(th_server_int(r, "EXISTS %s", "dlock:{s-fo}"), 1);
    /* The keepalive went on on the new master. */
    TH_CHECK(etopo_until_int(c, r, "PTTL", "dlock:{s-ka}", 14000, 5000) >= 14000);
    TH_EQ_INT(lost, 0);
    TH_EQ_INT(dlock_held(k.lock), 1);
    etopo_check_turns("sentinel failover");

    et_res r1 = {0}, r2 = {0};
    IT_RC(c, dlock_release_async(w.lock, et_cb, &r1, NULL), DLOCK_OK);
    IT_RC(c, dlock_release_async(k.lock, et_cb, &r2, NULL), DLOCK_OK);
    etopo_run(c, &r1.done, 5000);
    etopo_run(c, &r2.done, 5000);
    ET_STATUS(r1, DLOCK_OK);
    ET_STATUS(r2, DLOCK_OK);
    TH_EQ_INT(th_server_int(r, "EXISTS %s", "dlock:{s-ka}"), 0);
    dlock_lock_free(w.lock);
    dlock_lock_free(k.lock);
    dlock_lock_free(hl);
    dlock_client_free(c);
    dlock_client_free(h);
}

int main(void) {
    th_test_init(100);
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    every_op(g);
    failover(g);
    tt_sentinels_free(g);
    IT_PASS("test_engine_sentinel");
    return 0;
}

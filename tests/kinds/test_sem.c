/* test_sem.c - leased semaphores on one server:
 *   1. N permits, each with its own token and a rising fence; the N+1st is
 *      busy; a release admits one; holders listed with their metadata;
 *      extend, held and info per permit; the keys end with the last lease;
 *   2. a name is one kind at a time (WRONGTYPE both ways);
 *   3. a holder killed with SIGKILL: its permit returns when its lease
 *      ends, to a waiter that was queued for it;
 *   4. FIFO: queued waiters (separate processes) are admitted in the order
 *      they queued, each woken by a release (no polling: well under the
 *      2 s slice per hand-over);
 *   5. keepalive of one permit keeps it; another permit's lease ends;
 *   6. N changed while permits are held: nobody is revoked, admission
 *      follows the asker's N;
 *   7. 8 processes contend for 3 permits: the history checker sees never
 *      more than 3 holders and fences rising, with all 3 used at once;
 *   8. async: try, a wait woken by a release, a cancelled wait (leaves the
 *      queue), keepalive as engine timers, release;
 *   9. the retrying calls of each kind (dlock_*_acquire), and a Redlock URL
 *      refused for semaphores (DLOCK_ENOTSUP; multi-locks on Redlock:
 *      test_redlock.c, rw locks: test_redlock_rw.c);
 *  10. a release after the lease ended is ENOTHELD: alone (the key went
 *      with it), among live holders (not pruned yet when it comes), and
 *      when another kind took the name meanwhile.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etest.h"
#include "ktest.h"

static th_server *S;

static dlock_client *client(void) {
    dlock_options o;
    it_options(&o, 1000, 2000);
    o.owner_label = "semtest";
    return it_client(th_server_url(S), &o);
}

static long long zcard(const char *key) { return th_server_int(S, "ZCARD %s", key); }

/* Polls cond until true or ms pass. */
#define WAIT_FOR(cond, ms)                                                                 \
    do {                                                                                   \
        long long wf_end_ = th_now_us() + (long long)(ms) * 1000;                          \
        while (!(cond) && th_now_us() < wf_end_)                                           \
            th_sleep_ms(5);                                                                \
        TH_CHECK(cond);                                                                    \
    } while (0)

/* How many of key's holders have a lease that ended by the server's clock. */
static long long ended_leases(const char *key) {
    redisReply *t = th_server_cmd(S, "TIME");
    TH_CHECK(t != NULL && t->type == REDIS_REPLY_ARRAY && t->elements == 2);
    long long now_ms = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    return th_server_int(S, "ZCOUNT %s -inf %lld", key, now_ms);
}

static void permits(void) {
    dlock_client *c = client();
    dlock_lock *l[4];
    int64_t last = 0;
    for (int i = 0; i < 3; i++) {
        IT_RC(c, dlock_sem_try_acquire(c, "pool", 3, 5000, &l[i]), DLOCK_OK);
        TH_EQ_INT(dlock_lock_kind(l[i]), DLOCK_KIND_SEMAPHORE);
        dlock_info in;
        IT_RC(c, dlock_info_get(l[i], &in), DLOCK_OK);
        TH_CHECK(in.held && in.fence > last);
        TH_EQ_STR(in.name, "pool");
        last = in.fence;
    }
    IT_RC(c, dlock_sem_try_acquire(c, "pool", 3, 5000, &l[3]), DLOCK_EBUSY);
    TH_CHECK(l[3] == NULL);
    TH_EQ_INT(zcard("dlock:{pool}"), 3);

    dlock_holders *h;
    IT_RC(c, dlock_holders_get(c, "pool", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_kind(h), DLOCK_KIND_SEMAPHORE);
    TH_EQ_INT(dlock_holders_count(h), 3);
    TH_EQ_INT(dlock_holders_total(h), 3);
    TH_EQ_INT(dlock_holders_permits(h), 3);
    TH_EQ_INT(dlock_holders_last_fence(h), last);
    for (int i = 0; i < 3; i++) {
        const dlock_holder *x = dlock_holders_at(h, i);
        TH_CHECK(x != NULL && x->locked && x->pttl_ms > 4000 && x->pttl_ms <= 5000);
        TH_EQ_STR(x->label, "semtest");
        TH_EQ_INT(x->pid, getpid());
        TH_CHECK(x->fence >= 1 && strlen(x->token) == 32 && x->acquired_at > 0);
    }
    TH_CHECK(dlock_holders_at(h, 3) == NULL);
    dlock_holders_free(h);

    /* Per permit: extend one, release another, and a new one gets in. */
    IT_RC(c, dlock_extend(l[0], 20000), DLOCK_OK);
    dlock_info in0;
    dlock_info_get(l[0], &in0);
    redisReply *r = th_server_cmd(S, "ZSCORE %s %s", "dlock:{pool}", in0.token);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    TH_CHECK(th_server_int(S, "PTTL %s", "dlock:{pool}") > 15000);
    IT_RC(c, dlock_release(l[1]), DLOCK_OK);
    TH_CHECK(!dlock_held(l[1]));
    IT_RC(c, dlock_release(l[1]), DLOCK_ENOTHELD);
    IT_RC(c, dlock_sem_try_acquire(c, "pool", 3, 5000, &l[3]), DLOCK_OK);
    dlock_info in3;
    dlock_info_get(l[3], &in3);
    TH_CHECK(in3.fence > last);
    for (int i = 0; i < 4; i++)
        if (i != 1)
            IT_RC(c, dlock_release(l[i]), DLOCK_OK);
    /* Nothing stays: the holders' keys went with the last permit. */
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{pool}"), 0);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{pool}:h"), 0);
    r = th_server_cmd(S, "GET %s", "dlock:{pool}:fence");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && atoll(r->str) == in3.fence);
    freeReplyObject(r);
    for (int i = 0; i < 4; i++)
        dlock_lock_free(l[i]);
    /* Bad input. */
    dlock_lock *x = NULL;
    IT_RC(c, dlock_sem_try_acquire(c, "pool", 0, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_sem_try_acquire(c, "pool", DLOCK_PERMITS_MAX + 1, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_sem_try_acquire(c, "", 1, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_sem_try_acquire(c, "pool", 1, 0, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_sem_wait(c, "pool", 1, -1, 1000, &x), DLOCK_EINVAL);
    dlock_client_free(c);
}

static void kinds_refuse(void) {
    dlock_client *c = client();
    dlock_lock *m, *s, *x = NULL;
    IT_RC(c, dlock_try_acquire(c, "one-kind", 5000, &m), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "one-kind", 2, 5000, &x), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGTYPE);
    IT_RC(c, dlock_rw_try_acquire(c, "one-kind", DLOCK_SHARED, 5000, &x), DLOCK_ESERVER);
    IT_RC(c, dlock_release(m), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "one-kind", 2, 5000, &s), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "one-kind", 5000, &x), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGTYPE);
    IT_RC(c, dlock_rw_try_acquire(c, "one-kind", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_WRONGTYPE);
    TH_CHECK(strstr(dlock_client_errstr(c), "semaphore") != NULL);
    dlock_holders *h;
    IT_RC(c, dlock_holders_get(c, "one-kind", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_count(h), 1);
    dlock_holders_free(h);
    IT_RC(c, dlock_release(s), DLOCK_OK);
    /* Free again: any kind may take it. */
    IT_RC(c, dlock_try_acquire(c, "one-kind", 5000, &x), DLOCK_OK);
    IT_RC(c, dlock_holders_get(c, "one-kind", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_kind(h), DLOCK_KIND_MUTEX);
    TH_EQ_INT(dlock_holders_count(h), 1);
    dlock_holders_free(h);
    IT_RC(c, dlock_release(x), DLOCK_OK);
    dlock_lock_free(x);
    dlock_lock_free(m);
    dlock_lock_free(s);
    dlock_client_free(c);
}

/* ---- 3: a killed holder ---- */

static int hold_forever(void *arg) {
    (void)arg;
    dlock_client *c = client();
    dlock_lock *l;
    if (dlock_sem_try_acquire(c, "crash", 1, 1500, &l) != DLOCK_OK)
        return 1;
    for (;;)
        pause();
}

static void killed_holder(void) {
    pid_t pid = th_spawn(hold_forever, NULL);
    TH_CHECK(pid > 0);
    WAIT_FOR(zcard("dlock:{crash}") == 1, 5000);
    long long t0 = th_now_us();
    TH_CHECK(kill(pid, SIGKILL) == 0);
    TH_EQ_INT(th_wait(pid, 5000), 128 + SIGKILL);
    dlock_client *c = client();
    dlock_lock *l = NULL;
    IT_RC(c, dlock_sem_wait(c, "crash", 1, 5000, 3000, &l), DLOCK_OK);
    long long ms = (th_now_us() - t0) / 1000;
    printf("killed holder's permit returned after %lld ms (lease 1500 ms)\n", ms);
    TH_CHECK(ms < 2500);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
}

/* ---- 4: FIFO ---- */

static int fifo_waiter(void *arg) {
    int idx = (int)(intptr_t)arg;
    dlock_client *c = client();
    dlock_lock *l;
    int rc = dlock_sem_wait(c, "fifo", 1, 10000, 5000, &l);
    if (rc != DLOCK_OK)
        return 2;
    char v[16];
    snprintf(v, sizeof v, "%d", idx);
    redisReply *r = th_server_cmd(S, "RPUSH %s %s", "fifo-order", v);
    freeReplyObject(r);
    th_sleep_ms(30);
    rc = dlock_release(l);
    dlock_lock_free(l);
    dlock_client_free(c);
    return rc == DLOCK_OK ? 0 : 3;
}

static void fifo(void) {
    enum { W = 5 };
    dlock_client *c = client();
    dlock_lock *h;
    IT_RC(c, dlock_sem_try_acquire(c, "fifo", 1, 10000, &h), DLOCK_OK);
    pid_t pid[W];
    for (int i = 0; i < W; i++) {
        pid[i] = th_spawn(fifo_waiter, (void *)(intptr_t)i);
        TH_CHECK(pid[i] > 0);
        WAIT_FOR(zcard("dlock:{fifo}:pq") == i + 1, 5000); /* queued in this order */
    }
    long long t0 = th_now_us();
    IT_RC(c, dlock_release(h), DLOCK_OK);
    for (int i = 0; i < W; i++)
        TH_EQ_INT(th_wait(pid[i], 10000), 0);
    long long ms = (th_now_us() - t0) / 1000;
    printf("%d FIFO hand-overs (30 ms holds) in %lld ms\n", W, ms);
    TH_CHECK(ms < 1500); /* a polling waiter would sleep up to 2 s per hand-over */
    for (int i = 0; i < W; i++) {
        redisReply *r = th_server_cmd(S, "LINDEX %s %d", "fifo-order", i);
        TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING && atoi(r->str) == i);
        freeReplyObject(r);
    }
    TH_EQ_INT(zcard("dlock:{fifo}:pq"), 0);
    dlock_lock_free(h);
    dlock_client_free(c);
}

/* ---- 5: keepalive per permit ---- */

static void keepalive(void) {
    dlock_client *c = client();
    dlock_lock *a, *b;
    IT_RC(c, dlock_sem_try_acquire(c, "ka", 2, 600, &a), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "ka", 2, 600, &b), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(a, 0, NULL, NULL), DLOCK_OK);
    th_sleep_ms(1500);
    TH_CHECK(dlock_held(a));
    TH_CHECK(!dlock_held(b));
    TH_EQ_INT(zcard("dlock:{ka}"), 1);
    IT_RC(c, dlock_release(b), DLOCK_ENOTHELD);
    IT_RC(c, dlock_release(a), DLOCK_OK);
    dlock_lock_free(a);
    dlock_lock_free(b);
    dlock_client_free(c);
}

/* ---- 6: N changed while held ---- */

static void change_n(void) {
    dlock_client *c = client();
    dlock_lock *l[3], *x = NULL, *y = NULL;
    for (int i = 0; i < 3; i++)
        IT_RC(c, dlock_sem_try_acquire(c, "resize", 3, 5000, &l[i]), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "resize", 2, 5000, &x), DLOCK_EBUSY); /* 3 >= 2 */
    IT_RC(c, dlock_sem_try_acquire(c, "resize", 5, 5000, &x), DLOCK_OK);   /* 3 < 5 */
    for (int i = 0; i < 3; i++)
        TH_CHECK(dlock_held(l[i])); /* nobody revoked */
    dlock_holders *h;
    IT_RC(c, dlock_holders_get(c, "resize", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_total(h), 4);
    TH_EQ_INT(dlock_holders_permits(h), 5);
    dlock_holders_free(h);
    IT_RC(c, dlock_release(l[0]), DLOCK_OK);
    IT_RC(c, dlock_release(l[1]), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "resize", 2, 5000, &y), DLOCK_EBUSY); /* 2 held */
    IT_RC(c, dlock_release(l[2]), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "resize", 2, 5000, &y), DLOCK_OK);
    IT_RC(c, dlock_release(x), DLOCK_OK);
    IT_RC(c, dlock_release(y), DLOCK_OK);
    for (int i = 0; i < 3; i++)
        dlock_lock_free(l[i]);
    dlock_lock_free(x);
    dlock_lock_free(y);
    dlock_client_free(c);
}

/* ---- 7: contention and history ---- */

#define PERMITS 3
static hist *H;

static int contender(int idx, void *arg) {
    (void)arg;
    dlock_client *c = client();
    srand((unsigned)(getpid() * 7919));
    long long end = th_now_us() + 4000000;
    int n = 0;
    while (th_now_us() < end) {
        dlock_lock *l;
        long long req = th_now_us();
        int rc = dlock_sem_wait(c, "contended", PERMITS, 10000, 3000, &l);
        if (rc != DLOCK_OK) {
            fprintf(stderr, "worker %d: %s: %s\n", idx, dlock_err_name(rc),
                    dlock_client_errstr(c));
            return 1;
        }
        long long start = th_now_us();
        dlock_info in;
        dlock_info_get(l, &in);
        long long last = kt_hold(l, start, rand() % 15);
        hist_rec r = {.fence = in.fence, .req_us = req, .start_us = start, .end_us = last,
                      .worker = idx, .limit = PERMITS};
        snprintf(r.name, sizeof r.name, "contended");
        hist_add_rec(H, &r);
        if (dlock_release(l) != DLOCK_OK)
            return 2;
        dlock_lock_free(l);
        n++;
    }
    printf("worker %d: %d permits\n", idx, n);
    dlock_client_free(c);
    return n > 0 ? 0 : 3;
}

static void contention(void) {
    H = hist_new(100000);
    TH_EQ_INT(th_run_workers(8, contender, NULL, 60), 0);
    hist_result res;
    TH_EQ_INT(hist_check(H, "8 workers, 3 permits", &res), 0);
    printf("most holders at once: %lld\n", (long long)res.max_holders);
    TH_EQ_INT(res.max_holders, PERMITS);
    TH_CHECK(res.acquisitions > 100);
    hist_free(H);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{contended}"), 0);
}

/* ---- 8: async ---- */

static void async_api(void) {
    dlock_client *a = client();
    et_res t[2] = {{0}}, w = {0}, k = {0};
    for (int i = 0; i < 2; i++) {
        IT_RC(a, dlock_sem_try_acquire_async(a, "apool", 2, 600, et_cb, &t[i], NULL), DLOCK_OK);
        et_run_until(a, &t[i].done, 3000);
        ET_STATUS(t[i], DLOCK_OK);
        TH_EQ_INT(dlock_lock_kind(t[i].lock), DLOCK_KIND_SEMAPHORE);
    }
    uint64_t kid;
    IT_RC(a, dlock_sem_wait_async(a, "apool", 2, 8000, 5000, et_cb, &w, NULL), DLOCK_OK);
    IT_RC(a, dlock_sem_wait_async(a, "apool", 2, 8000, 5000, et_cb, &k, &kid), DLOCK_OK);
    /* Both permits kept alive by engine timers, past their 600 ms lease. */
    IT_RC(a, dlock_keepalive_start(t[0].lock, 0, NULL, NULL), DLOCK_OK);
    IT_RC(a, dlock_keepalive_start(t[1].lock, 0, NULL, NULL), DLOCK_OK);
    et_run_until(a, &w.done, 1500);
    TH_CHECK(!w.done && dlock_held(t[0].lock) && dlock_held(t[1].lock));
    TH_EQ_INT(zcard("dlock:{apool}:pq"), 2);
    IT_RC(a, dlock_op_cancel(a, kid), DLOCK_OK);
    et_run_until(a, &k.done, 3000);
    ET_STATUS(k, DLOCK_ECANCELED);
    long long end = th_now_us() + 3000000;
    while (zcard("dlock:{apool}:pq") != 1 && th_now_us() < end)
        dlock_poll_once(a, 10);
    TH_EQ_INT(zcard("dlock:{apool}:pq"), 1);
    long long t0 = th_now_us();
    et_res rel = {0};
    IT_RC(a, dlock_release_async(t[0].lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(a, &w.done, 3000);
    ET_STATUS(w, DLOCK_OK);
    printf("async waiter admitted %lld ms after a release\n", (th_now_us() - t0) / 1000);
    TH_CHECK((th_now_us() - t0) / 1000 < 500);
    et_run_until(a, &rel.done, 3000);
    ET_STATUS(rel, DLOCK_OK);
    dlock_keepalive_stop(t[1].lock);
    IT_RC(a, dlock_release(t[1].lock), DLOCK_OK);
    IT_RC(a, dlock_release(w.lock), DLOCK_OK);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{apool}"), 0);
    for (int i = 0; i < 2; i++)
        dlock_lock_free(t[i].lock);
    dlock_lock_free(w.lock);
    dlock_client_free(a);
}

/* ---- 9: retries, Redlock ---- */

static void retries_redlock(void) {
    dlock_options o;
    it_options(&o, 1000, 2000);
    o.retry_count = 2;
    o.retry_delay_ms = 10;
    o.retry_max_delay_ms = 20;
    dlock_client *c = it_client(th_server_url(S), &o);
    dlock_lock *a, *b, *m, *x = NULL;
    IT_RC(c, dlock_sem_acquire(c, "retry", 1, 5000, &a), DLOCK_OK);
    IT_RC(c, dlock_sem_acquire(c, "retry", 1, 5000, &x), DLOCK_EBUSY);
    IT_RC(c, dlock_rw_acquire(c, "retry-rw", DLOCK_EXCLUSIVE, 5000, &b), DLOCK_OK);
    IT_RC(c, dlock_rw_acquire(c, "retry-rw", DLOCK_SHARED, 5000, &x), DLOCK_EBUSY);
    const char *names[] = {"retry-m1", "retry-m2"};
    IT_RC(c, dlock_multi_acquire(c, names, 2, 5000, &m), DLOCK_OK);
    IT_RC(c, dlock_multi_acquire(c, names + 1, 1, 5000, &x), DLOCK_EBUSY);
    TH_EQ_INT(zcard("dlock:{retry}:pq"), 0); /* retries leave no queue entry */
    dlock_lock *l[3] = {a, b, m};
    for (int i = 0; i < 3; i++) {
        IT_RC(c, dlock_release(l[i]), DLOCK_OK);
        dlock_lock_free(l[i]);
    }
    dlock_client_free(c);

    dlock_client *r = it_client("redis://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", &o);
    dlock_holders *h = NULL;
    IT_RC(r, dlock_sem_try_acquire(r, "x", 2, 5000, &x), DLOCK_ENOTSUP);
    IT_RC(r, dlock_sem_wait(r, "x", 1, 100, 5000, &x), DLOCK_ENOTSUP);
    TH_CHECK(x == NULL && h == NULL);
    dlock_client_free(r);
}

/* ---- 10: a release after the lease ended ---- */

/* The uncontended release skips pruning for a sole holder whose key still
 * exists (its lease lasts: the keys expire with the latest lease); these
 * are the cases around it. */
static void ended_release(void) {
    dlock_client *c = client();
    dlock_lock *a, *b, *m;
    IT_RC(c, dlock_sem_try_acquire(c, "ended", 2, 100, &a), DLOCK_OK);
    WAIT_FOR(th_server_int(S, "EXISTS %s", "dlock:{ended}") == 0, 2000);
    IT_RC(c, dlock_release(a), DLOCK_ENOTHELD);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{ended}:h"), 0);
    dlock_lock_free(a);
    /* Among live holders: the ended lease is still listed when it comes. */
    IT_RC(c, dlock_sem_try_acquire(c, "ended", 2, 100, &a), DLOCK_OK);
    IT_RC(c, dlock_sem_try_acquire(c, "ended", 2, 10000, &b), DLOCK_OK);
    WAIT_FOR(ended_leases("dlock:{ended}") == 1, 2000);
    TH_EQ_INT(zcard("dlock:{ended}"), 2);
    IT_RC(c, dlock_release(a), DLOCK_ENOTHELD);
    TH_EQ_INT(zcard("dlock:{ended}"), 1);
    TH_CHECK(dlock_held(b));
    IT_RC(c, dlock_release(b), DLOCK_OK);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{ended}"), 0);
    TH_EQ_INT(th_server_int(S, "EXISTS %s", "dlock:{ended}:h"), 0);
    dlock_lock_free(a);
    dlock_lock_free(b);
    /* A mutex took the name after a reader's lease ended. */
    IT_RC(c, dlock_rw_try_acquire(c, "ended", DLOCK_SHARED, 100, &a), DLOCK_OK);
    WAIT_FOR(th_server_int(S, "EXISTS %s", "dlock:{ended}") == 0, 2000);
    IT_RC(c, dlock_try_acquire(c, "ended", 5000, &m), DLOCK_OK);
    IT_RC(c, dlock_release(a), DLOCK_ENOTHELD);
    IT_RC(c, dlock_release(m), DLOCK_OK);
    dlock_lock_free(a);
    dlock_lock_free(m);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(100);
    S = th_server_start(NULL);
    TH_CHECK(S != NULL);
    permits();
    kinds_refuse();
    killed_holder();
    fifo();
    keepalive();
    change_n();
    contention();
    async_api();
    retries_redlock();
    ended_release();
    th_server_free(S);
    IT_PASS("test_sem");
    return 0;
}

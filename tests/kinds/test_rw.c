/* test_rw.c - read-write locks on one server:
 *   1. readers share, a writer excludes; every exclusive grant raises the
 *      fence, readers get the current one; dlock_lock_shared; holders;
 *   2. batch admission (async API): with a writer holding, readers R1..R3,
 *      a writer W2 and a reader R4 queue in that order; the release admits
 *      R1..R3 together (woken at once), W2 waits for them, and R4 waits
 *      behind W2 although readers hold;
 *   3. a writer is not starved by a stream of overlapping readers (4
 *      processes that re-take the lock at once): it gets in within a few
 *      reader holds;
 *   4. 6 reader and 2 writer processes: the history checker sees no writer
 *      with anyone else, readers together, and fences in order.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etest.h"
#include "ktest.h"

static th_server *S;

static dlock_client *client(void) {
    dlock_options o;
    it_options(&o, 1000, 2000);
    return it_client(th_server_url(S), &o);
}

static long long zcard(const char *key) { return th_server_int(S, "ZCARD %s", key); }

static int64_t fence_of(const dlock_lock *l) {
    dlock_info in;
    dlock_info_get(l, &in);
    return in.fence;
}

static void basics(void) {
    dlock_client *c = client();
    dlock_lock *r1, *r2, *w, *x = NULL;
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_SHARED, 5000, &r1), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_SHARED, 5000, &r2), DLOCK_OK);
    TH_CHECK(dlock_lock_shared(r1) && dlock_lock_kind(r1) == DLOCK_KIND_RW);
    TH_EQ_INT(fence_of(r1), 0); /* no writer yet */
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    dlock_holders *h;
    IT_RC(c, dlock_holders_get(c, "doc", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_kind(h), DLOCK_KIND_RW);
    TH_EQ_INT(dlock_holders_count(h), 2);
    TH_CHECK(dlock_holders_shared(h, 0) && dlock_holders_shared(h, 1));
    dlock_holders_free(h);
    IT_RC(c, dlock_release(r1), DLOCK_OK);
    IT_RC(c, dlock_release(r2), DLOCK_OK);
    dlock_lock_free(r1);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_EXCLUSIVE, 5000, &w), DLOCK_OK);
    TH_CHECK(!dlock_lock_shared(w));
    int64_t f1 = fence_of(w);
    TH_CHECK(f1 >= 1);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_SHARED, 5000, &x), DLOCK_EBUSY);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_EXCLUSIVE, 5000, &x), DLOCK_EBUSY);
    IT_RC(c, dlock_holders_get(c, "doc", &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_count(h), 1);
    TH_CHECK(!dlock_holders_shared(h, 0));
    dlock_holders_free(h);
    IT_RC(c, dlock_extend(w, 8000), DLOCK_OK);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", DLOCK_SHARED, 5000, &r1), DLOCK_OK);
    TH_EQ_INT(fence_of(r1), f1); /* readers learn the last writer's fence */
    IT_RC(c, dlock_release(r1), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", 0, 5000, &x), DLOCK_EINVAL);
    IT_RC(c, dlock_rw_try_acquire(c, "doc", 3, 5000, &x), DLOCK_EINVAL);
    dlock_lock_free(r1);
    dlock_lock_free(r2);
    dlock_lock_free(w);
    dlock_client_free(c);
}

/* ---- 2: batch admission, async ---- */

static void queue_one(dlock_client *a, int mode, et_res *r, int n) {
    IT_RC(a, dlock_rw_wait_async(a, "batch", mode, 10000, 5000, et_cb, r, NULL), DLOCK_OK);
    long long end = th_now_us() + 3000000;
    while (zcard("dlock:{batch}:pq") < n && th_now_us() < end)
        dlock_poll_once(a, 10);
    TH_EQ_INT(zcard("dlock:{batch}:pq"), n);
}

static void release_async(dlock_client *a, dlock_lock *l) {
    et_res r = {0};
    IT_RC(a, dlock_release_async(l, et_cb, &r, NULL), DLOCK_OK);
    et_run_until(a, &r.done, 3000);
    ET_STATUS(r, DLOCK_OK);
    dlock_lock_free(l);
}

static void batch(void) {
    dlock_client *c = client(), *a = client();
    dlock_lock *w1;
    IT_RC(c, dlock_rw_try_acquire(c, "batch", DLOCK_EXCLUSIVE, 10000, &w1), DLOCK_OK);
    int64_t f1 = fence_of(w1);
    et_res r[3] = {{0}}, w2 = {0}, r4 = {0};
    for (int i = 0; i < 3; i++)
        queue_one(a, DLOCK_SHARED, &r[i], i + 1);
    queue_one(a, DLOCK_EXCLUSIVE, &w2, 4);
    queue_one(a, DLOCK_SHARED, &r4, 5);
    long long t0 = th_now_us();
    IT_RC(c, dlock_release(w1), DLOCK_OK);
    for (int i = 0; i < 3; i++) {
        et_run_until(a, &r[i].done, 3000);
        ET_STATUS(r[i], DLOCK_OK);
        TH_EQ_INT(r[i].fence, f1);
        TH_CHECK(dlock_lock_shared(r[i].lock));
    }
    long long ms = (th_now_us() - t0) / 1000;
    printf("3 queued readers admitted together %lld ms after the writer's release\n", ms);
    TH_CHECK(ms < 500);
    et_run_until(a, &w2.done, 300);
    TH_CHECK(!w2.done && !r4.done); /* R4 waits behind W2 */
    TH_EQ_INT(zcard("dlock:{batch}"), 3);
    for (int i = 0; i < 2; i++)
        release_async(a, r[i].lock);
    et_run_until(a, &w2.done, 200);
    TH_CHECK(!w2.done);
    release_async(a, r[2].lock);
    et_run_until(a, &w2.done, 3000);
    ET_STATUS(w2, DLOCK_OK);
    TH_EQ_INT(w2.fence, f1 + 1);
    TH_CHECK(!r4.done);
    release_async(a, w2.lock);
    et_run_until(a, &r4.done, 3000);
    ET_STATUS(r4, DLOCK_OK);
    TH_EQ_INT(r4.fence, f1 + 1);
    release_async(a, r4.lock);
    TH_EQ_INT(zcard("dlock:{batch}:pq"), 0);
    dlock_lock_free(w1);
    dlock_client_free(a);
    dlock_client_free(c);
}

/* ---- 3: no writer starvation ---- */

static int reader_stream(int idx, void *arg) {
    (void)idx;
    (void)arg;
    dlock_client *c = client();
    long long end = th_now_us() + 3000000;
    while (th_now_us() < end) {
        dlock_lock *l;
        if (dlock_rw_wait(c, "stream", DLOCK_SHARED, 10000, 5000, &l) != DLOCK_OK)
            return 1;
        th_sleep_ms(100);
        dlock_release(l);
        dlock_lock_free(l);
    }
    dlock_client_free(c);
    return 0;
}

static int writer_once(void *arg) {
    (void)arg;
    dlock_client *c = client();
    th_sleep_ms(1000); /* the readers overlap by now */
    long long t0 = th_now_us();
    dlock_lock *l;
    if (dlock_rw_wait(c, "stream", DLOCK_EXCLUSIVE, 10000, 5000, &l) != DLOCK_OK)
        return 1;
    long long ms = (th_now_us() - t0) / 1000;
    printf("writer waited %lld ms among 4 readers holding 100 ms each\n", ms);
    dlock_release(l);
    dlock_lock_free(l);
    dlock_client_free(c);
    return ms < 400 ? 0 : 2;
}

static int stream_worker(int idx, void *arg) {
    return idx == 0 ? writer_once(arg) : reader_stream(idx, arg);
}

/* ---- 4: history ---- */

static hist *H;

static int rw_worker(int idx, void *arg) {
    (void)arg;
    dlock_client *c = client();
    int writer = idx < 2;
    srand((unsigned)(getpid() * 31));
    long long end = th_now_us() + 4000000;
    while (th_now_us() < end) {
        dlock_lock *l;
        long long req = th_now_us();
        int rc = dlock_rw_wait(c, "hist", writer ? DLOCK_EXCLUSIVE : DLOCK_SHARED, 10000, 3000,
                               &l);
        if (rc != DLOCK_OK)
            return 1;
        long long start = th_now_us(), last = kt_hold(l, start, rand() % 10);
        hist_rec r = {.fence = fence_of(l), .req_us = req, .start_us = start, .end_us = last,
                      .worker = idx, .limit = writer ? 1 : HIST_ANY, .shared = !writer};
        snprintf(r.name, sizeof r.name, "hist");
        hist_add_rec(H, &r);
        dlock_release(l);
        dlock_lock_free(l);
    }
    dlock_client_free(c);
    return 0;
}

int main(void) {
    th_test_init(100);
    S = th_server_start(NULL);
    TH_CHECK(S != NULL);
    basics();
    batch();
    TH_EQ_INT(th_run_workers(5, stream_worker, NULL, 30), 0);
    H = hist_new(100000);
    TH_EQ_INT(th_run_workers(8, rw_worker, NULL, 60), 0);
    hist_result res;
    TH_EQ_INT(hist_check(H, "6 readers, 2 writers", &res), 0);
    printf("most holders at once: %lld\n", (long long)res.max_holders);
    TH_CHECK(res.max_holders >= 2);
    hist_free(H);
    th_server_free(S);
    IT_PASS("test_rw");
    return 0;
}

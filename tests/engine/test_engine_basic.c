/* test_engine_basic.c - every async operation once, on one server and on a
 * Redlock set: results, statuses, the wait queue left empty, push wake-up,
 * cancellation, and a Sentinel URL whose sentinels are all down: the start
 * returns at once and the callback reports the failed discovery. */
#include "etest.h"

static dlock_client *g_c;

static et_res run_try(const char *name, int64_t ttl) {
    et_res r = {0};
    IT_RC(g_c, dlock_try_acquire_async(g_c, name, ttl, et_cb, &r, NULL), DLOCK_OK);
    TH_CHECK(!r.done); /* never called from the start */
    et_run_until(g_c, &r.done, 3000);
    TH_CHECK(r.done);
    return r;
}

static void basic_ops(th_server *s) {
    et_res a = run_try("basic", 5000);
    ET_STATUS(a, DLOCK_OK);
    TH_CHECK(a.lock != NULL && dlock_held(a.lock));
    TH_CHECK(a.fence >= 1);
    et_res b = run_try("basic", 5000);
    ET_STATUS(b, DLOCK_EBUSY);
    TH_CHECK(b.lock == NULL);

    et_res in = {0};
    IT_RC(g_c, dlock_inspect_async(g_c, "basic", et_cb, &in, NULL), DLOCK_OK);
    et_run_until(g_c, &in.done, 3000);
    ET_STATUS(in, DLOCK_OK);
    TH_CHECK(in.has_holder && in.holder.locked);
    dlock_info info;
    dlock_info_get(a.lock, &info);
    TH_EQ_STR(in.holder.token, info.token);
    TH_EQ_INT(in.holder.fence, a.fence);

    et_res ex = {0};
    IT_RC(g_c, dlock_extend_async(a.lock, 20000, et_cb, &ex, NULL), DLOCK_OK);
    et_run_until(g_c, &ex.done, 3000);
    ET_STATUS(ex, DLOCK_OK);
    TH_CHECK(th_server_int(s, "PTTL %s", "dlock:{basic}") > 15000);

    et_res rel = {0};
    IT_RC(g_c, dlock_release_async(a.lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(g_c, &rel.done, 3000);
    ET_STATUS(rel, DLOCK_OK);
    TH_CHECK(!dlock_held(a.lock));
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{basic}"), 0);
    IT_RC(g_c, dlock_release_async(a.lock, et_cb, &rel, NULL), DLOCK_ENOTHELD);
    dlock_lock_free(a.lock);

    /* Bad input: an error at once, and no callback. */
    et_res bad = {0};
    IT_RC(g_c, dlock_try_acquire_async(g_c, "", 1000, et_cb, &bad, NULL), DLOCK_EINVAL);
    IT_RC(g_c, dlock_try_acquire_async(g_c, "x", 0, et_cb, &bad, NULL), DLOCK_EINVAL);
    IT_RC(g_c, dlock_try_acquire_async(g_c, "x", 1000, NULL, &bad, NULL), DLOCK_EINVAL);
    IT_RC(g_c, dlock_wait_async(g_c, "x", -1, 1000, et_cb, &bad, NULL), DLOCK_EINVAL);
    IT_RC(g_c, dlock_op_cancel(g_c, 987654), DLOCK_EINVAL);
    TH_EQ_INT(dlock_poll_run(g_c, 200), 0);
    TH_CHECK(!bad.done);
}

/* A waiter is woken by the release (no polling) and gets the next fence. */
static void push_wake(th_server *s, dlock_client *blocking) {
    dlock_lock *h = NULL;
    IT_RC(blocking, dlock_acquire(blocking, "wake", 10000, &h), DLOCK_OK);
    dlock_info hi;
    dlock_info_get(h, &hi);
    et_res w = {0};
    IT_RC(g_c, dlock_wait_async(g_c, "wake", 8000, 5000, et_cb, &w, NULL), DLOCK_OK);
    et_run_until(g_c, &w.done, 300);
    TH_CHECK(!w.done);
    TH_EQ_INT(th_server_int(s, "ZCARD %s", "dlock:{wake}:q"), 1);
    long long t0 = th_now_us();
    IT_RC(blocking, dlock_release(h), DLOCK_OK);
    et_run_until(g_c, &w.done, 3000);
    ET_STATUS(w, DLOCK_OK);
    long long ms = (w.at_us - t0) / 1000;
    printf("push wake-up after release: %lld ms\n", ms);
    TH_CHECK(ms < 500); /* the slice is 2 s: a poll would not be this quick */
    TH_EQ_INT(w.fence, hi.fence + 1);
    TH_CHECK(dlock_held(w.lock));
    IT_RC(blocking, dlock_release(w.lock), DLOCK_OK);
    dlock_lock_free(w.lock);
    dlock_lock_free(h);
}

/* A wait that times out, and one that is cancelled, leave the queue empty
 * and are never handed the lock afterwards. */
static void timeout_and_cancel(th_server *s, dlock_client *blocking) {
    dlock_lock *h = NULL;
    IT_RC(blocking, dlock_acquire(blocking, "tc", 10000, &h), DLOCK_OK);
    et_res t = {0}, k = {0};
    long long t0 = th_now_us();
    IT_RC(g_c, dlock_wait_async(g_c, "tc", 300, 5000, et_cb, &t, NULL), DLOCK_OK);
    uint64_t kid = 0;
    IT_RC(g_c, dlock_wait_async(g_c, "tc", 8000, 5000, et_cb, &k, &kid), DLOCK_OK);
    et_run_until(g_c, &t.done, 3000);
    ET_STATUS(t, DLOCK_ETIMEDOUT);
    long long ms = (t.at_us - t0) / 1000;
    TH_CHECK(ms >= 290 && ms < 1300);
    TH_CHECK(!k.done);
    IT_RC(g_c, dlock_op_cancel(g_c, kid), DLOCK_OK);
    et_run_until(g_c, &k.done, 3000);
    ET_STATUS(k, DLOCK_ECANCELED);
    TH_EQ_INT(dlock_poll_run(g_c, 3000), 0); /* the clean-up finishes */
    TH_EQ_INT(th_server_int(s, "ZCARD %s", "dlock:{tc}:q"), 0);
    TH_EQ_INT(th_server_int(s, "HLEN %s", "dlock:{tc}:qi"), 0);
    IT_RC(blocking, dlock_release(h), DLOCK_OK);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{tc}"), 0); /* nobody was handed it */
    IT_RC(g_c, dlock_op_cancel(g_c, kid), DLOCK_EINVAL);       /* finished */
    dlock_lock_free(h);
}

static void redlock(void) {
    th_server *r[3];
    char url[256];
    for (int i = 0; i < 3; i++)
        TH_CHECK((r[i] = th_server_start(NULL)) != NULL);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(r[0]), th_server_port(r[1]), th_server_port(r[2]));
    dlock_client *c = it_client(url, NULL);
    dlock_client *keep = g_c;
    g_c = c;
    et_res a = run_try("rl", 5000);
    ET_STATUS(a, DLOCK_OK);
    TH_CHECK(a.fence >= 1);
    et_res b = run_try("rl", 5000);
    ET_STATUS(b, DLOCK_EBUSY);
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(th_server_int(r[i], "EXISTS %s", "dlock:{rl}"), 1);
    /* A waiter polls on Redlock, and gets it once released. */
    et_res w = {0}, rel = {0};
    IT_RC(c, dlock_wait_async(c, "rl", 5000, 5000, et_cb, &w, NULL), DLOCK_OK);
    IT_RC(c, dlock_release_async(a.lock, et_cb, &rel, NULL), DLOCK_OK);
    et_run_until(c, &w.done, 5000);
    ET_STATUS(rel, DLOCK_OK);
    ET_STATUS(w, DLOCK_OK);
    TH_CHECK(w.fence > a.fence);
    dlock_lock_free(a.lock);
    dlock_lock_free(w.lock);
    g_c = keep;
    dlock_client_free(c);
    for (int i = 0; i < 3; i++)
        th_server_free(r[i]);
}

static void no_sentinel(void) {
    dlock_client *c = it_client("redis-sentinel://127.0.0.1:1/m", NULL);
    et_res r = {0};
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire_async(c, "x", 1000, et_cb, &r, NULL), DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 50000); /* the start does not wait for discovery */
    TH_CHECK(dlock_client_fd(c) >= 0);
    et_run_until(c, &r.done, 5000);
    ET_STATUS(r, DLOCK_EIO);
    if (strstr(r.detail, "sentinel: no master 'm' found") == NULL)
        TH_FAIL("detail: %s", r.detail);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(100);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    g_c = it_client(th_server_url(s), NULL);
    dlock_client *blocking = it_client(th_server_url(s), NULL);
    basic_ops(s);
    push_wake(s, blocking);
    timeout_and_cancel(s, blocking);
    redlock();
    no_sentinel();
    dlock_client_free(blocking);
    dlock_client_free(g_c);
    th_server_free(s);
    IT_PASS("test_engine_basic");
    return 0;
}

/* test_client_free.c - dlock_client_free with handles still live: they are
 * orphaned, not left dangling. For a lock taken by a blocking call and one
 * taken through the engine, each with and without keepalive: after the
 * client is freed, dlock_held is 0, dlock_info_get still describes the
 * handle, release / extend / keepalive / the async calls return
 * DLOCK_EINVAL, dlock_lock_free frees it, on_lost never runs, and the lease
 * is left to run out by its TTL. Under AddressSanitizer any use of the
 * freed client fails the test. Also: async operations in flight are
 * dropped without their callbacks, and handles freed before the client
 * leave its list. */
#include "dlock/adapters/poll.h"
#include "itest.h"

#define TTL 400

static int g_lost, g_cb;

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l, (void)status, (void)ud;
    g_lost++;
}

static void on_done(const dlock_result *r, void *ud) {
    (void)ud;
    g_cb++;
    if (r->status == DLOCK_OK && r->lock != NULL && ud != NULL)
        *(dlock_lock **)ud = r->lock;
}

/* PTTL of the lock's key: > 0 while the lease is on the server, -2 once
 * gone. */
static long long pttl(th_server *s, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(s, "PTTL %s", key);
}

/* Take `name` through the engine (async), driving the loop until done. */
static dlock_lock *acquire_async(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    int before = g_cb;
    IT_RC(c, dlock_try_acquire_async(c, name, TTL, on_done, &l, NULL), DLOCK_OK);
    long long end = th_now_us() + 5000000;
    while (g_cb == before && th_now_us() < end)
        dlock_poll_once(c, 50);
    TH_CHECK(l != NULL);
    return l;
}

/* Everything a program may still do with an orphaned handle. */
static void check_orphan(dlock_lock *l, const char *name) {
    TH_EQ_INT(dlock_held(l), 0);
    dlock_info in;
    TH_EQ_INT(dlock_info_get(l, &in), DLOCK_OK);
    TH_EQ_STR(in.name, name);
    TH_EQ_INT(strlen(in.token), 32);
    TH_EQ_INT(in.held, 0);
    TH_EQ_INT(dlock_release(l), DLOCK_EINVAL);
    TH_EQ_INT(dlock_extend(l, 1000), DLOCK_EINVAL);
    TH_EQ_INT(dlock_keepalive_start(l, 100, on_lost, NULL), DLOCK_EINVAL);
    dlock_keepalive_stop(l);
    TH_EQ_INT(dlock_release_async(l, on_done, NULL, NULL), DLOCK_EINVAL);
    TH_EQ_INT(dlock_extend_async(l, 1000, on_done, NULL, NULL), DLOCK_EINVAL);
}

/* One case: acquire (blocking or async), maybe keep alive, free the client
 * first, then use and free the handle. */
static void one_case(th_server *s, int async, int keepalive) {
    char name[32];
    snprintf(name, sizeof name, "free-%s-%s", async ? "async" : "block",
             keepalive ? "ka" : "plain");
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_lock *l = NULL;
    if (async)
        l = acquire_async(c, name);
    else
        IT_RC(c, dlock_try_acquire(c, name, TTL, &l), DLOCK_OK);
    if (keepalive) {
        IT_RC(c, dlock_keepalive_start(l, 50, on_lost, NULL), DLOCK_OK);
        /* Kept alive past its first ttl (the engine's timers run in the loop). */
        long long end = th_now_us() + (TTL + 200) * 1000LL;
        while (th_now_us() < end)
            async ? (void)dlock_poll_once(c, 20) : th_sleep_ms(20);
        TH_CHECK(dlock_held(l));
    }
    TH_CHECK(pttl(s, name) > 0);
    dlock_client_free(c);
    check_orphan(l, name);
    /* The lease was not released: it is still there, then runs out, with
     * no keepalive extending it and no on_lost. */
    TH_CHECK(pttl(s, name) > 0);
    long long end = th_now_us() + (TTL + 1000) * 1000LL;
    while (pttl(s, name) != -2 && th_now_us() < end)
        th_sleep_ms(20);
    TH_EQ_INT(pttl(s, name), -2);
    check_orphan(l, name);
    dlock_lock_free(l);
    TH_EQ_INT(g_lost, 0);
}

/* Handles freed before the client leave its list; the rest are orphaned;
 * an async operation in flight is dropped without its callback. */
static void test_mixed(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_client *other = it_client(th_server_url(s), NULL);
    dlock_lock *l[4] = {0};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "mixed-%d", i);
        l[i] = i % 2 ? acquire_async(c, name) : NULL;
        if (l[i] == NULL)
            IT_RC(c, dlock_try_acquire(c, name, 5000, &l[i]), DLOCK_OK);
    }
    dlock_lock_free(l[1]); /* the middle of the list, then its head */
    dlock_lock_free(l[3]);
    /* A wait for a lock held elsewhere: in flight when the client goes. */
    dlock_lock *held = NULL, *never = NULL;
    IT_RC(other, dlock_try_acquire(other, "mixed-wait", 5000, &held), DLOCK_OK);
    int before = g_cb;
    IT_RC(c, dlock_wait_async(c, "mixed-wait", 3000, 5000, on_done, &never, NULL), DLOCK_OK);
    dlock_poll_once(c, 50);
    dlock_client_free(c);
    TH_EQ_INT(g_cb, before);
    TH_CHECK(never == NULL);
    check_orphan(l[0], "mixed-0");
    check_orphan(l[2], "mixed-2");
    dlock_lock_free(l[2]);
    dlock_lock_free(l[0]);
    IT_RC(other, dlock_release(held), DLOCK_OK);
    dlock_lock_free(held);
    dlock_client_free(other);
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    for (int async = 0; async < 2; async++)
        for (int ka = 0; ka < 2; ka++)
            one_case(s, async, ka);
    test_mixed(s);
    th_server_free(s);
    IT_PASS("test_client_free");
    return 0;
}

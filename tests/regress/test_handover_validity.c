/* test_handover_validity.c - a lock handed over to a waiter is held locally
 * no longer than its lease on the server (guarantee 5: "held is false from
 * the moment the lease could have ended, never later").
 *
 * The release hands the lock to a queued waiter and starts its lease at
 * once. A blocking waiter that is slow between its busy attempt and its
 * BLPOP (a pause, a slow event callback) pops the hand-over only later. It
 * counted its lease from the moment it sent the BLPOP, so its local
 * validity outlived the server's lease by that delay (here 1 s of a 3 s
 * lease). The lease cannot have started before the last attempt that found
 * the lock busy was sent: that is the bound to count from (the engine's
 * waiters already do). Both paths are checked; the delay is made
 * deterministic with the CONTENDED event, which runs between the two. */
#include <time.h>

#include "itest.h"

static dlock_client *g_other;
static dlock_lock *g_held;
static int g_fired;

/* The waiter found the lock busy: the holder releases now (handing it to
 * the waiter), and the waiter's thread is slow before it waits. */
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type != DLOCK_EV_CONTENDED || g_fired)
        return;
    g_fired = 1;
    IT_RC(g_other, dlock_release(g_held), DLOCK_OK);
    th_sleep_ms(1000);
}

/* The local validity left must not exceed the server's lease left. */
static void check(th_server *s, dlock_lock *l, const char *what) {
    long long pttl = th_server_int(s, "PTTL %s", "dlock:{h}");
    dlock_info info;
    dlock_info_get(l, &info);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long left = info.expires_at - now;
    printf("%s: local validity left %lld ms, server lease left %lld ms\n", what, left, pttl);
    if (left > pttl + 5)
        TH_FAIL("%s: held locally %lld ms past the server's lease", what, left - pttl);
}

static void setup(th_server *s, dlock_options *o) {
    g_fired = 0;
    IT_RC(g_other, dlock_acquire(g_other, "h", 10000, &g_held), DLOCK_OK);
    it_options(o, 1000, 1000);
    o->on_event = on_event;
    (void)s;
}

static void blocking(th_server *s) {
    dlock_options o;
    setup(s, &o);
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_wait(c, "h", 5000, 3000, &l), DLOCK_OK);
    TH_CHECK(g_fired);
    check(s, l, "blocking wait");
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_lock_free(g_held);
    dlock_client_free(c);
}

static void on_done(const dlock_result *r, void *ud) {
    dlock_lock **out = ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("async wait: %s (%s)", dlock_err_name(r->status), r->detail);
    *out = r->lock;
}

static void engine(th_server *s) {
    dlock_options o;
    setup(s, &o);
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_wait_async(c, "h", 5000, 3000, on_done, &l, NULL), DLOCK_OK);
    long long end = th_now_us() + 5000000;
    while (l == NULL && th_now_us() < end)
        dlock_client_process(c), th_sleep_ms(1);
    TH_CHECK(l != NULL && g_fired);
    check(s, l, "engine wait");
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_lock_free(g_held);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 1000, 1000);
    g_other = it_client(th_server_url(s), &o);
    engine(s);
    blocking(s);
    dlock_client_free(g_other);
    th_server_free(s);
    IT_PASS("test_handover_validity");
    return 0;
}

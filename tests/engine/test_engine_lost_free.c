/* test_engine_lost_free.c - a kept-alive lock freed (or its keepalive
 * stopped) by a callback that runs in the same dlock_client_process as the
 * lock's loss gets no on_lost afterwards: the notice queued behind that
 * callback is dropped, as dlock_keepalive_stop promises ("stop keeping the
 * lease alive") and as the thread keepalive does. Before the fix the
 * notice ran with the freed handle (a use after free; ASan names it).
 *
 * The order is made certain without racing: an INSPECT (its script
 * already loaded) is answered while the loop sleeps, and the keepalive timer falls due at a moment the
 * lock's local validity has already run out, so one process call reads
 * the INSPECT reply (its callback is queued first) and then fires the
 * timer, which finds the lock lost at once (its notice is queued second). */
#include "etest.h"

static int g_lost;
static dlock_lock *g_victim;
static int g_mode; /* 0: the callback frees the lock; 1: stops its keepalive */

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)status;
    (void)ud;
    g_lost++;
    TH_CHECK(!dlock_held(l)); /* reads l: freed memory before the fix */
}

static void on_inspect(const dlock_result *r, void *ud) {
    et_cb(r, ud);
    if (g_mode == 0) {
        dlock_lock_free(g_victim);
        g_victim = NULL;
    } else {
        dlock_keepalive_stop(g_victim);
    }
}

static void one(dlock_client *c, int mode) {
    g_mode = mode;
    g_lost = 0;
    et_res a = {0};
    /* ttl 300: local validity ~295 ms; the keepalive interval of 299 ms
     * falls due after it, so the timer finds the lock lost. */
    IT_RC(c, dlock_try_acquire_async(c, mode ? "lf1" : "lf0", 300, et_cb, &a, NULL), DLOCK_OK);
    et_run_until(c, &a.done, 3000);
    ET_STATUS(a, DLOCK_OK);
    g_victim = a.lock;
    IT_RC(c, dlock_keepalive_start(g_victim, 299, on_lost, NULL), DLOCK_OK);
    et_res in = {0};
    IT_RC(c, dlock_inspect_async(c, "other", on_inspect, &in, NULL), DLOCK_OK);
    th_sleep_ms(400); /* the reply arrives; the timer falls due */
    dlock_client_process(c);
    TH_CHECK(in.done);
    dlock_poll_run(c, 300);
    TH_EQ_INT(g_lost, 0);
    dlock_lock_free(g_victim);
    g_victim = NULL;
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(th_server_url(s), &o);
    /* Load INSPECT first: a NOSCRIPT round trip would delay its reply. */
    et_res prime = {0};
    IT_RC(c, dlock_inspect_async(c, "other", et_cb, &prime, NULL), DLOCK_OK);
    et_run_until(c, &prime.done, 3000);
    ET_STATUS(prime, DLOCK_OK);
    one(c, 0);
    one(c, 1);
    TH_EQ_INT(dlock_client_process(c), 0);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_lost_free");
    return 0;
}

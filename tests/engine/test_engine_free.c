/* test_engine_free.c - freeing a client with operations still in flight, in
 * the order dlock.h asks for: the handles first, then the client. A release
 * and an extend are sent but not yet answered when their handle is freed;
 * dlock_client_free must not let their completion code touch the freed
 * handle (it did: closing the pipes settled the requests, and the release's
 * reader wrote to the handle; ASan reported a heap-use-after-free). A wait
 * queued behind a holder sleeps on an armed timer when the client is freed
 * (the heap was then freed after the ops that embed its timers: another
 * use-after-free). No callback may run. */
#include "etest.h"

static int g_calls;

static void never(const dlock_result *r, void *ud) {
    (void)r;
    (void)ud;
    g_calls++;
}

static dlock_lock *take(dlock_client *c, const char *name) {
    et_res a = {0};
    IT_RC(c, dlock_try_acquire_async(c, name, 5000, et_cb, &a, NULL), DLOCK_OK);
    et_run_until(c, &a.done, 3000);
    ET_STATUS(a, DLOCK_OK);
    return a.lock;
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *c = it_client(th_server_url(s), NULL);
    dlock_lock *r = take(c, "free-r");
    dlock_lock *x = take(c, "free-x");
    dlock_lock *k = take(c, "free-k");
    IT_RC(c, dlock_keepalive_start(k, 1000, NULL, NULL), DLOCK_OK);
    /* A wait that queues behind k and sleeps on its timer. */
    IT_RC(c, dlock_wait_async(c, "free-k", 5000, 5000, never, NULL, NULL), DLOCK_OK);
    for (int i = 0; i < 50 && th_server_int(s, "ZCARD %s", "dlock:{free-k}:q") != 1; i++)
        dlock_poll_once(c, 20);
    TH_EQ_INT(th_server_int(s, "ZCARD %s", "dlock:{free-k}:q"), 1);
    /* Sent (the start writes what it can) but not read: no process call. */
    IT_RC(c, dlock_release_async(r, never, NULL, NULL), DLOCK_OK);
    IT_RC(c, dlock_extend_async(x, 9000, never, NULL, NULL), DLOCK_OK);
    IT_RC(c, dlock_wait_async(c, "free-x", 5000, 5000, never, NULL, NULL), DLOCK_OK);
    dlock_lock_free(r);
    dlock_lock_free(x);
    dlock_lock_free(k);
    dlock_client_free(c);
    TH_EQ_INT(g_calls, 0);
    th_server_free(s);
    IT_PASS("test_engine_free");
    return 0;
}

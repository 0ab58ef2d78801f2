/* test_straggler_cleanup.c - issue 9: "an unknown outcome is cleaned up by
 * token", for a Redlock server cut off by the grace.
 *
 * A Redlock set of three: A and B are down (connections refused at once),
 * C sits behind the fault proxy with LAT_MS of latency each way. A try
 * acquire is settled by A's and B's failures (a majority can no longer
 * grant); C gets the usual grace, about 1 ms, and is cut off while its
 * ACQUIRE is still on the wire. That ACQUIRE runs on C later and grants.
 * The call must count C as "may have run" and clean up by token before it
 * returns: C must not keep the lock (nor its queue entry) for the TTL.
 *
 * Before the fix the engine's fan left a cut-off target's outcome "known
 * failed": the call returned DLOCK_ENOQUORUM at once and C held the lock
 * for the whole TTL. The test waits until C has run the ACQUIRE (its fence
 * counter is 1), then looks for the lock on C.
 */
#include "itest.h"

#define LAT_MS 50
#define TTL_MS 30000

int main(void) {
    th_test_init(60);
    th_server *a = th_server_start(NULL), *b = th_server_start(NULL),
              *cs = th_server_start(NULL);
    TH_CHECK(a != NULL && b != NULL && cs != NULL);
    it_cache_scripts(cs);
    th_proxy *p = th_proxy_start(th_server_port(cs));
    TH_CHECK(p != NULL);
    char url[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(a), th_server_port(b), th_proxy_port(p));
    TH_EQ_INT(th_server_kill(a), 0);
    TH_EQ_INT(th_server_kill(b), 0);
    th_proxy_set(p, TH_LATENCY, LAT_MS);

    dlock_options o;
    it_options(&o, 500, 2000);
    dlock_client *c = it_client(url, &o);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire(c, "straggler", TTL_MS, &l), DLOCK_ENOQUORUM);
    long long took_ms = (th_now_us() - t0) / 1000;
    printf("try_acquire with 2 of 3 down and the third %d ms away: %s after %lld ms\n",
           LAT_MS, dlock_client_errstr(c), took_ms);

    /* C runs the ACQUIRE once the proxy delivers it: wait for its INCR. */
    long long until = th_now_us() + 5000000, fence = 0;
    while (th_now_us() < until) {
        redisReply *r = th_server_cmd(cs, "GET dlock:{straggler}:fence");
        fence = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        freeReplyObject(r);
        if (fence >= 1)
            break;
        th_sleep_ms(5);
    }
    TH_EQ_INT(fence, 1); /* the cut-off ACQUIRE did run on C */
    /* And it was undone: the clean-up by token was queued behind it. */
    until = th_now_us() + 2000000;
    long long exists = 1;
    while ((exists = th_server_int(cs, "EXISTS dlock:{straggler}")) != 0 &&
           th_now_us() < until)
        th_sleep_ms(5);
    if (exists != 0)
        TH_FAIL("C still holds the lock of a call that returned %s (pttl %lld ms): the "
                "straggler's grant was not cleaned up",
                "DLOCK_ENOQUORUM", th_server_int(cs, "PTTL dlock:{straggler}"));
    TH_EQ_INT(th_server_int(cs, "EXISTS dlock:{straggler}:q"), 0);

    dlock_client_free(c);
    th_proxy_stop(p);
    th_server_free(a);
    th_server_free(b);
    th_server_free(cs);
    IT_PASS("regress_straggler_cleanup");
    return 0;
}

/* test_cleanup.c - a waiter of the other kinds that gives up while its
 * server does not answer leaves no queue entry behind for long.
 *
 * An async waiter (through the fault proxy) queues behind a holder; the
 * proxy then swallows everything (black hole), so the waiter's deadline
 * passes with its request to leave the queue unanswered (EUNKNOWN), and
 * the clean-up by token, kept in the black hole 300 ms more, fails too. Once the proxy passes again, the clean-up
 * is tried again (as the mutex's is, cleanup_async.c) and removes the
 * entry within a second; it must not stay until it expires by itself
 * (about 2.3 s after the last attempt), when, at the head of the queue, it
 * keeps every later waiter out (a free lock with a live queue goes only
 * to the head). Once for a semaphore, once for a multi-lock (whose stale
 * entry blocks every name of the set). */
#include <string.h>

#include "etest.h"
#include "ktest.h"

#define CMD_MS 200

static th_server *S;

static long long zcard(const char *key) { return th_server_int(S, "ZCARD %s", key); }

static void one(int multi) {
    const char *names[] = {"cl-a", "cl-b"};
    const char *queue = multi ? "dlock:{cl-b}:q" : "dlock:{cl-s}:pq";
    dlock_options o;
    it_options(&o, CMD_MS, CMD_MS);
    dlock_client *h = it_client(th_server_url(S), &o);
    th_proxy *p = th_proxy_start(th_server_port(S));
    TH_CHECK(p != NULL);
    dlock_client *w = it_client(th_proxy_url(p), &o);
    dlock_lock *held;
    if (multi)
        IT_RC(h, dlock_try_acquire(h, "cl-b", 10000, &held), DLOCK_OK);
    else
        IT_RC(h, dlock_sem_try_acquire(h, "cl-s", 1, 10000, &held), DLOCK_OK);
    et_res r = {0};
    int rc = multi ? dlock_multi_wait_async(w, names, 2, 400, 5000, et_cb, &r, NULL)
                   : dlock_sem_wait_async(w, "cl-s", 1, 400, 5000, et_cb, &r, NULL);
    IT_RC(w, rc, DLOCK_OK);
    long long t0 = th_now_us();
    while (zcard(queue) < 1 && th_now_us() < t0 + 2000000)
        dlock_poll_once(w, 5);
    TH_EQ_INT(zcard(queue), 1);
    long long queued = th_now_us();
    th_proxy_set(p, TH_BLACKHOLE, 0);
    et_run_until(w, &r.done, 3000);
    TH_CHECK(r.done);
    printf("%s waiter gave up in the black hole: %s (%s)\n", multi ? "multi" : "sem",
           dlock_err_name(r.status), r.detail);
    TH_CHECK(r.status == DLOCK_EUNKNOWN || r.status == DLOCK_ETIMEDOUT);
    long long until = th_now_us() + 300000; /* the clean-up meets the black hole too */
    while (th_now_us() < until)
        dlock_poll_once(w, 20);
    TH_EQ_INT(zcard(queue), 1);
    th_proxy_set(p, TH_PASS, 0);
    long long passed = th_now_us();
    while (zcard(queue) > 0 && th_now_us() < queued + 5000000)
        dlock_poll_once(w, 20);
    long long gone_ms = (th_now_us() - passed) / 1000;
    printf("%s: its queue entry was gone %lld ms after the server answered again (%lld ms "
           "after it queued)\n",
           multi ? "multi" : "sem", gone_ms, (th_now_us() - queued) / 1000);
    TH_EQ_INT(zcard(queue), 0);
    TH_CHECK(gone_ms < 1000);
    TH_CHECK(th_now_us() - queued < 2000000); /* before it would have expired */
    IT_RC(h, dlock_release(held), DLOCK_OK);
    dlock_lock_free(held);
    dlock_client_free(w);
    dlock_client_free(h);
    th_proxy_stop(p);
}

int main(void) {
    th_test_init(60);
    S = th_server_start(NULL);
    TH_CHECK(S != NULL);
    one(0);
    one(1);
    th_server_free(S);
    IT_PASS("test_cleanup");
    return 0;
}

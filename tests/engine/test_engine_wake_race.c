/* test_engine_wake_race.c - a hand-over that lands while the waiter's slice
 * attempt is in flight must not cost another slice.
 *
 * A queued waiter re-runs ACQUIRE every 2 s slice. When that attempt and the
 * holder's release run in the same server event-loop turn, the attempt
 * finds the lock busy, the release then hands it to the waiter and
 * publishes the wake-up, and Redis writes the wake-up (to the subscriber
 * connection) before the attempt's reply. The engine ignored a wake-up
 * arriving during an attempt ("the attempt will see the hand-over
 * itself"), so the busy reply put the waiter to sleep for another 2 s
 * slice with the lock already its own. Found by the Node binding's
 * many-waits benchmark (a 2 s stall now and then).
 *
 * Made deterministic with SIGSTOP: the server is paused when the slice
 * attempt goes out, behind a batch of inspects (~11 KB of requests, one
 * server read; their replies, over 16 KB with the holder's long label, come
 * before the attempt's, and the engine reads 16 KB per turn), and the
 * release is queued behind it. After SIGCONT all of it runs in one server
 * turn; the waiter's loop runs only once everything has arrived, so it
 * reads the wake-up in its first turn, before the attempt's reply. */
#include <unistd.h>

#include "etest.h"

#define INSPECTS 100

static void drive(dlock_client *a, dlock_client *b, long long until_us) {
    while (th_now_us() < until_us) {
        dlock_poll_once(a, 5);
        dlock_poll_once(b, 0);
    }
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 1000, 3000); /* the attempt outlives the pause */
    dlock_client *w = it_client(th_server_url(s), &o);
    char label[DLOCK_LABEL_MAX + 1];
    memset(label, 'L', DLOCK_LABEL_MAX);
    label[DLOCK_LABEL_MAX] = '\0';
    o.owner_label = label;
    dlock_client *h = it_client(th_server_url(s), &o);
    static et_res ins[INSPECTS];

    /* Load the scripts first: a NOSCRIPT round would reorder the race. */
    et_res warm = {0}, warm_rel = {0}, warm_in = {0};
    IT_RC(h, dlock_try_acquire_async(h, "warm", 10000, et_cb, &warm, NULL), DLOCK_OK);
    et_run_until(h, &warm.done, 3000);
    ET_STATUS(warm, DLOCK_OK);
    IT_RC(h, dlock_release_async(warm.lock, et_cb, &warm_rel, NULL), DLOCK_OK);
    et_run_until(h, &warm_rel.done, 3000);
    IT_RC(w, dlock_inspect_async(w, "warm", et_cb, &warm_in, NULL), DLOCK_OK);
    et_run_until(w, &warm_in.done, 3000);
    dlock_lock_free(warm.lock);

    et_res held = {0}, got = {0}, rel = {0};
    IT_RC(h, dlock_try_acquire_async(h, "race", 10000, et_cb, &held, NULL), DLOCK_OK);
    et_run_until(h, &held.done, 3000);
    ET_STATUS(held, DLOCK_OK);

    long long t0 = th_now_us();
    IT_RC(w, dlock_wait_async(w, "race", 20000, 5000, et_cb, &got, NULL), DLOCK_OK);
    drive(w, h, t0 + 500000);
    TH_EQ_INT(th_server_int(s, "ZCARD %s", "dlock:{race}:q"), 1);
    TH_CHECK(!got.done);
    /* The slice attempt is due at about t0 + 2 s: pause the server before,
     * let the attempt go out into the paused server, then queue the
     * release behind it. */
    drive(w, h, t0 + 1800000);
    TH_EQ_INT(th_server_pause(s), 0);
    for (int i = 0; i < INSPECTS; i++)
        IT_RC(w, dlock_inspect_async(w, "race", et_cb, &ins[i], NULL), DLOCK_OK);
    drive(w, h, t0 + 2300000);
    IT_RC(h, dlock_release_async(held.lock, et_cb, &rel, NULL), DLOCK_OK);
    drive(w, h, t0 + 2400000);
    TH_EQ_INT(th_server_resume(s), 0);
    usleep(300000);
    long long t1 = th_now_us();
    while (!got.done && th_now_us() - t1 < 5000000LL)
        drive(w, h, th_now_us() + 10000);
    ET_STATUS(got, DLOCK_OK);
    long long ms = (got.at_us - t1) / 1000;
    printf("granted %lld ms after the waiter's loop ran again\n", ms);
    TH_CHECK(ms < 500); /* not one more 2 s slice */
    ET_STATUS(rel, DLOCK_OK);
    TH_CHECK(got.fence == held.fence + 1);
    for (int i = 0; i < INSPECTS; i++)
        ET_STATUS(ins[i], DLOCK_OK);

    et_res r2 = {0};
    IT_RC(w, dlock_release_async(got.lock, et_cb, &r2, NULL), DLOCK_OK);
    et_run_until(w, &r2.done, 3000);
    ET_STATUS(r2, DLOCK_OK);
    dlock_lock_free(got.lock);
    dlock_lock_free(held.lock);
    dlock_client_free(w);
    dlock_client_free(h);
    th_server_free(s);
    IT_PASS("test_engine_wake_race");
    return 0;
}

/* test_callback_deadlock.c - issue 9, "Callbacks under internal state".
 *
 * Lock A is kept alive with an on_lost callback that takes an application
 * mutex M. The main thread holds M, makes A lost (deletes its key on the
 * server), waits until the callback has entered (and so blocks on M), then
 * frees ANOTHER kept-alive lock B of the same client from a helper thread.
 * Freeing B must not wait for A's keepalive round: callbacks must run with
 * no internal lock or busy flag held, and stopping one lock must not wait on
 * another lock's round.
 *
 * Today dlock_keepalive_stop(B) (called by dlock_lock_free) waits for the
 * round to finish, the round waits for on_lost(A), and on_lost(A) waits for
 * M, which the main thread holds until the free returns: a deadlock. The
 * test detects it with its own deadline (FREE_MS), then unlocks M so the
 * program ends cleanly and fails with a clear message.
 *
 * Deterministic: each step waits for a polled condition (callback entered,
 * free returned) with a deadline; no timing luck is involved.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "itest.h"

#define FREE_MS 2000 /* a free that takes longer is blocked, not slow */

static pthread_mutex_t g_m = PTHREAD_MUTEX_INITIALIZER; /* the application's mutex M */
static _Atomic int g_entered, g_left, g_freed;

static void on_lost_a(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)ud;
    printf("on_lost(A): %s; taking M\n", dlock_err_name(status));
    atomic_store(&g_entered, 1);
    pthread_mutex_lock(&g_m);
    pthread_mutex_unlock(&g_m);
    atomic_store(&g_left, 1);
}

static void *free_b(void *arg) {
    dlock_lock_free(arg);
    atomic_store(&g_freed, 1);
    return NULL;
}

/* Polls *flag until it is set or ms pass; returns whether it was set. */
static int wait_flag(_Atomic int *flag, int ms) {
    long long deadline = th_now_us() + ms * 1000LL;
    while (!atomic_load(flag) && th_now_us() < deadline)
        th_sleep_ms(2);
    return atomic_load(flag);
}

int main(void) {
    th_test_init(40);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(th_server_url(s), &o);

    dlock_lock *a = NULL, *b = NULL;
    IT_RC(c, dlock_try_acquire(c, "cb-a", 3000, &a), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "cb-b", 30000, &b), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(b, 0, NULL, NULL), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(a, 100, on_lost_a, NULL), DLOCK_OK);

    pthread_mutex_lock(&g_m);
    TH_EQ_INT(th_server_int(s, "DEL dlock:{cb-a}"), 1);
    /* The next round of A (within 100 ms) finds the token gone. */
    if (!wait_flag(&g_entered, 5000))
        TH_FAIL("on_lost(A) was not called within 5 s of deleting A's key");

    pthread_t t;
    TH_EQ_INT(pthread_create(&t, NULL, free_b, b), 0);
    long long t0 = th_now_us();
    int freed = wait_flag(&g_freed, FREE_MS);
    long long blocked_ms = (th_now_us() - t0) / 1000;
    /* Let the callback go, whatever happened, so the program can end. */
    pthread_mutex_unlock(&g_m);
    if (!freed) {
        int resolved = wait_flag(&g_freed, 5000);
        if (resolved)
            pthread_join(t, NULL);
        TH_FAIL("dlock_lock_free(B) still blocked after %lld ms while on_lost(A) waits for the "
                "application mutex held by the freeing thread: stopping B's keepalive waits "
                "for A's round, which runs the callback (deadlock; %s once M was unlocked, "
                "callback left: %d)",
                blocked_ms, resolved ? "the free returned" : "the free STILL did not return",
                atomic_load(&g_left));
    }
    printf("dlock_lock_free(B) returned in %lld ms while on_lost(A) was blocked\n", blocked_ms);
    pthread_join(t, NULL);
    TH_CHECK(wait_flag(&g_left, 5000));
    dlock_lock_free(a);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_callback_deadlock");
    return 0;
}

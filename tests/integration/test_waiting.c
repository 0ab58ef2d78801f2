/* test_waiting.c - a waiter is woken by the release (not a poll), learns of
 * a dead holder's expiry by the TTL, and waiters are served in FIFO order. */
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "itest.h"

struct shared {
    long long released_at; /* us, monotonic (same clock in every process) */
    long long acquired_at;
    int order[8];
    int norder;
};

static th_server *srv;
static struct shared *sh;

static int holder_then_release(void *arg) {
    (void)arg;
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "wake", 30000, &l), DLOCK_OK);
    th_sleep_ms(700);
    sh->released_at = th_now_us();
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

static int holder_forever(void *arg) {
    (void)arg;
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "dies", 1500, &l), DLOCK_OK);
    for (;;)
        pause(); /* killed with SIGKILL, never releases */
    return 0;
}

static void test_release_wakes(void) {
    pid_t h = th_spawn(holder_then_release, NULL);
    th_sleep_ms(150);
    dlock_client *c = it_client(th_server_url(srv), NULL);
    int locked = 0;
    IT_RC(c, dlock_is_locked(c, "wake", &locked, NULL), DLOCK_OK);
    TH_EQ_INT(locked, 1);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_wait(c, "wake", 10000, 5000, &l), DLOCK_OK);
    long long now = th_now_us();
    TH_EQ_INT(th_wait(h, 5000), 0);
    long long delay = now - sh->released_at;
    printf("woken %lld us after the release\n", delay);
    TH_CHECK(delay >= 0 && delay < 100000);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    /* dlock_acquire (retry budget) is woken the same way: the backoff delays
     * are upper bounds that the release cuts short. */
    dlock_options o;
    dlock_options_init(&o);
    o.retry_count = 3;
    o.retry_delay_ms = 3000;
    o.retry_max_delay_ms = 3000;
    dlock_client *c2 = it_client(th_server_url(srv), &o);
    h = th_spawn(holder_then_release, NULL);
    th_sleep_ms(150);
    IT_RC(c2, dlock_acquire(c2, "wake", 5000, &l), DLOCK_OK);
    delay = th_now_us() - sh->released_at;
    printf("acquire woken %lld us after the release\n", delay);
    TH_CHECK(delay >= 0 && delay < 100000);
    TH_EQ_INT(th_wait(h, 5000), 0);
    IT_RC(c2, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c2);
    dlock_client_free(c);
}

static void test_dead_holder(void) {
    pid_t h = th_spawn(holder_forever, NULL);
    th_sleep_ms(200);
    dlock_client *c = it_client(th_server_url(srv), NULL);
    int locked = 0;
    int64_t pttl = 0;
    IT_RC(c, dlock_is_locked(c, "dies", &locked, &pttl), DLOCK_OK);
    TH_EQ_INT(locked, 1);
    kill(h, SIGKILL);
    th_wait(h, 5000);
    long long t0 = th_now_us();
    dlock_lock *l = NULL;
    IT_RC(c, dlock_wait(c, "dies", 10000, 5000, &l), DLOCK_OK);
    long long waited = (th_now_us() - t0) / 1000;
    printf("dead holder: lease had %lld ms left, acquired after %lld ms\n", (long long)pttl,
           waited);
    /* No earlier than the lease's end, and soon after it. */
    TH_CHECK(waited <= pttl + 300);
    TH_CHECK(waited + 250 >= pttl);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
}

/* FIFO: waiters that queue in order 0..3 get the lock in that order. */
static int queued_waiter(int idx, void *arg) {
    (void)arg;
    th_sleep_ms(100 + idx * 120); /* queue up one after another */
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_wait(c, "fifo", 20000, 5000, &l), DLOCK_OK);
    int pos = __atomic_fetch_add(&sh->norder, 1, __ATOMIC_SEQ_CST);
    sh->order[pos] = idx;
    th_sleep_ms(20);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

static int fifo_holder(int idx, void *arg) {
    if (idx > 0)
        return queued_waiter(idx - 1, arg);
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "fifo", 30000, &l), DLOCK_OK);
    th_sleep_ms(900);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    /* Barging check: the releaser immediately asks again; it must queue
     * behind the 4 waiters. */
    IT_RC(c, dlock_wait(c, "fifo", 20000, 5000, &l), DLOCK_OK);
    int pos = __atomic_fetch_add(&sh->norder, 1, __ATOMIC_SEQ_CST);
    sh->order[pos] = 99;
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    return 0;
}

static void test_fifo(void) {
    sh->norder = 0;
    TH_EQ_INT(th_run_workers(5, fifo_holder, NULL, 30), 0);
    TH_EQ_INT(sh->norder, 5);
    printf("fifo order: %d %d %d %d %d\n", sh->order[0], sh->order[1], sh->order[2],
           sh->order[3], sh->order[4]);
    for (int i = 0; i < 4; i++)
        TH_EQ_INT(sh->order[i], i);
    TH_EQ_INT(sh->order[4], 99);
}

/* A waiter that dies while queued blocks the queue only briefly. */
static int dying_waiter(void *arg) {
    (void)arg;
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL;
    dlock_wait(c, "jam", 60000, 5000, &l); /* killed while waiting */
    return 1;
}

static void test_dead_waiter(void) {
    dlock_client *c = it_client(th_server_url(srv), NULL);
    dlock_client *c2 = it_client(th_server_url(srv), NULL);
    dlock_lock *l = NULL, *l2 = NULL;
    IT_RC(c, dlock_try_acquire(c, "jam", 30000, &l), DLOCK_OK);
    pid_t w = th_spawn(dying_waiter, NULL);
    th_sleep_ms(200);
    dlock_holder h;
    IT_RC(c, dlock_inspect(c, "jam", &h), DLOCK_OK);
    TH_EQ_INT(h.waiters, 1);
    kill(w, SIGKILL);
    th_wait(w, 5000);
    /* Its queue entry lives for one wait slice (2 s) + command timeout (1 s)
     * + 100 ms after its last attempt; after that it is skipped. */
    th_sleep_ms(3300);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    long long t0 = th_now_us();
    IT_RC(c2, dlock_wait(c2, "jam", 5000, 5000, &l2), DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 500000);
    IT_RC(c2, dlock_release(l2), DLOCK_OK);
    dlock_lock_free(l);
    dlock_lock_free(l2);
    dlock_client_free(c);
    dlock_client_free(c2);
}

int main(void) {
    th_test_init(100);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    TH_CHECK(sh != MAP_FAILED);
    srv = th_server_start(NULL);
    TH_CHECK(srv != NULL);
    test_release_wakes();
    test_dead_holder();
    test_fifo();
    test_dead_waiter();
    th_server_free(srv);
    munmap(sh, sizeof *sh);
    IT_PASS("test_waiting");
    return 0;
}

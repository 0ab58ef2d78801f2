/* test_redlock.c - Redlock over 3 and 5 independent masters: the basics,
 * minority failures, majority failures (ENOQUORUM, nothing left behind), a
 * paused server, mutual exclusion with a minority down, and fences that
 * keep rising while a server is down and after it returns empty. */
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"

#define MAXS 5

static th_server *srv[MAXS];
static char url[1024];

static void make_url(int n) { it_redlock_url(url, sizeof url, srv, n); }

static int count_keys(int n, const char *key) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (th_server_pid(srv[i]) < 0)
            continue;
        if (th_server_int(srv[i], "EXISTS %s", key) == 1)
            k++;
    }
    return k;
}

/* count_keys polled until it is `want`: an acquire or release settles once
 * a majority answered, so the last server's copy may still be on its way. */
static int keys_become(int n, const char *key, int want) {
    long long until = th_now_us() + 2000000;
    int k;
    while ((k = count_keys(n, key)) != want && th_now_us() < until)
        th_sleep_ms(2);
    return k;
}

static int64_t fence_of(dlock_lock *l) {
    dlock_info info;
    dlock_info_get(l, &info);
    return info.fence;
}

static void basics(int n) {
    make_url(n);
    dlock_options o;
    it_options(&o, 200, 300);
    dlock_client *c = it_client(url, &o);
    dlock_client *c2 = it_client(url, &o);
    dlock_lock *l = NULL, *l2 = NULL;
    for (int i = 0; i < n; i++)
        it_cache_scripts(srv[i]); /* the lock is to reach every server */
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    IT_RC(c, dlock_try_acquire(c, "rl", 5000, &l), DLOCK_OK);
    TH_EQ_INT(keys_become(n, "dlock:{rl}", n), n); /* same token everywhere */
    IT_RC(c2, dlock_try_acquire(c2, "rl", 5000, &l2), DLOCK_EBUSY);
    int locked = 0;
    IT_RC(c2, dlock_is_locked(c2, "rl", &locked, NULL), DLOCK_OK);
    TH_EQ_INT(locked, 1);
    dlock_holder h;
    IT_RC(c2, dlock_inspect(c2, "rl", &h), DLOCK_OK);
    TH_EQ_INT(h.fence, fence_of(l));
    IT_RC(c, dlock_extend(l, 8000), DLOCK_OK);
    int64_t f1 = fence_of(l);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    TH_EQ_INT(keys_become(n, "dlock:{rl}", 0), 0);
    dlock_lock_free(l);

    /* A minority killed: everything still works; fences keep rising. */
    int kill_n = (n - 1) / 2;
    for (int i = 0; i < kill_n; i++)
        TH_EQ_INT(th_server_kill(srv[i]), 0);
    IT_RC(c, dlock_try_acquire(c, "rl", 5000, &l), DLOCK_OK);
    int64_t f2 = fence_of(l);
    TH_CHECK(f2 > f1);
    IT_RC(c2, dlock_try_acquire(c2, "rl", 5000, &l2), DLOCK_EBUSY);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    /* The killed servers come back empty: fences still rise (a majority
     * remembers the last one). */
    for (int i = 0; i < kill_n; i++)
        TH_EQ_INT(th_server_restart(srv[i]), 0);
    IT_RC(c, dlock_try_acquire(c, "rl", 5000, &l), DLOCK_OK);
    int64_t f3 = fence_of(l);
    TH_CHECK(f3 > f2);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    printf("redlock-%d fences: %lld %lld %lld\n", n, (long long)f1, (long long)f2,
           (long long)f3);

    /* A majority down: ENOQUORUM within the deadline, nothing left behind. */
    int down = n / 2 + 1;
    for (int i = 0; i < down; i++)
        TH_EQ_INT(th_server_kill(srv[i]), 0);
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, "rl", 5000, &l);
    long long el = (th_now_us() - t0) / 1000;
    printf("redlock-%d with %d down: %s after %lld ms: %s\n", n, down, dlock_err_name(rc), el,
           dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOQUORUM);
    TH_CHECK(el < 200 + 2 * 300 + 300);
    TH_CHECK(strstr(dlock_client_errstr(c), "servers answered") != NULL);
    TH_EQ_INT(count_keys(n, "dlock:{rl}"), 0);
    IT_RC(c, dlock_is_locked(c, "rl", &locked, NULL), DLOCK_ENOQUORUM);
    for (int i = 0; i < down; i++)
        TH_EQ_INT(th_server_restart(srv[i]), 0);

    /* A paused server does not stall a call past its deadline. */
    TH_EQ_INT(th_server_pause(srv[n - 1]), 0);
    t0 = th_now_us();
    IT_RC(c, dlock_try_acquire(c, "rl-paused", 5000, &l), DLOCK_OK);
    el = (th_now_us() - t0) / 1000;
    IT_RC(c, dlock_release(l), DLOCK_OK);
    long long el2 = (th_now_us() - t0) / 1000 - el;
    printf("redlock-%d with one paused: acquire %lld ms, release %lld ms\n", n, el, el2);
    TH_CHECK(el < 300 + 250 && el2 < 300 + 250);
    dlock_lock_free(l);
    TH_EQ_INT(th_server_resume(srv[n - 1]), 0);
    dlock_client_free(c);
    dlock_client_free(c2);
}

#define WORKERS 8
#define ITERS 60

static int worker(int idx, void *arg) {
    (void)idx;
    int port = *(int *)arg;
    dlock_options o;
    it_options(&o, 200, 300);
    o.retry_delay_ms = 2;
    o.retry_max_delay_ms = 10;
    dlock_client *c = it_client(url, &o);
    redisContext *rc = th_connect(port, 2000);
    TH_CHECK(rc != NULL);
    for (int i = 0; i < ITERS; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_wait(c, "rl-mutex", 60000, 10000, &l), DLOCK_OK);
        int64_t f = fence_of(l);
        redisReply *r = redisCommand(rc, "GET last_fence");
        long long last = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        freeReplyObject(r);
        if (f <= last)
            TH_FAIL("fence %lld not above %lld", (long long)f, last);
        freeReplyObject(redisCommand(rc, "SET last_fence %lld", (long long)f));
        r = redisCommand(rc, "GET counter");
        long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        freeReplyObject(r);
        freeReplyObject(redisCommand(rc, "SET counter %lld", v + 1));
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    redisFree(rc);
    dlock_client_free(c);
    return 0;
}

static void mutex_with_minority_down(int n) {
    make_url(n);
    th_server *store = th_server_start(NULL); /* the "storage" the holders write */
    TH_CHECK(store != NULL);
    TH_EQ_INT(th_server_kill(srv[0]), 0); /* a minority down for the whole run */
    int port = th_server_port(store);
    long long t0 = th_now_us();
    TH_EQ_INT(th_run_workers(WORKERS, worker, &port, 100), 0);
    redisReply *r = th_server_cmd(store, "GET counter");
    TH_CHECK(r && r->type == REDIS_REPLY_STRING);
    long long counter = atoll(r->str);
    freeReplyObject(r);
    printf("redlock-%d, 1 down, %d workers x %d: counter %lld in %.2f s\n", n, WORKERS, ITERS,
           counter, (double)(th_now_us() - t0) / 1e6);
    TH_EQ_INT(counter, WORKERS * ITERS);
    TH_EQ_INT(th_server_restart(srv[0]), 0);
    th_server_free(store);
}

int main(void) {
    th_test_init(110);
    for (int i = 0; i < MAXS; i++) {
        srv[i] = th_server_start(NULL);
        TH_CHECK(srv[i] != NULL);
    }
    basics(3);
    basics(5);
    mutex_with_minority_down(3);
    for (int i = 0; i < MAXS; i++)
        th_server_free(srv[i]);
    IT_PASS("test_redlock");
    return 0;
}

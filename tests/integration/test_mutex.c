/* test_mutex.c - mutual exclusion: 8 processes doing a non-atomic increment
 * under the lock lose no update, and the fences the holders see rise
 * strictly in the order they held the lock. Run with push and poll waiting. */
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"

#define WORKERS 8
#define ITERS 400

struct ctx {
    th_server *s;
    int port;
    dlock_waiting waiting;
    const char *name;
};

static long long get_int(redisContext *rc, const char *key) {
    redisReply *r = redisCommand(rc, "GET %s", key);
    if (r == NULL)
        TH_FAIL("GET failed: %s", rc->errstr);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

static void set_int(redisContext *rc, const char *key, long long v) {
    redisReply *r = redisCommand(rc, "SET %s %lld", key, v);
    if (r == NULL)
        TH_FAIL("SET failed: %s", rc->errstr);
    freeReplyObject(r);
}

static int worker(int idx, void *arg) {
    struct ctx *x = arg;
    dlock_options o;
    dlock_options_init(&o);
    o.waiting = x->waiting;
    o.retry_delay_ms = 5; /* poll mode: keep the test short */
    o.retry_max_delay_ms = 20;
    dlock_client *c = it_client(th_server_url(x->s), &o);
    redisContext *rc = th_connect(x->port, 2000);
    TH_CHECK(rc != NULL);
    for (int i = 0; i < ITERS; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_wait(c, x->name, 30000, 10000, &l), DLOCK_OK);
        dlock_info info;
        dlock_info_get(l, &info);
        /* Storage-side fence check: the fence must exceed the last one seen. */
        long long last = get_int(rc, "last_fence");
        if (info.fence <= last)
            TH_FAIL("worker %d: fence %lld not above last %lld", idx, (long long)info.fence,
                    last);
        set_int(rc, "last_fence", info.fence);
        long long v = get_int(rc, "counter");
        if (i % 16 == 0)
            usleep(200); /* widen the race window */
        set_int(rc, "counter", v + 1);
        TH_CHECK(dlock_held(l));
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    redisFree(rc);
    dlock_client_free(c);
    return 0;
}

static void run(th_server *s, dlock_waiting waiting, const char *name) {
    freeReplyObject(th_server_cmd(s, "DEL counter last_fence"));
    struct ctx x = {s, th_server_port(s), waiting, name};
    long long t0 = th_now_us();
    TH_EQ_INT(th_run_workers(WORKERS, worker, &x, 90), 0);
    double secs = (double)(th_now_us() - t0) / 1e6;
    long long counter;
    redisReply *r = th_server_cmd(s, "GET counter");
    TH_CHECK(r && r->type == REDIS_REPLY_STRING);
    counter = atoll(r->str);
    freeReplyObject(r);
    printf("%s: %d workers x %d: counter %lld (lost updates %lld) in %.2f s\n",
           waiting == DLOCK_WAIT_PUSH ? "push" : "poll", WORKERS, ITERS, counter,
           (long long)WORKERS * ITERS - counter, secs);
    TH_EQ_INT(counter, WORKERS * ITERS);
}

int main(void) {
    th_test_init(110);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    run(s, DLOCK_WAIT_PUSH, "mutex-push");
    run(s, DLOCK_WAIT_POLL, "mutex-poll");
    th_server_free(s);
    IT_PASS("test_mutex");
    return 0;
}

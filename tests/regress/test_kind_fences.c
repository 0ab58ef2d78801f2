/* test_kind_fences.c - issue 10 §4, "Fences above 2^53", for the other
 * kinds (semaphores, read-write locks, multi-locks).
 *
 * The mutex scripts keep fences as decimal strings (test_fence_int64.c);
 * the kinds' scripts passed them through Lua numbers (doubles): a permit's
 * fence was stored as "9.007199254741e+15" in its holder entry, a reader
 * or a multi-lock's name returned a rounded number, and at 2^63-1 the
 * INCR failed halfway through a script (a multi-lock could take one name
 * and not the other) with no clear error. Fences must stay exact end to
 * end (direct grant, admission from the queue, inspect), the end of the
 * counter must be the clear FENCEMAX error that changes nothing, and a
 * release that cannot admit the next waiter (no fence left) must still
 * release. Counters are set near the limits with SET. */
#include <inttypes.h>

#include "itest.h"

#define P53 9007199254740992LL /* 2^53 */
#define MAX63 INT64_MAX

static th_server *g_s;

static void set_counter(const char *name, int64_t v) {
    char key[80];
    snprintf(key, sizeof key, "dlock:{%s}:fence", name);
    redisReply *r = th_server_cmd(g_s, "SET %s %lld", key, (long long)v);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static void expect_counter(const char *name, int64_t want) {
    char key[80], w[24];
    snprintf(key, sizeof key, "dlock:{%s}:fence", name);
    snprintf(w, sizeof w, "%" PRId64, want);
    redisReply *r = th_server_cmd(g_s, "GET %s", key);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    TH_EQ_STR(r->str, w);
    freeReplyObject(r);
}

static int64_t fence_of(dlock_lock *l) {
    dlock_info i;
    TH_EQ_INT(dlock_info_get(l, &i), DLOCK_OK);
    return i.fence;
}

/* The holder entry of a semaphore or rw lock stores the fence exactly:
 * "<fence> <want> <acquired_ms> <meta>". */
static void expect_stored(const char *name, dlock_lock *l, int64_t want) {
    char key[80], w[32];
    dlock_info i;
    dlock_info_get(l, &i);
    snprintf(key, sizeof key, "dlock:{%s}:h", name);
    snprintf(w, sizeof w, "%" PRId64 " ", want);
    redisReply *r = th_server_cmd(g_s, "HGET %s %s", key, i.token);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    if (strncmp(r->str, w, strlen(w)) != 0)
        TH_FAIL("holder entry of '%s' is '%s', want it to start with '%s'", name, r->str, w);
    freeReplyObject(r);
}

/* Every holder's fence and the last fence as dlock_holders_get reads them. */
static void expect_holders(dlock_client *c, const char *name, int64_t fence, int64_t last) {
    dlock_holders *h = NULL;
    IT_RC(c, dlock_holders_get(c, name, &h), DLOCK_OK);
    TH_EQ_INT(dlock_holders_last_fence(h), last);
    TH_CHECK(dlock_holders_count(h) >= 1);
    TH_EQ_INT(dlock_holders_at(h, 0)->fence, fence);
    dlock_holders_free(h);
}

static void sem_direct(dlock_client *c) {
    set_counter("sem", P53 - 3);
    for (int64_t want = P53 - 2; want <= P53 + 3; want++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_sem_try_acquire(c, "sem", 2, 10000, &l), DLOCK_OK);
        printf("sem: fence %" PRId64 " (want %" PRId64 ")\n", fence_of(l), want);
        TH_EQ_INT(fence_of(l), want);
        expect_counter("sem", want);
        expect_stored("sem", l, want);
        expect_holders(c, "sem", want, want);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
}

static void rw_direct(dlock_client *c) {
    set_counter("rw", P53 + 1);
    dlock_lock *w = NULL, *r = NULL;
    IT_RC(c, dlock_rw_try_acquire(c, "rw", DLOCK_EXCLUSIVE, 10000, &w), DLOCK_OK);
    printf("rw writer: fence %" PRId64 "\n", fence_of(w));
    TH_EQ_INT(fence_of(w), P53 + 2);
    expect_stored("rw", w, P53 + 2);
    IT_RC(c, dlock_release(w), DLOCK_OK);
    IT_RC(c, dlock_rw_try_acquire(c, "rw", DLOCK_SHARED, 10000, &r), DLOCK_OK);
    printf("rw reader: fence %" PRId64 "\n", fence_of(r));
    TH_EQ_INT(fence_of(r), P53 + 2); /* the last writer's */
    expect_stored("rw", r, P53 + 2);
    expect_holders(c, "rw", P53 + 2, P53 + 2);
    IT_RC(c, dlock_release(r), DLOCK_OK);
    dlock_lock_free(w);
    dlock_lock_free(r);
}

static void multi_direct(dlock_client *c) {
    const char *names[2] = {"ma", "mb"};
    set_counter("ma", P53 + 2); /* odd fences: not doubles */
    set_counter("mb", P53 + 4);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_multi_try_acquire(c, names, 2, 10000, &l), DLOCK_OK);
    for (int i = 0; i < 2; i++) {
        int64_t f;
        dlock_lock_name_at(l, i, NULL, &f);
        printf("multi: %s fence %" PRId64 "\n", names[i], f);
        TH_EQ_INT(f, i == 0 ? P53 + 3 : P53 + 5);
    }
    redisReply *r = th_server_cmd(g_s, "HGET %s f", "dlock:{mb}");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    TH_EQ_STR(r->str, "9007199254740997");
    freeReplyObject(r);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

typedef struct waited {
    int done, status;
    dlock_lock *l;
} waited;

static void on_done(const dlock_result *r, void *ud) {
    waited *w = ud;
    w->done = 1;
    w->status = r->status;
    w->l = r->lock;
}

/* Drive w's client until its wait ends (or 5 s). */
static void drive(dlock_client *c, waited *w) {
    long long end = th_now_us() + 5000000;
    while (!w->done && th_now_us() < end)
        dlock_client_process(c), th_sleep_ms(1);
    TH_CHECK(w->done);
}

/* Drive c until the queue `qkey` has an entry. */
static void queued(dlock_client *c, const char *qkey) {
    long long end = th_now_us() + 5000000;
    while (th_server_int(g_s, "ZCARD %s", qkey) < 1 && th_now_us() < end)
        dlock_client_process(c), th_sleep_ms(1);
    TH_EQ_INT(th_server_int(g_s, "ZCARD %s", qkey), 1);
}

/* A release admits the queued waiter with the next fence, exactly. */
static void admitted(dlock_client *c, dlock_client *wc) {
    set_counter("sq", P53 + 1);
    dlock_lock *held = NULL;
    waited w = {0};
    IT_RC(c, dlock_sem_try_acquire(c, "sq", 1, 10000, &held), DLOCK_OK);
    IT_RC(wc, dlock_sem_wait_async(wc, "sq", 1, 5000, 10000, on_done, &w, NULL), DLOCK_OK);
    queued(wc, "dlock:{sq}:pq");
    IT_RC(c, dlock_release(held), DLOCK_OK);
    drive(wc, &w);
    TH_EQ_INT(w.status, DLOCK_OK);
    printf("sem admitted: fence %" PRId64 "\n", fence_of(w.l));
    TH_EQ_INT(fence_of(w.l), P53 + 3);
    expect_stored("sq", w.l, P53 + 3);
    IT_RC(wc, dlock_release(w.l), DLOCK_OK);
    dlock_lock_free(held);
    dlock_lock_free(w.l);

    /* A mutex release hands one name to a multi-lock waiter. */
    const char *names[2] = {"mq", "mr"};
    set_counter("mq", P53 + 7);
    waited m = {0};
    IT_RC(c, dlock_try_acquire(c, "mq", 10000, &held), DLOCK_OK);
    IT_RC(wc, dlock_multi_wait_async(wc, names, 2, 5000, 10000, on_done, &m, NULL), DLOCK_OK);
    queued(wc, "dlock:{mq}:q");
    IT_RC(c, dlock_release(held), DLOCK_OK);
    drive(wc, &m);
    TH_EQ_INT(m.status, DLOCK_OK);
    int64_t f;
    dlock_lock_name_at(m.l, 0, NULL, &f);
    printf("multi handed over: fence %" PRId64 "\n", f);
    TH_EQ_INT(f, P53 + 9);
    IT_RC(wc, dlock_release(m.l), DLOCK_OK);
    dlock_lock_free(held);
    dlock_lock_free(m.l);
}

/* The last fence, then FENCEMAX changing nothing. */
static void at_max(dlock_client *c) {
    set_counter("smax", MAX63 - 1);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_sem_try_acquire(c, "smax", 3, 10000, &l), DLOCK_OK);
    printf("sem at max: fence %" PRId64 "\n", fence_of(l));
    TH_EQ_INT(fence_of(l), MAX63);
    expect_stored("smax", l, MAX63);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    l = NULL;
    int rc = dlock_sem_try_acquire(c, "smax", 3, 10000, &l);
    printf("sem past max: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_FENCEMAX);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{smax}"), 0);
    expect_counter("smax", MAX63);
    /* A reader takes no new fence: it still works, with the last one. */
    IT_RC(c, dlock_rw_try_acquire(c, "rmax", DLOCK_EXCLUSIVE, 10000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    set_counter("rmax", MAX63);
    TH_EQ_INT(dlock_rw_try_acquire(c, "rmax", DLOCK_EXCLUSIVE, 10000, &l), DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_FENCEMAX);
    IT_RC(c, dlock_rw_try_acquire(c, "rmax", DLOCK_SHARED, 10000, &l), DLOCK_OK);
    TH_EQ_INT(fence_of(l), MAX63);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    /* A multi-lock whose second name is at the end takes neither. */
    const char *names[2] = {"xa", "xb"};
    set_counter("xa", 5);
    set_counter("xb", MAX63);
    rc = dlock_multi_try_acquire(c, names, 2, 10000, &l);
    printf("multi past max: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_FENCEMAX);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{xa}"), 0);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{xb}"), 0);
    expect_counter("xa", 5);
    expect_counter("xb", MAX63);
}

/* A release whose next waiter can get no fence still releases; the waiter
 * meets FENCEMAX at its next attempt, at once. */
static void release_at_max(dlock_client *c, dlock_client *wc) {
    set_counter("rl", MAX63 - 1);
    dlock_lock *held = NULL;
    waited w = {0};
    IT_RC(c, dlock_sem_try_acquire(c, "rl", 1, 10000, &held), DLOCK_OK);
    TH_EQ_INT(fence_of(held), MAX63);
    IT_RC(wc, dlock_sem_wait_async(wc, "rl", 1, 3000, 10000, on_done, &w, NULL), DLOCK_OK);
    queued(wc, "dlock:{rl}:pq");
    long long t0 = th_now_us();
    IT_RC(c, dlock_release(held), DLOCK_OK);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{rl}"), 0);
    drive(wc, &w);
    printf("sem waiter after a release at max: %s after %lld ms\n", dlock_err_name(w.status),
           (th_now_us() - t0) / 1000);
    TH_EQ_INT(w.status, DLOCK_ESERVER);
    TH_CHECK(th_now_us() - t0 < 2500000);
    dlock_lock_free(held);

    const char *names[2] = {"ra", "rb"};
    set_counter("ra", MAX63 - 1);
    waited m = {0};
    IT_RC(c, dlock_try_acquire(c, "ra", 10000, &held), DLOCK_OK);
    IT_RC(wc, dlock_multi_wait_async(wc, names, 2, 3000, 10000, on_done, &m, NULL), DLOCK_OK);
    queued(wc, "dlock:{ra}:q");
    IT_RC(c, dlock_release(held), DLOCK_OK);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{ra}"), 0);
    drive(wc, &m);
    printf("multi waiter after a release at max: %s\n", dlock_err_name(m.status));
    TH_EQ_INT(m.status, DLOCK_ESERVER);
    TH_EQ_INT(th_server_int(g_s, "EXISTS %s", "dlock:{rb}"), 0);
    dlock_lock_free(held);
}

int main(void) {
    th_test_init(50);
    g_s = th_server_start(NULL);
    TH_CHECK(g_s != NULL);
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(th_server_url(g_s), &o);
    dlock_client *wc = it_client(th_server_url(g_s), &o);
    sem_direct(c);
    rw_direct(c);
    multi_direct(c);
    admitted(c, wc);
    at_max(c);
    release_at_max(c, wc);
    dlock_client_free(wc);
    dlock_client_free(c);
    th_server_free(g_s);
    IT_PASS("test_kind_fences");
    return 0;
}

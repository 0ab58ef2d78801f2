/* test_fence_int64.c - issue 10 §4, "Fences above 2^53".
 *
 * Fences are 64-bit integers, but Lua numbers are doubles: the scripts lost
 * precision above 2^53 (fences repeated, the hash stored "9.007...e+15")
 * and at 2^63-1 the acquire returned fence 0 ("fencing off") and stored
 * "9.22e+18", after which every acquire failed. Fences must stay exact end
 * to end (direct grant, hand-over to a waiter, inspect, Redlock's FENCE),
 * and the end of the counter must be a clear error that changes nothing.
 * The counter is set near the limits with SET, as a long-lived deployment
 * (or a hostile store) would have it. */
#include <inttypes.h>

#include "itest.h"

#define P53 9007199254740992LL /* 2^53 */
#define MAX63 INT64_MAX

static int64_t str_i64(th_server *s, const char *fmt, const char *key) {
    redisReply *r = th_server_cmd(s, fmt, key);
    TH_CHECK(r != NULL);
    if (r->type != REDIS_REPLY_STRING)
        TH_FAIL("%s %s: not a string (type %d)", fmt, key, r->type);
    char *end;
    long long v = strtoll(r->str, &end, 10);
    if (*end != '\0')
        TH_FAIL("%s of %s is '%s', not an exact integer", fmt, key, r->str);
    freeReplyObject(r);
    return v;
}

static void set_counter(th_server *s, const char *key, int64_t v) {
    redisReply *r = th_server_cmd(s, "SET %s %lld", key, (long long)v);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static int64_t fence_of(dlock_lock *l) {
    dlock_info i;
    TH_EQ_INT(dlock_info_get(l, &i), DLOCK_OK);
    return i.fence;
}

/* Direct grants just below and above 2^53: each fence is the counter, +1. */
static void direct(dlock_client *c, th_server *s) {
    set_counter(s, "dlock:{big}:fence", P53 - 3);
    for (int64_t want = P53 - 2; want <= P53 + 3; want++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, "big", 10000, &l), DLOCK_OK);
        int64_t got = fence_of(l);
        printf("direct: fence %" PRId64 " (want %" PRId64 ")\n", got, want);
        TH_EQ_INT(got, want);
        TH_EQ_INT(str_i64(s, "GET %s", "dlock:{big}:fence"), want);
        redisReply *r = th_server_cmd(s, "HGET %s f", "dlock:{big}");
        TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
        TH_EQ_INT(strtoll(r->str, NULL, 10), want);
        char w[24];
        snprintf(w, sizeof w, "%" PRId64, want);
        TH_EQ_STR(r->str, w); /* exactly, not 9.007e+15 */
        freeReplyObject(r);
        dlock_holder h;
        IT_RC(c, dlock_inspect(c, "big", &h), DLOCK_OK);
        TH_EQ_INT(h.fence, want);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
}

static void on_done(const dlock_result *r, void *ud) {
    dlock_lock **out = ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("async wait: %s (%s)", dlock_err_name(r->status), r->detail);
    *out = r->lock;
}

/* A release hands the lock to a queued waiter with the next fence. */
static void handover(dlock_client *c, dlock_client *w, th_server *s) {
    set_counter(s, "dlock:{ho}:fence", P53 + 1);
    dlock_lock *held = NULL, *got = NULL;
    IT_RC(c, dlock_try_acquire(c, "ho", 10000, &held), DLOCK_OK);
    TH_EQ_INT(fence_of(held), P53 + 2);
    IT_RC(w, dlock_wait_async(w, "ho", 5000, 10000, on_done, &got, NULL), DLOCK_OK);
    long long end = th_now_us() + 5000000;
    while (th_server_int(s, "ZCARD %s", "dlock:{ho}:q") < 1 && th_now_us() < end)
        dlock_client_process(w), th_sleep_ms(1);
    IT_RC(c, dlock_release(held), DLOCK_OK);
    while (got == NULL && th_now_us() < end)
        dlock_client_process(w), th_sleep_ms(1);
    TH_CHECK(got != NULL);
    printf("hand-over: fence %" PRId64 " (want %" PRId64 ")\n", fence_of(got), (int64_t)(P53 + 3));
    TH_EQ_INT(fence_of(got), P53 + 3);
    TH_EQ_INT(str_i64(s, "HGET %s f", "dlock:{ho}"), P53 + 3);
    IT_RC(w, dlock_release(got), DLOCK_OK);
    dlock_lock_free(held);
    dlock_lock_free(got);
}

/* The last fence, then a clear error that leaves everything as it was. */
static void at_max(dlock_client *c, th_server *s) {
    set_counter(s, "dlock:{max}:fence", MAX63 - 1);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "max", 10000, &l), DLOCK_OK);
    printf("at max: fence %" PRId64 "\n", fence_of(l));
    TH_EQ_INT(fence_of(l), MAX63);
    TH_EQ_INT(str_i64(s, "HGET %s f", "dlock:{max}"), MAX63);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    l = NULL;
    int rc = dlock_try_acquire(c, "max", 10000, &l);
    printf("past max: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ESERVER);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_FENCEMAX);
    TH_CHECK(l == NULL);
    TH_CHECK(strstr(dlock_client_errstr(c), "2^63-1") != NULL);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{max}"), 0);
    TH_EQ_INT(str_i64(s, "GET %s", "dlock:{max}:fence"), MAX63);
    /* A wait does not retry it: the counter cannot move by itself. */
    long long t0 = th_now_us();
    TH_EQ_INT(dlock_wait(c, "max", 3000, 10000, &l), DLOCK_ESERVER);
    TH_CHECK(th_now_us() - t0 < 1000000);
}

/* Redlock: every server's counter near 2^53 (and at the end). */
static void redlock(th_server **s) {
    char url[512];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(s[0]), th_server_port(s[1]), th_server_port(s[2]));
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(url, &o);
    for (int i = 0; i < 3; i++)
        set_counter(s[i], "dlock:{rl}:fence", P53 + i);
    /* Each granting server INCRs its own counter (P53+1..P53+3): they
     * disagree, so the client writes the max + 1 to all; from then on the
     * counters agree and each INCR is the fence. */
    for (int64_t want = P53 + 4; want <= P53 + 6; want++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, "rl", 10000, &l), DLOCK_OK);
        printf("redlock: fence %" PRId64 " (want %" PRId64 ")\n", fence_of(l), want);
        TH_EQ_INT(fence_of(l), want);
        for (int i = 0; i < 3; i++)
            TH_EQ_INT(str_i64(s[i], "GET %s", "dlock:{rl}:fence"), want);
        dlock_holder h;
        IT_RC(c, dlock_inspect(c, "rl", &h), DLOCK_OK);
        TH_EQ_INT(h.fence, want);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    for (int i = 0; i < 3; i++)
        set_counter(s[i], "dlock:{rlmax}:fence", MAX63);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "rlmax", 10000, &l);
    printf("redlock past max: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    /* Every server refuses the grant (its INCR would pass 2^63-1): no
     * majority, with the servers' code, as for any refusal by a majority. */
    TH_EQ_INT(rc, DLOCK_ENOQUORUM);
    TH_EQ_INT(dlock_client_errcode(c), DLOCK_SRV_FENCEMAX);
    for (int i = 0; i < 3; i++) {
        TH_EQ_INT(th_server_int(s[i], "EXISTS %s", "dlock:{rlmax}"), 0);
        TH_EQ_INT(str_i64(s[i], "GET %s", "dlock:{rlmax}:fence"), MAX63);
    }
    dlock_client_free(c);
}

int main(void) {
    th_test_init(60);
    th_server *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = th_server_start(NULL);
        TH_CHECK(s[i] != NULL);
    }
    dlock_options o;
    it_options(&o, 1000, 1000);
    dlock_client *c = it_client(th_server_url(s[0]), &o);
    dlock_client *w = it_client(th_server_url(s[0]), &o);
    direct(c, s[0]);
    handover(c, w, s[0]);
    at_max(c, s[0]);
    redlock(s);
    dlock_client_free(w);
    dlock_client_free(c);
    for (int i = 0; i < 3; i++)
        th_server_free(s[i]);
    IT_PASS("test_fence_int64");
    return 0;
}

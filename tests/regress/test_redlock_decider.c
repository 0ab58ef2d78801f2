/* test_redlock_decider.c - issue 9, "Redlock false loss".
 *
 * Three servers A, B, C; B sits behind the fault proxy. The lock is acquired
 * on all three, then its key is deleted on C directly and B is made slow
 * (proxy latency) while A and C answer at once. A and B, a majority, still
 * hold the lock with our token, so:
 *   1. dlock_extend returns DLOCK_OK and dlock_held stays 1 (A and B extend);
 *   2. dlock_inspect and dlock_is_locked report the lock held;
 *   3. a kept-alive lock in the same layout is not reported lost.
 * A decider that settles on "any majority of replies" stops at A's 1 and
 * C's 0 and cuts B off: extend then reports ENOTHELD (the handle is marked
 * lost) and inspect reports the lock free.
 *
 * Deterministic: B's round trip is at least 2 * LAT_MS (the proxy delays
 * each direction), A and C answer in well under a millisecond, and the
 * settled call waits for stragglers only as long as the majority took. Every
 * check runs; the test fails at the end if any failed.
 */
#include <stdatomic.h>
#include <string.h>

#include "itest.h"

#define LAT_MS 80  /* proxy latency in front of B, each direction */
#define CMD_MS 1000

static int g_failed;

#define SOFT(cond, ...)                                                    \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);        \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            g_failed++;                                                    \
        }                                                                  \
    } while (0)

/* Delete every key of lock `name` (default prefix "dlock:") on s. */
static void del_lock_keys(th_server *s, const char *name) {
    redisReply *r = th_server_cmd(s, "DEL dlock:{%s} dlock:{%s}:fence dlock:{%s}:q dlock:{%s}:qi",
                                  name, name, name, name);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
}

static long long pttl(th_server *s, const char *name) {
    return th_server_int(s, "PTTL dlock:{%s}", name);
}

static _Atomic int g_extended, g_lost;

static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (strcmp(ev->name, "rd-ka") != 0)
        return;
    if (ev->type == DLOCK_EV_EXTENDED)
        atomic_fetch_add(&g_extended, 1);
    else if (ev->type == DLOCK_EV_LOST)
        atomic_fetch_add(&g_lost, 1);
}

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)ud;
    fprintf(stderr, "on_lost(rd-ka): %s\n", dlock_err_name(status));
}

/* Acquire `name` on all three servers (proxy passing), then remove it from
 * C and make B slow. */
static dlock_lock *setup(dlock_client *c, th_server *sv[3], th_proxy *p, const char *name,
                         int64_t ttl) {
    th_proxy_set(p, TH_PASS, 0);
    for (int i = 0; i < 3; i++)
        it_cache_scripts(sv[i]); /* no NOSCRIPT: every server gets the lock */
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, ttl, &l), DLOCK_OK);
    /* The acquire settles once a majority granted: the third copy may
     * still be on its way. */
    long long until = th_now_us() + 2000000;
    for (int i = 0; i < 3; i++)
        while (pttl(sv[i], name) <= 0 && th_now_us() < until)
            th_sleep_ms(2);
    for (int i = 0; i < 3; i++)
        TH_CHECK(pttl(sv[i], name) > 0);
    del_lock_keys(sv[2], name);
    TH_EQ_INT(pttl(sv[2], name), -2);
    th_proxy_set(p, TH_LATENCY, LAT_MS);
    return l;
}

static void check_extend_and_inspect(dlock_client *c, th_server *sv[3], th_proxy *p) {
    const char *name = "rd";
    dlock_lock *l = setup(c, sv, p, name, 10000);
    long long b_before = pttl(sv[1], name);

    long long t0 = th_now_us();
    int rc = dlock_extend(l, 20000);
    long long took = th_now_us() - t0;
    long long a_after = pttl(sv[0], name), b_after = pttl(sv[1], name);
    printf("extend: %s in %.1f ms (detail '%s'); PTTL A %lld, B %lld (before %lld), C %lld; "
           "held %d\n",
           dlock_err_name(rc), took / 1000.0, dlock_client_errstr(c), a_after, b_after,
           b_before, pttl(sv[2], name), dlock_held(l));
    /* The servers agree: A and B did extend to 20 s. */
    TH_CHECK(a_after > 10000);
    SOFT(rc == DLOCK_OK, "dlock_extend returned %s, want DLOCK_OK: A and B (a majority) "
                         "hold our token; the call settled on A's 1 and C's 0 (PTTL A %lld, "
                         "B %lld: B's extend was cut off)",
         dlock_err_name(rc), a_after, b_after);
    /* An OK extend has B's answer: B's lease is the new one. */
    SOFT(rc != DLOCK_OK || b_after > 10000, "extend OK but B's PTTL is %lld", b_after);
    SOFT(dlock_held(l) == 1, "dlock_held is 0 after an extend that a majority performed");

    dlock_holder h;
    t0 = th_now_us();
    rc = dlock_inspect(c, name, &h);
    took = th_now_us() - t0;
    printf("inspect: %s in %.1f ms: locked %d, pttl %lld\n", dlock_err_name(rc), took / 1000.0,
           h.locked, (long long)h.pttl_ms);
    SOFT(rc == DLOCK_OK && h.locked == 1,
         "dlock_inspect says locked=%d (rc %s), want 1: A and B hold it", h.locked,
         dlock_err_name(rc));
    int locked = -1;
    int64_t ms = 0;
    rc = dlock_is_locked(c, name, &locked, &ms);
    printf("is_locked: %s: locked %d, pttl %lld\n", dlock_err_name(rc), locked, (long long)ms);
    SOFT(rc == DLOCK_OK && locked == 1, "dlock_is_locked says locked=%d (rc %s), want 1",
         locked, dlock_err_name(rc));
    th_proxy_set(p, TH_PASS, 0);
    dlock_release(l);
    dlock_lock_free(l);
}

/* The keepalive in the same layout: rounds must keep succeeding. */
static void check_keepalive(dlock_client *c, th_server *sv[3], th_proxy *p) {
    const char *name = "rd-ka";
    dlock_lock *l = setup(c, sv, p, name, 3000);
    IT_RC(c, dlock_keepalive_start(l, 300, on_lost, NULL), DLOCK_OK);
    /* Four keepalive rounds (EXTENDED events from the keepalive thread), or
     * a loss, whichever comes first; bounded by 10 s. */
    long long deadline = th_now_us() + 10 * 1000000LL;
    while (atomic_load(&g_extended) < 4 && atomic_load(&g_lost) == 0 && th_now_us() < deadline)
        th_sleep_ms(10);
    printf("keepalive: %d extensions, %d losses, held %d\n", atomic_load(&g_extended),
           atomic_load(&g_lost), dlock_held(l));
    SOFT(atomic_load(&g_lost) == 0 && dlock_held(l) == 1,
         "keepalive reported the lock lost (held %d) while A and B hold it", dlock_held(l));
    SOFT(atomic_load(&g_extended) >= 4, "keepalive made only %d extensions in 10 s",
         atomic_load(&g_extended));
    dlock_keepalive_stop(l);
    th_proxy_set(p, TH_PASS, 0);
    dlock_release(l);
    dlock_lock_free(l);
}

int main(void) {
    th_test_init(50);
    th_server *sv[3];
    for (int i = 0; i < 3; i++) {
        sv[i] = th_server_start(NULL);
        TH_CHECK(sv[i] != NULL);
    }
    th_proxy *p = th_proxy_start(th_server_port(sv[1]));
    TH_CHECK(p != NULL);
    char url[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(sv[0]), th_proxy_port(p), th_server_port(sv[2]));
    dlock_options o;
    it_options(&o, 1000, CMD_MS);
    o.on_event = on_event;
    dlock_client *c = it_client(url, &o);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);

    check_keepalive(c, sv, p);
    check_extend_and_inspect(c, sv, p);

    dlock_client_free(c);
    th_proxy_stop(p);
    if (g_failed) {
        fprintf(stderr, "test_redlock_decider: %d check(s) failed\n", g_failed);
        return 1;
    }
    IT_PASS("test_redlock_decider");
    return 0;
}

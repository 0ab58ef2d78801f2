/* test_replica_gate.c - issue 10 §4, "The replica gate".
 *
 * With ?replicas=1 and no replica connected, every acquire took the lock,
 * found that no replica acknowledged it (WAIT), released it and reported
 * DLOCK_EBUSY ("held by another owner"); a wait retried that at once,
 * forever, and every round burnt a fence. Now:
 *   - the outcome is its own status, DLOCK_ENOREPLICAS, with a detail that
 *     names the replicas, and nothing is held afterwards;
 *   - dlock_wait keeps trying until its deadline, but only once a WAIT shows
 *     the replicas are back: no fence is burnt meanwhile, and the call ends
 *     at its deadline with DLOCK_ENOREPLICAS;
 *   - a replica that connects during the wait lets it succeed;
 *   - replica_timeout_ms = 0 (WAIT without a timeout) is bounded by the
 *     call's deadline, and the URL and the options accept the same limits.
 */
#include <inttypes.h>

#include "itest.h"

static int64_t fence_counter(th_server *s, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "dlock:{%s}:fence", name);
    redisReply *r = th_server_cmd(s, "GET %s", key);
    TH_CHECK(r != NULL);
    int64_t v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static dlock_client *gated(th_server *s, int replica_timeout_ms, const char *query) {
    dlock_options o;
    it_options(&o, 1000, 1000);
    o.replicas = 1;
    o.replica_timeout_ms = replica_timeout_ms;
    char url[200];
    snprintf(url, sizeof url, "%s%s", th_server_url(s), query ? query : "");
    return it_client(url, &o);
}

static void no_replica(th_server *s) {
    dlock_client *c = gated(s, 50, NULL);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "g", 10000, &l);
    printf("try: %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
    TH_CHECK(strstr(dlock_client_errstr(c), "0 of 1 replica") != NULL);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{g}"), 0);
    int64_t f0 = fence_counter(s, "g");
    long long t0 = th_now_us();
    rc = dlock_wait(c, "g", 1500, 10000, &l);
    long long ms = (th_now_us() - t0) / 1000;
    printf("wait 1500 ms: %s after %lld ms, fences burnt %" PRId64 ": %s\n", dlock_err_name(rc),
           ms, fence_counter(s, "g") - f0, dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
    TH_CHECK(ms >= 1400 && ms < 1500 + 1000 + 300);
    TH_CHECK(fence_counter(s, "g") - f0 <= 1);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{g}"), 0);
    dlock_client_free(c);
}

/* replica_timeout_ms = 0: WAIT with no timeout of its own, cut at the
 * call's deadline (and the URL takes 0 too). */
static void zero_timeout(th_server *s) {
    const char *q[2] = {NULL, "?replica_timeout=0"};
    for (int i = 0; i < 2; i++) {
        dlock_client *c = gated(s, i == 0 ? 0 : 100, q[i]);
        dlock_lock *l = NULL;
        long long t0 = th_now_us();
        int rc = dlock_wait(c, "z", 800, 10000, &l);
        long long ms = (th_now_us() - t0) / 1000;
        printf("replica_timeout 0 (%s): %s after %lld ms: %s\n", i ? "URL" : "options",
               dlock_err_name(rc), ms, dlock_client_errstr(c));
        TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
        TH_CHECK(ms >= 700 && ms < 800 + 1000 + 300);
        t0 = th_now_us();
        rc = dlock_try_acquire(c, "z", 10000, &l);
        ms = (th_now_us() - t0) / 1000;
        printf("  try: %s after %lld ms\n", dlock_err_name(rc), ms);
        TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
        TH_CHECK(ms < 1000 + 1000 + 300);
        dlock_client_free(c);
    }
}

/* The same limits for the options and the URL. */
static void limits(th_server *s) {
    struct {
        int replicas, timeout;
        const char *query;
        int want;
    } cases[] = {
        {1, 3600000, NULL, DLOCK_OK},          {1, 3600001, NULL, DLOCK_EINVAL},
        {100, 100, NULL, DLOCK_OK},            {101, 100, NULL, DLOCK_EINVAL},
        {0, 100, "?replicas=100", DLOCK_OK},   {0, 100, "?replicas=101", DLOCK_EINVAL},
        {0, 100, "?replica_timeout=3600000", DLOCK_OK},
        {0, 100, "?replica_timeout=3600001", DLOCK_EINVAL},
        {0, -1, NULL, DLOCK_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dlock_options o;
        it_options(&o, 1000, 1000);
        o.replicas = cases[i].replicas;
        o.replica_timeout_ms = cases[i].timeout;
        char url[200];
        snprintf(url, sizeof url, "%s%s", th_server_url(s), cases[i].query ? cases[i].query : "");
        dlock_client *c = NULL;
        int rc = dlock_client_new(&c, url, &o);
        if (rc != cases[i].want)
            TH_FAIL("case %zu (replicas %d, timeout %d, %s): %s, want %s: %s", i,
                    cases[i].replicas, cases[i].timeout, url, dlock_err_name(rc),
                    dlock_err_name(cases[i].want), dlock_client_errstr(c));
        dlock_client_free(c);
    }
}

static void on_done(const dlock_result *r, void *ud) {
    int *st = ud;
    *st = r->status;
    if (r->status == DLOCK_OK)
        dlock_lock_free(r->lock);
    else
        printf("async wait: %s: %s\n", dlock_err_name(r->status), r->detail);
}

/* A replica that connects during the wait lets it through. */
static void replica_arrives(th_server *s) {
    dlock_client *c = gated(s, 200, NULL);
    int st = 1;
    int64_t f0 = fence_counter(s, "r");
    TH_EQ_INT(dlock_wait_async(c, "r", 15000, 10000, on_done, &st, NULL), DLOCK_OK);
    long long until = th_now_us() + 700000;
    while (th_now_us() < until)
        dlock_client_process(c), th_sleep_ms(2);
    TH_EQ_INT(st, 1);
    printf("fences burnt while no replica: %" PRId64 "\n", fence_counter(s, "r") - f0);
    TH_CHECK(fence_counter(s, "r") - f0 <= 1);
    char port[16];
    snprintf(port, sizeof port, "%d", th_server_port(s));
    const char *args[] = {"--replicaof", "127.0.0.1", port, NULL};
    th_server *rep = th_server_start(args);
    TH_CHECK(rep != NULL);
    long long t0 = th_now_us();
    until = t0 + 14000000;
    while (st == 1 && th_now_us() < until)
        dlock_client_process(c), th_sleep_ms(2);
    TH_EQ_INT(st, DLOCK_OK);
    printf("acquired %lld ms after the replica started\n", (th_now_us() - t0) / 1000);
    dlock_client_free(c);
    th_server_free(rep);
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    limits(s);
    no_replica(s);
    zero_timeout(s);
    replica_arrives(s);
    th_server_free(s);
    IT_PASS("test_replica_gate");
    return 0;
}

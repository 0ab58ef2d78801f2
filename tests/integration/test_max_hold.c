/* test_max_hold.c - opts.max_hold_ms: keepalive stops extending once a lock
 * has been held that long and reports it lost with DLOCK_EMAXHOLD (also as
 * an event); the lease is not released but runs out by itself; dlock_extend
 * and dlock_keepalive_start refuse; the option is checked. */
#include <stdatomic.h>
#include <time.h>

#include "itest.h"

static atomic_int lost_calls, lost_status, lost_events, lost_event_status;
static _Atomic long long lost_at, lost_expires_at, lost_now_wall;

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)ud;
    TH_CHECK(!dlock_held(l));
    dlock_info info;
    dlock_info_get(l, &info);
    atomic_store(&lost_expires_at, info.expires_at);
    atomic_store(&lost_now_wall, (long long)time(NULL) * 1000);
    atomic_store(&lost_status, status);
    atomic_store(&lost_at, th_now_us());
    atomic_fetch_add(&lost_calls, 1);
}

static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    if (ev->type == DLOCK_EV_LOST) {
        atomic_store(&lost_event_status, ev->status);
        atomic_fetch_add(&lost_events, 1);
    }
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_options o;
    dlock_options_init(&o);
    TH_EQ_INT(o.max_hold_ms, 0);
    dlock_client *bad = NULL;
    o.max_hold_ms = -1;
    TH_EQ_INT(dlock_client_new(&bad, th_server_url(s), &o), DLOCK_EINVAL);
    TH_CHECK(strstr(dlock_client_errstr(bad), "max_hold_ms") != NULL);
    dlock_client_free(bad);

    o.max_hold_ms = 1200;
    o.on_event = on_event;
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire(c, "mh", 600, &l), DLOCK_OK);
    IT_RC(c, dlock_keepalive_start(l, 150, on_lost, NULL), DLOCK_OK);
    /* Kept past its ttl (600 ms) by keepalive, up to the limit. */
    th_sleep_ms(900);
    TH_CHECK(dlock_held(l));
    IT_RC(c, dlock_extend(l, 600), DLOCK_OK);
    while (atomic_load(&lost_calls) == 0 && th_now_us() - t0 < 5000000)
        th_sleep_ms(5);
    TH_EQ_INT(atomic_load(&lost_calls), 1);
    long long at_ms = (atomic_load(&lost_at) - t0) / 1000;
    printf("reported lost after %lld ms (max_hold_ms 1200), status %s\n", at_ms,
           dlock_err_name(atomic_load(&lost_status)));
    TH_EQ_INT(atomic_load(&lost_status), DLOCK_EMAXHOLD);
    TH_CHECK(at_ms >= 1200 && at_ms < 1200 + 300);
    TH_EQ_INT(atomic_load(&lost_events), 1);
    TH_EQ_INT(atomic_load(&lost_event_status), DLOCK_EMAXHOLD);
    /* Not released: the lease is still there, and expires_at says when it ends. */
    TH_CHECK(!dlock_held(l));
    long long pttl = th_server_int(s, "PTTL %s", "dlock:{mh}");
    printf("lease left on the server at the report: %lld ms\n", pttl);
    TH_CHECK(pttl > 0 && pttl <= 600);
    TH_CHECK(atomic_load(&lost_expires_at) > atomic_load(&lost_now_wall) - 1000);
    IT_RC(c, dlock_extend(l, 600), DLOCK_EMAXHOLD);
    TH_CHECK(strstr(dlock_client_errstr(c), "max_hold_ms") != NULL);
    IT_RC(c, dlock_keepalive_start(l, 100, on_lost, NULL), DLOCK_ENOTHELD);
    /* It runs out by itself within one ttl. */
    long long end = th_now_us() + 2000000;
    while (th_server_int(s, "EXISTS %s", "dlock:{mh}") != 0 && th_now_us() < end)
        th_sleep_ms(10);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{mh}"), 0);
    dlock_lock_free(l);

    /* A limit already reached when keepalive would start: refused. */
    IT_RC(c, dlock_try_acquire(c, "mh2", 5000, &l), DLOCK_OK);
    th_sleep_ms(1300);
    IT_RC(c, dlock_keepalive_start(l, 100, on_lost, NULL), DLOCK_EMAXHOLD);
    IT_RC(c, dlock_extend(l, 5000), DLOCK_EMAXHOLD);
    IT_RC(c, dlock_release(l), DLOCK_OK); /* still ours: release works */
    dlock_lock_free(l);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_max_hold");
    return 0;
}

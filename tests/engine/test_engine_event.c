/* test_engine_event.c - the libevent adapter: the scenario of scenario.h
 * run by event_base_dispatch, which must return by itself once nothing is
 * in flight. */
#include "dlock/adapters/libevent.h"
#include "scenario.h"

static void on_ev_timer(evutil_socket_t fd, short what, void *ud) {
    (void)fd;
    (void)what;
    (void)ud;
    sc_timer_fired();
}

int main(void) {
    th_test_init(60);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *c = it_client(th_server_url(s), NULL);
    struct event_base *base = event_base_new();
    TH_CHECK(base != NULL);
    dlock_libevent *a = NULL;
    IT_RC(c, dlock_libevent_attach(base, c, &a), DLOCK_OK);
    TH_EQ_INT(event_base_dispatch(base), 1); /* nothing pending: returns at once */
    sc_start_waits(c);
    event_base_dispatch(base);
    sc_check_waits();

    IT_RC(c, dlock_try_acquire_async(c, "kept", 500, sc_on_kept, NULL, NULL), DLOCK_OK);
    struct event *t = evtimer_new(base, on_ev_timer, NULL);
    struct timeval tv = {1, 500000};
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    TH_CHECK(sc_kept_released);
    TH_EQ_INT(th_server_int(s, "EXISTS %s", "dlock:{kept}"), 0);
    dlock_lock_free(sc_kept);
    event_free(t);
    dlock_libevent_detach(a);
    event_base_free(base);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_event");
    return 0;
}

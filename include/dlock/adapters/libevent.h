/* dlock/adapters/libevent.h - drive a dlock client's engine from a
 * libevent event_base.
 *
 *     dlock_libevent *a;
 *     dlock_libevent_attach(base, client, &a);
 *     dlock_wait_async(client, "job", 5000, 30000, on_done, NULL, NULL);
 *     event_base_dispatch(base);
 *     dlock_libevent_detach(a);          // before dlock_client_free
 *
 * One persistent read event on dlock_client_fd() and one timer following
 * dlock_client_timeout(). Both are pending only while the client has
 * operations (or kept-alive locks) in flight, so event_base_dispatch
 * returns once everything is done. Header-only; link with libevent. Same
 * thread as the base.
 */
#ifndef DLOCK_ADAPTERS_LIBEVENT_H
#define DLOCK_ADAPTERS_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include "../../dlock.h"

typedef struct dlock_libevent {
    struct event *rd;
    struct event *tm;
    dlock_client *c;
} dlock_libevent;

static inline void dlock_libevent_rearm_(dlock_libevent *a, int in_flight) {
    if (in_flight <= 0) {
        event_del(a->rd);
        event_del(a->tm);
        return;
    }
    event_add(a->rd, NULL);
    int64_t t = dlock_client_timeout(a->c);
    if (t < 0) {
        event_del(a->tm);
    } else {
        struct timeval tv = {(time_t)(t / 1000), (suseconds_t)(t % 1000) * 1000};
        event_add(a->tm, &tv);
    }
}

static inline void dlock_libevent_on_ready_(evutil_socket_t fd, short what, void *ud) {
    (void)fd;
    (void)what;
    dlock_libevent *a = (dlock_libevent *)ud;
    dlock_libevent_rearm_(a, dlock_client_process(a->c));
}

static inline void dlock_libevent_on_notify_(dlock_client *c, void *ud) {
    (void)c;
    dlock_libevent_rearm_((dlock_libevent *)ud, 1);
}

/* Attach client c to base. Returns DLOCK_OK, DLOCK_ENOMEM, or DLOCK_EIO
 * (no engine fd: dlock_client_errstr says why). *out is freed by
 * dlock_libevent_detach. */
static inline int dlock_libevent_attach(struct event_base *base, dlock_client *c,
                                     dlock_libevent **out) {
    int fd = dlock_client_fd(c);
    if (fd < 0)
        return DLOCK_EIO;
    dlock_libevent *a = (dlock_libevent *)calloc(1, sizeof *a);
    if (a == NULL)
        return DLOCK_ENOMEM;
    a->c = c;
    a->rd = event_new(base, fd, EV_READ | EV_PERSIST, dlock_libevent_on_ready_, a);
    a->tm = evtimer_new(base, dlock_libevent_on_ready_, a);
    if (a->rd == NULL || a->tm == NULL) {
        if (a->rd != NULL)
            event_free(a->rd);
        if (a->tm != NULL)
            event_free(a->tm);
        free(a);
        return DLOCK_ENOMEM;
    }
    dlock_client_set_notify(c, dlock_libevent_on_notify_, a);
    dlock_libevent_rearm_(a, dlock_client_process(c));
    *out = a;
    return DLOCK_OK;
}

/* Detach and free the adapter. Call before dlock_client_free. */
static inline void dlock_libevent_detach(dlock_libevent *a) {
    if (a == NULL)
        return;
    dlock_client_set_notify(a->c, NULL, NULL);
    event_free(a->rd);
    event_free(a->tm);
    free(a);
}

#endif

/* dlock/adapters/libevent.h - drive a dlock client's engine from a
 * libevent event_base.
 *
 *     dlock_libevent *a;
 *     dlock_libevent_attach(base, client, &a);
 *     dlock_wait_async(client, "job", 5000, 30000, on_done, NULL, NULL);
 *     event_base_dispatch(base);
 *     dlock_libevent_detach(a);          // before dlock_client_free
 *
 * One persistent event per socket the client uses
 * (dlock_client_set_socket_fn: a ready socket wakes the base straight, with
 * no epoll descriptor in between) and one timer following
 * dlock_client_timeout(). They are pending only while the client has
 * operations (or kept-alive locks) in flight, so event_base_dispatch
 * returns once everything is done. Header-only; link with libevent. Same
 * thread as the base.
 */
#ifndef DLOCK_ADAPTERS_LIBEVENT_H
#define DLOCK_ADAPTERS_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include "../../dlock.h"

typedef struct dlock_libevent dlock_libevent;

/* One watched socket and what the client wants of it. */
typedef struct dlock_libevent_sock_ {
    struct event *ev;
    dlock_libevent *a;
    int fd;
    int want; /* DLOCK_READABLE | DLOCK_WRITABLE */
    struct dlock_libevent_sock_ *next;
} dlock_libevent_sock_;

struct dlock_libevent {
    struct event_base *base;
    struct event *tm;
    dlock_client *c;
    dlock_libevent_sock_ *socks;
    int pending; /* the events are added (work in flight) */
};

static inline void dlock_libevent_rearm_(dlock_libevent *a, int in_flight) {
    int on = in_flight > 0;
    if (on != a->pending) {
        a->pending = on;
        for (dlock_libevent_sock_ *s = a->socks; s != NULL; s = s->next) {
            if (on)
                event_add(s->ev, NULL);
            else
                event_del(s->ev);
        }
    }
    int64_t t = on ? dlock_client_timeout(a->c) : -1;
    if (t < 0) {
        event_del(a->tm);
    } else {
        struct timeval tv = {(time_t)(t / 1000), (suseconds_t)(t % 1000) * 1000};
        event_add(a->tm, &tv);
    }
}

static inline void dlock_libevent_on_sock_(evutil_socket_t fd, short what, void *ud) {
    dlock_libevent *a = ((dlock_libevent_sock_ *)ud)->a;
    int ev = (what & EV_READ ? DLOCK_READABLE : 0) | (what & EV_WRITE ? DLOCK_WRITABLE : 0);
    /* The socket's entry may be freed during the call. */
    dlock_libevent_rearm_(a, dlock_client_process_fd(a->c, (int)fd, ev));
}

static inline void dlock_libevent_on_timer_(evutil_socket_t fd, short what, void *ud) {
    (void)fd;
    (void)what;
    dlock_libevent *a = (dlock_libevent *)ud;
    dlock_libevent_rearm_(a, dlock_client_process(a->c));
}

static inline void dlock_libevent_drop_(dlock_libevent_sock_ *s) {
    event_free(s->ev); /* deletes it first */
    free(s);
}

/* The client's socket function: watch fd for events, or stop (0). */
static inline void dlock_libevent_on_socket_(dlock_client *c, int fd, int events, void *ud) {
    (void)c;
    dlock_libevent *a = (dlock_libevent *)ud;
    dlock_libevent_sock_ **pp = &a->socks;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    dlock_libevent_sock_ *s = *pp;
    if (s != NULL && (events == 0 || events != s->want)) {
        *pp = s->next; /* libevent cannot change an event's kind: a new one */
        dlock_libevent_drop_(s);
        s = NULL;
    }
    if (events == 0 || s != NULL)
        return;
    s = (dlock_libevent_sock_ *)calloc(1, sizeof *s);
    if (s == NULL)
        return; /* unwatched: its requests time out and fail */
    short what = (short)((events & DLOCK_READABLE ? EV_READ : 0) |
                         (events & DLOCK_WRITABLE ? EV_WRITE : 0) | EV_PERSIST);
    s->ev = event_new(a->base, fd, what, dlock_libevent_on_sock_, s);
    if (s->ev == NULL) {
        free(s);
        return;
    }
    s->a = a;
    s->fd = fd;
    s->want = events;
    s->next = a->socks;
    a->socks = s;
    if (a->pending)
        event_add(s->ev, NULL);
}

static inline void dlock_libevent_on_notify_(dlock_client *c, void *ud) {
    (void)c;
    dlock_libevent_rearm_((dlock_libevent *)ud, 1);
}

/* Attach client c to base. Returns DLOCK_OK, DLOCK_ENOMEM, or what
 * dlock_client_set_socket_fn returned (DLOCK_EIO: no engine,
 * dlock_client_errstr says why). *out is freed by dlock_libevent_detach. */
static inline int dlock_libevent_attach(struct event_base *base, dlock_client *c,
                                        dlock_libevent **out) {
    dlock_libevent *a = (dlock_libevent *)calloc(1, sizeof *a);
    if (a == NULL)
        return DLOCK_ENOMEM;
    a->base = base;
    a->c = c;
    a->tm = evtimer_new(base, dlock_libevent_on_timer_, a);
    if (a->tm == NULL) {
        free(a);
        return DLOCK_ENOMEM;
    }
    int rc = dlock_client_set_socket_fn(c, dlock_libevent_on_socket_, a);
    if (rc != DLOCK_OK) {
        event_free(a->tm);
        free(a);
        return rc;
    }
    dlock_client_set_notify(c, dlock_libevent_on_notify_, a);
    dlock_libevent_rearm_(a, dlock_client_process(c));
    *out = a;
    return DLOCK_OK;
}

/* Detach and free the adapter. Call before dlock_client_free, and not
 * from inside one of the client's callbacks. */
static inline void dlock_libevent_detach(dlock_libevent *a) {
    if (a == NULL)
        return;
    dlock_client_set_notify(a->c, NULL, NULL);
    dlock_client_set_socket_fn(a->c, NULL, NULL); /* drops every socket */
    while (a->socks != NULL) { /* none left, unless the client refused */
        dlock_libevent_sock_ *s = a->socks;
        a->socks = s->next;
        dlock_libevent_drop_(s);
    }
    event_free(a->tm);
    free(a);
}

#endif

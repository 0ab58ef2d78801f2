/* dlock/adapters/libuv.h - drive a dlock client's engine from a libuv loop.
 *
 *     dlock_uv *a;
 *     dlock_uv_attach(uv_default_loop(), client, &a);
 *     dlock_wait_async(client, "job", 5000, 30000, on_done, NULL, NULL);
 *     uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *     dlock_uv_detach(a);             // before dlock_client_free
 *
 * One uv_poll_t per socket the client uses (dlock_client_set_socket_fn:
 * a ready socket wakes the loop straight, with no epoll descriptor in
 * between) and a uv_timer_t following dlock_client_timeout(). The handles
 * are referenced only while the client has operations (or kept-alive
 * locks) in flight, so an idle client does not keep the loop alive (what
 * Node.js expects of a socket pool). Header-only; link with libuv. Same
 * thread as the loop.
 */
#ifndef DLOCK_ADAPTERS_LIBUV_H
#define DLOCK_ADAPTERS_LIBUV_H

#include <stdlib.h>

#include <uv.h>

#include "../../dlock.h"

typedef struct dlock_uv dlock_uv;

/* One watched socket. Freed by its close callback, which touches nothing
 * else (the adapter may be gone by then). */
typedef struct dlock_uv_sock_ {
    uv_poll_t poll;
    dlock_uv *a;
    int fd;
    struct dlock_uv_sock_ *next;
} dlock_uv_sock_;

struct dlock_uv {
    uv_loop_t *loop;
    uv_timer_t timer;
    dlock_client *c;
    dlock_uv_sock_ *socks;
    int refd;    /* the handles are referenced (work in flight) */
    int closing; /* detached (from a callback, say): touch no handle */
};

static inline void dlock_uv_on_timer_(uv_timer_t *h);

static inline void dlock_uv_ref_(uv_handle_t *h, int on) {
    if (on)
        uv_ref(h);
    else
        uv_unref(h);
}

static inline void dlock_uv_rearm_(dlock_uv *a, int in_flight) {
    if (a->closing)
        return;
    int64_t t = dlock_client_timeout(a->c);
    if (t < 0)
        uv_timer_stop(&a->timer);
    else
        uv_timer_start(&a->timer, dlock_uv_on_timer_, (uint64_t)t, 0);
    int on = in_flight > 0;
    if (on == a->refd)
        return;
    a->refd = on;
    dlock_uv_ref_((uv_handle_t *)&a->timer, on);
    for (dlock_uv_sock_ *s = a->socks; s != NULL; s = s->next)
        dlock_uv_ref_((uv_handle_t *)&s->poll, on);
}

static inline void dlock_uv_on_poll_(uv_poll_t *h, int status, int events) {
    dlock_uv_sock_ *s = (dlock_uv_sock_ *)h->data;
    dlock_uv *a = s->a;
    int ev = (events & (UV_READABLE | UV_DISCONNECT) ? DLOCK_READABLE : 0) |
             (events & UV_WRITABLE ? DLOCK_WRITABLE : 0);
    if (status < 0) /* an error on the socket: the read or write finds out */
        ev = DLOCK_READABLE | DLOCK_WRITABLE;
    /* s may be closed during the call (the engine drops the socket). */
    dlock_uv_rearm_(a, dlock_client_process_fd(a->c, s->fd, ev));
}

static inline void dlock_uv_on_timer_(uv_timer_t *h) {
    dlock_uv *a = (dlock_uv *)h->data;
    dlock_uv_rearm_(a, dlock_client_process(a->c));
}

static inline void dlock_uv_sock_closed_(uv_handle_t *h) { free(h->data); }

static inline void dlock_uv_drop_(dlock_uv_sock_ *s) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, dlock_uv_sock_closed_);
}

/* The client's socket function: watch fd for events, or stop (0). */
static inline void dlock_uv_on_socket_(dlock_client *c, int fd, int events, void *ud) {
    (void)c;
    dlock_uv *a = (dlock_uv *)ud;
    dlock_uv_sock_ **pp = &a->socks;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    dlock_uv_sock_ *s = *pp;
    if (events == 0) {
        if (s != NULL) {
            *pp = s->next;
            dlock_uv_drop_(s);
        }
        return;
    }
    if (s == NULL) {
        s = (dlock_uv_sock_ *)calloc(1, sizeof *s);
        if (s == NULL)
            return; /* unwatched: its requests time out and fail */
        if (uv_poll_init(a->loop, &s->poll, fd) != 0) {
            free(s);
            return;
        }
        s->a = a;
        s->fd = fd;
        s->poll.data = s;
        s->next = a->socks;
        a->socks = s;
        dlock_uv_ref_((uv_handle_t *)&s->poll, a->refd);
    }
    uv_poll_start(&s->poll,
                  (events & DLOCK_READABLE ? UV_READABLE : 0) |
                      (events & DLOCK_WRITABLE ? UV_WRITABLE : 0),
                  dlock_uv_on_poll_);
}

/* A start or cancel happened: the timeout may be sooner, and there is
 * work in flight. */
static inline void dlock_uv_on_notify_(dlock_client *c, void *ud) {
    (void)c;
    dlock_uv_rearm_((dlock_uv *)ud, 1);
}

static inline void dlock_uv_closed_(uv_handle_t *h) { free(h->data); }

/* Attach client c to loop. Returns DLOCK_OK, DLOCK_ENOMEM, or what
 * dlock_client_set_socket_fn returned (DLOCK_EIO: no engine,
 * dlock_client_errstr says why). *out is freed by dlock_uv_detach. */
static inline int dlock_uv_attach(uv_loop_t *loop, dlock_client *c, dlock_uv **out) {
    dlock_uv *a = (dlock_uv *)calloc(1, sizeof *a);
    if (a == NULL)
        return DLOCK_ENOMEM;
    a->loop = loop;
    a->c = c;
    a->refd = 1;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    int rc = dlock_client_set_socket_fn(c, dlock_uv_on_socket_, a);
    if (rc != DLOCK_OK) {
        uv_close((uv_handle_t *)&a->timer, dlock_uv_closed_);
        return rc;
    }
    dlock_client_set_notify(c, dlock_uv_on_notify_, a);
    dlock_uv_rearm_(a, dlock_client_process(c));
    *out = a;
    return DLOCK_OK;
}

/* Detach: stop watching and free the adapter once libuv has closed its
 * handles (the loop must run once more for that). Call before
 * dlock_client_free. Operations still in flight stay in the client. */
static inline void dlock_uv_detach(dlock_uv *a) {
    if (a == NULL)
        return;
    a->closing = 1;
    dlock_client_set_notify(a->c, NULL, NULL);
    dlock_client_set_socket_fn(a->c, NULL, NULL); /* drops every socket */
    while (a->socks != NULL) { /* none left, unless the client refused */
        dlock_uv_sock_ *s = a->socks;
        a->socks = s->next;
        dlock_uv_drop_(s);
    }
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, dlock_uv_closed_);
}

#endif

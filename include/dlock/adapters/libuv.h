/* dlock/adapters/libuv.h - drive a dlock client's engine from a libuv loop.
 *
 *     dlock_uv *a;
 *     dlock_uv_attach(uv_default_loop(), client, &a);
 *     dlock_wait_async(client, "job", 5000, 30000, on_done, NULL, NULL);
 *     uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *     dlock_uv_detach(a);             // before dlock_client_free
 *
 * A uv_poll_t watches dlock_client_fd() and a uv_timer_t follows
 * dlock_client_timeout(). Both handles are referenced only while the
 * client has operations (or kept-alive locks) in flight, so an idle client
 * does not keep the loop alive (what Node.js expects of a socket pool).
 * Header-only; link with libuv. Same thread as the loop.
 */
#ifndef DLOCK_ADAPTERS_LIBUV_H
#define DLOCK_ADAPTERS_LIBUV_H

#include <stdlib.h>

#include <uv.h>

#include "../../dlock.h"

typedef struct dlock_uv {
    uv_poll_t poll;
    uv_timer_t timer;
    dlock_client *c;
    int closing;
} dlock_uv;

static inline void dlock_uv_on_timer_(uv_timer_t *h);

static inline void dlock_uv_rearm_(dlock_uv *a, int in_flight) {
    if (a->closing)
        return;
    int64_t t = dlock_client_timeout(a->c);
    if (t < 0)
        uv_timer_stop(&a->timer);
    else
        uv_timer_start(&a->timer, dlock_uv_on_timer_, (uint64_t)t, 0);
    if (in_flight > 0) {
        uv_ref((uv_handle_t *)&a->poll);
        uv_ref((uv_handle_t *)&a->timer);
    } else {
        uv_unref((uv_handle_t *)&a->poll);
        uv_unref((uv_handle_t *)&a->timer);
    }
}

static inline void dlock_uv_process_(dlock_uv *a) {
    int n = dlock_client_process(a->c);
    dlock_uv_rearm_(a, n);
}

static inline void dlock_uv_on_poll_(uv_poll_t *h, int status, int events) {
    (void)status;
    (void)events;
    dlock_uv_process_((dlock_uv *)h->data);
}

static inline void dlock_uv_on_timer_(uv_timer_t *h) {
    dlock_uv_process_((dlock_uv *)h->data);
}

/* A start or cancel happened: the timeout may be sooner, and there is
 * work in flight. */
static inline void dlock_uv_on_notify_(dlock_client *c, void *ud) {
    (void)c;
    dlock_uv_rearm_((dlock_uv *)ud, 1);
}

/* Attach client c to loop. Returns DLOCK_OK, DLOCK_ENOMEM, or DLOCK_EIO
 * (no engine fd: dlock_client_errstr says why). *out is freed by
 * dlock_uv_detach. */
static inline int dlock_uv_attach(uv_loop_t *loop, dlock_client *c, dlock_uv **out) {
    int fd = dlock_client_fd(c);
    if (fd < 0)
        return DLOCK_EIO;
    dlock_uv *a = (dlock_uv *)calloc(1, sizeof *a);
    if (a == NULL)
        return DLOCK_ENOMEM;
    a->c = c;
    if (uv_poll_init(loop, &a->poll, fd) != 0) {
        free(a);
        return DLOCK_EIO;
    }
    uv_timer_init(loop, &a->timer);
    a->poll.data = a;
    a->timer.data = a;
    uv_poll_start(&a->poll, UV_READABLE, dlock_uv_on_poll_);
    dlock_client_set_notify(c, dlock_uv_on_notify_, a);
    dlock_uv_rearm_(a, dlock_client_process(c));
    *out = a;
    return DLOCK_OK;
}

static inline void dlock_uv_closed_(uv_handle_t *h) {
    dlock_uv *a = (dlock_uv *)h->data;
    if (++a->closing == 3)
        free(a);
}

/* Detach: stop watching and free the adapter once libuv has closed its
 * handles (the loop must run once more for that). Call before
 * dlock_client_free. Operations still in flight stay in the client. */
static inline void dlock_uv_detach(dlock_uv *a) {
    if (a == NULL)
        return;
    dlock_client_set_notify(a->c, NULL, NULL);
    a->closing = 1;
    uv_poll_stop(&a->poll);
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->poll, dlock_uv_closed_);
    uv_close((uv_handle_t *)&a->timer, dlock_uv_closed_);
}

#endif

/* dlock/adapters/poll.h - drive a dlock client's engine with poll(2).
 *
 * For programs without an event loop of their own, and as the smallest
 * example of what an adapter does: wait for dlock_client_fd() to become
 * readable, or for dlock_client_timeout() to pass, then call
 * dlock_client_process(). Header-only; needs nothing but libc.
 */
#ifndef DLOCK_ADAPTERS_POLL_H
#define DLOCK_ADAPTERS_POLL_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>

#include "../../dlock.h"

/* Only bounds dlock_poll_run's max_ms: C11's timespec_get, so the header
 * needs no feature macro (strict -std=c11 hides clock_gettime). */
static inline int64_t dlock_poll_now_ms_(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One turn: wait up to max_ms (-1: as long as the engine allows) for work,
 * then process it. Returns what dlock_client_process returns (operations
 * still in flight, or a negative status). */
static inline int dlock_poll_once(dlock_client *c, int64_t max_ms) {
    int fd = dlock_client_fd(c);
    if (fd < 0)
        return DLOCK_EIO;
    int64_t t = dlock_client_timeout(c);
    if (t < 0 || (max_ms >= 0 && max_ms < t))
        t = max_ms;
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, t > 1000000 ? 1000000 : (int)t) < 0 && errno != EINTR)
        return DLOCK_EIO;
    return dlock_client_process(c);
}

/* Run until no operation (or kept-alive lock) is in flight, or max_ms has
 * passed (-1: no limit). Returns the number still in flight (0 when all
 * finished), or a negative status. Callbacks run from inside. */
static inline int dlock_poll_run(dlock_client *c, int64_t max_ms) {
    int64_t end = max_ms < 0 ? -1 : dlock_poll_now_ms_() + max_ms;
    for (;;) {
        int64_t left = -1;
        if (end >= 0) {
            left = end - dlock_poll_now_ms_();
            if (left < 0)
                left = 0;
        }
        int n = dlock_poll_once(c, left);
        if (n <= 0 || (end >= 0 && dlock_poll_now_ms_() >= end))
            return n;
    }
}

#endif

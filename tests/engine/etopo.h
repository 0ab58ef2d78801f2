/* etopo.h - helpers for the engine tests on Sentinel and Cluster
 * deployments (built by tests/topology/topo.c): a loop that drives a client
 * the way an event loop does and times every dlock_client_process call,
 * and a wait for a condition on the servers while the loop runs. */
#ifndef DLOCK_ETOPO_H
#define DLOCK_ETOPO_H

#include <poll.h>

#include "etest.h"
#include "topo.h"

/* A loop's turn must never block: discovery, slot map loads, reconnects
 * all run as I/O the loop waits for. Whatever a turn does (parse a slot
 * map, run callbacks) takes well under this on a loaded test machine; a
 * blocking connect or read would take a connect or command timeout. */
#define ETOPO_PROCESS_MAX_MS 25

static long long g_etopo_max_us; /* the longest dlock_client_process call */

/* One turn of an event loop: poll the client's fd until its timeout (at
 * most 20 ms), then process, timing the call. */
static inline void etopo_turn(dlock_client *c) {
    int fd = dlock_client_fd(c);
    TH_CHECK(fd >= 0);
    int64_t t = dlock_client_timeout(c);
    if (t < 0 || t > 20)
        t = 20;
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    poll(&p, 1, (int)t);
    long long t0 = th_now_us();
    int rc = dlock_client_process(c);
    long long d = th_now_us() - t0;
    TH_CHECK(rc >= 0);
    if (d > g_etopo_max_us)
        g_etopo_max_us = d;
}

/* Drive c until *done or max_ms. */
static inline void etopo_run(dlock_client *c, const int *done, int max_ms) {
    long long end = th_now_us() + (long long)max_ms * 1000;
    while (!*done && th_now_us() < end)
        etopo_turn(c);
}

/* Drive c for ms milliseconds. */
static inline void etopo_spin(dlock_client *c, int ms) {
    int never = 0;
    etopo_run(c, &never, ms);
}

/* Drive c until the integer reply of `cmd key` on s is at least want (or
 * max_ms); returns the last value. */
static inline long long etopo_until_int(dlock_client *c, th_server *s, const char *cmd,
                                        const char *key, long long want, int max_ms) {
    long long end = th_now_us() + (long long)max_ms * 1000, v;
    while ((v = th_server_int(s, "%s %s", cmd, key)) < want && th_now_us() < end)
        etopo_spin(c, 20);
    return v;
}

/* The loop's longest turn so far must be short: the loop never blocked. */
static inline void etopo_check_turns(const char *what) {
    printf("%s: longest dlock_client_process call %.1f ms (limit %d)\n", what,
           g_etopo_max_us / 1000.0, ETOPO_PROCESS_MAX_MS);
    if (g_etopo_max_us > ETOPO_PROCESS_MAX_MS * 1000LL)
        TH_FAIL("%s: a dlock_client_process call took %.1f ms: the loop blocked", what,
                g_etopo_max_us / 1000.0);
}

/* A client for url with these timeouts, for the async API. */
static inline dlock_client *etopo_client(const char *url, int connect_ms, int command_ms) {
    return tt_client(url, connect_ms, command_ms);
}

static inline void etopo_on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    *(int *)ud = status;
}

#endif

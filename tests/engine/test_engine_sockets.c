/* test_engine_sockets.c - per-socket watching (dlock_client_set_socket_fn),
 * driven by a poll(2) loop over the sockets the client names, as the libuv
 * and libevent adapters do. Checks what such loops rely on: a socket is
 * told 0 while still open, before it closes (no closed or reused
 * descriptor is ever watched: poll never says POLLNVAL, and a descriptor
 * is never re-announced for a new socket without a 0 first); the
 * scenario of scenario.h (1,000 waits on 100 names, a kept-alive lock)
 * completes through dlock_client_process_fd; a server killed under load
 * and restarted is survived; the epoll descriptor stays quiet meanwhile;
 * and switching back to dlock_client_fd hands every socket back. */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scenario.h"

#define MAXW 64

static struct {
    int fd;
    int events;
    ino_t ino; /* which socket: a reused descriptor number is a new one */
} w[MAXW];
static int nw, told_zero, announced;

static int find(int fd) {
    for (int i = 0; i < nw; i++)
        if (w[i].fd == fd)
            return i;
    return -1;
}

static void on_socket(dlock_client *c, int fd, int events, void *ud) {
    (void)c;
    TH_EQ_INT(*(int *)ud, 42);
    struct stat st;
    if (fstat(fd, &st) != 0)
        TH_FAIL("told of fd %d (events %d), which is closed", fd, events);
    TH_CHECK((events & ~(DLOCK_READABLE | DLOCK_WRITABLE)) == 0);
    int i = find(fd);
    if (events == 0) {
        if (i < 0)
            TH_FAIL("fd %d told 0 but not watched", fd);
        if (w[i].ino != st.st_ino)
            TH_FAIL("fd %d is a new socket: the old one was never told 0", fd);
        w[i] = w[--nw];
        told_zero++;
        return;
    }
    if (i >= 0) {
        if (w[i].ino != st.st_ino)
            TH_FAIL("fd %d is a new socket: the old one was never told 0", fd);
        w[i].events = events;
        return;
    }
    TH_CHECK(nw < MAXW);
    w[nw].fd = fd;
    w[nw].events = events;
    w[nw].ino = st.st_ino;
    nw++;
    announced++;
}

/* One turn of the loop: poll the watched sockets (up to the client's
 * timeout, at most 20 ms), then process what is ready. */
static int turn(dlock_client *c) {
    struct pollfd p[MAXW];
    int n = nw;
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = w[i].fd,
                               .events = (short)((w[i].events & DLOCK_READABLE ? POLLIN : 0) |
                                                 (w[i].events & DLOCK_WRITABLE ? POLLOUT : 0))};
    int64_t t = dlock_client_timeout(c);
    int ready = poll(p, (nfds_t)n, t < 0 || t > 20 ? 20 : (int)t);
    int left = -1;
    for (int i = 0; i < n && ready > 0; i++) {
        if (p[i].revents == 0)
            continue;
        if (p[i].revents & POLLNVAL)
            TH_FAIL("fd %d watched while closed", p[i].fd);
        int ev = (p[i].revents & POLLIN ? DLOCK_READABLE : 0) |
                 (p[i].revents & POLLOUT ? DLOCK_WRITABLE : 0);
        if (p[i].revents & (POLLERR | POLLHUP))
            ev = DLOCK_READABLE | DLOCK_WRITABLE;
        left = dlock_client_process_fd(c, p[i].fd, ev); /* may drop later fds: ignored */
    }
    if (left < 0)
        left = dlock_client_process(c);
    return left;
}

static void run(dlock_client *c, const int *done, int max_ms) {
    long long end = th_now_us() + (long long)max_ms * 1000;
    while (!*done && th_now_us() < end)
        turn(c);
    if (!*done)
        TH_FAIL("not done after %d ms", max_ms);
}

static int all_done(et_res *r, int n) {
    for (int i = 0; i < n; i++)
        if (!r[i].done)
            return 0;
    return 1;
}

/* The scenario: the waits, then the kept-alive lock released at 1.5 s. */
static void scenario(dlock_client *c) {
    sc_start_waits(c);
    long long end = th_now_us() + 20000000;
    while (sc_released < SC_NAMES * SC_PER && th_now_us() < end)
        turn(c);
    sc_check_waits();
    TH_CHECK(nw >= 2); /* a connection and the wake-up subscriber */
    IT_RC(c, dlock_try_acquire_async(c, "kept", 500, sc_on_kept, NULL, NULL), DLOCK_OK);
    long long fire = th_now_us() + 1500000;
    while (th_now_us() < fire)
        turn(c);
    sc_timer_fired();
    while (!sc_kept_released && th_now_us() < fire + 5000000)
        turn(c);
    TH_CHECK(sc_kept_released);
    dlock_lock_free(sc_kept);
}

/* A server killed with 50 acquires in flight, then restarted. */
static void killed(th_server *s, dlock_client *c) {
    static et_res r[50];
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "k-%d", i);
        IT_RC(c, dlock_try_acquire_async(c, name, 10000, et_cb, &r[i], NULL), DLOCK_OK);
    }
    int zero_before = told_zero;
    TH_CHECK(th_server_kill(s) == 0);
    long long end = th_now_us() + 10000000;
    while (!all_done(r, 50) && th_now_us() < end)
        turn(c);
    TH_CHECK(all_done(r, 50));
    for (int i = 0; i < 50; i++)
        if (r[i].status == DLOCK_OK)
            dlock_lock_free(r[i].lock);
    TH_CHECK(told_zero > zero_before); /* the dead connections were handed back */
    TH_CHECK(th_server_restart(s) == 0);
    et_res again = {0};
    IT_RC(c, dlock_try_acquire_async(c, "after", 10000, et_cb, &again, NULL), DLOCK_OK);
    run(c, &again.done, 10000);
    ET_STATUS(again, DLOCK_OK);
    dlock_lock_free(again.lock);
}

int main(void) {
    th_test_init(90);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    dlock_client *c = it_client(th_server_url(s), NULL);
    static int tag = 42;
    int epfd = dlock_client_fd(c);
    TH_CHECK(epfd >= 0);
    IT_RC(c, dlock_client_set_socket_fn(c, on_socket, &tag), DLOCK_OK);
    TH_EQ_INT(nw, 0); /* nothing connected yet */

    /* The epoll descriptor says nothing while the sockets are watched
     * one by one. */
    et_res first = {0};
    IT_RC(c, dlock_try_acquire_async(c, "first", 10000, et_cb, &first, NULL), DLOCK_OK);
    TH_CHECK(nw == 1);
    struct pollfd ep = {.fd = epfd, .events = POLLIN};
    usleep(50000);
    TH_EQ_INT(poll(&ep, 1, 0), 0);
    run(c, &first.done, 10000);
    ET_STATUS(first, DLOCK_OK);
    dlock_lock_free(first.lock);

    scenario(c);
    killed(s, c);

    /* Back to the epoll descriptor: every socket is handed back first. */
    IT_RC(c, dlock_client_set_socket_fn(c, NULL, NULL), DLOCK_OK);
    TH_EQ_INT(nw, 0);
    et_res last = {0};
    IT_RC(c, dlock_try_acquire_async(c, "last", 10000, et_cb, &last, NULL), DLOCK_OK);
    et_run_until(c, &last.done, 10000);
    ET_STATUS(last, DLOCK_OK);
    dlock_lock_free(last.lock);
    TH_EQ_INT(nw, 0);
    printf("sockets announced %d, handed back %d\n", announced, told_zero);
    dlock_client_free(c);
    th_server_free(s);
    IT_PASS("test_engine_sockets");
    return 0;
}

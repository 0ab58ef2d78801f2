/* test_engine_recv.c - the blocking calls' wait in the read itself.
 *
 * A blocking call on one plain server waits for its reply in recv (bounded
 * by a slice, SO_RCVTIMEO) instead of epoll_wait then recv: a round trip
 * costs two system calls, as with a blocking hiredis. This test links with
 * --wrap=epoll_wait,--wrap=recv and counts both on the test's own thread
 * (the fault proxy's thread reads too; the counters live here, not in the
 * library):
 *   1. TCP and a unix socket: acquire + release pairs make no epoll_wait,
 *      and each round trip reads once, waiting.
 *   2. A reply that arrives one byte at a time (the proxy's drip) is read
 *      by as many waiting reads, and the call still succeeds.
 *   3. A server paused with SIGSTOP: the call waits in slices, then returns
 *      at its deadline (one command timeout for an extend; a try_acquire's
 *      documented bound), not a slice later; a deadline closer than two
 *      slices is waited in epoll_wait alone.
 *   4. A reconnect makes a new socket: it takes the same path.
 *   5. The async engine of the same client never waits in a read:
 *      dlock_client_process returns at once while its server is paused.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "etest.h"

static long n_epoll, n_recv, n_recv_wait;
static pthread_t test_thread;

int __real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);

int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    if (pthread_equal(pthread_self(), test_thread))
        n_epoll++;
    return __real_epoll_wait(epfd, ev, max, timeout);
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags) {
    if (pthread_equal(pthread_self(), test_thread)) {
        n_recv++;
        n_recv_wait += !(flags & MSG_DONTWAIT);
    }
    return __real_recv(fd, buf, len, flags);
}

static void zero(void) { n_epoll = n_recv = n_recv_wait = 0; }

static void pair(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

/* ---- 1. pairs on TCP and on a unix socket ---- */

static void pairs(const char *url, const char *what) {
    dlock_client *c = it_client(url, NULL);
    pair(c, "recv-warm"); /* the connect and its setup go first */
    zero();
    enum { N = 200 };
    for (int i = 0; i < N; i++)
        pair(c, "recv-pair");
    printf("%s: %d pairs: %ld epoll_wait, %ld recv (%ld waiting)\n", what, N, n_epoll, n_recv,
           n_recv_wait);
    TH_EQ_INT(n_epoll, 0);
    TH_EQ_INT(n_recv, 2 * N);
    TH_EQ_INT(n_recv_wait, 2 * N);
    dlock_client_free(c);
}

/* ---- 2. a reply in many pieces ---- */

static void drip(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_client *c = it_client(th_proxy_url(p), NULL);
    pair(c, "recv-drip-warm");
    th_proxy_set(p, TH_DRIP, 1);
    zero();
    pair(c, "recv-drip");
    printf("drip: one pair: %ld epoll_wait, %ld recv (%ld waiting)\n", n_epoll, n_recv,
           n_recv_wait);
    /* more reads than replies: the partial ones waited for the rest */
    TH_CHECK(n_recv_wait > 2);
    TH_EQ_INT(n_epoll, 0);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* ---- 3. a paused server ---- */

/* Extend a held lock while the server is paused: EIO after one command
 * timeout (command_ms), never earlier, never a slice later. */
static void paused_extend(th_server *s, int command_ms) {
    dlock_options o;
    it_options(&o, 1000, command_ms);
    dlock_client *c = it_client(th_server_url(s), &o);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "recv-pause", 5000, &l), DLOCK_OK);
    TH_EQ_INT(th_server_pause(s), 0);
    zero();
    long long t0 = th_now_us();
    int rc = dlock_extend(l, 5000);
    long long el = (th_now_us() - t0) / 1000;
    printf("paused, command timeout %d ms: extend -> %s after %lld ms; %ld waiting recv, %ld "
           "epoll_wait\n",
           command_ms, dlock_err_name(rc), el, n_recv_wait, n_epoll);
    TH_EQ_INT(th_server_resume(s), 0);
    TH_EQ_INT(rc, DLOCK_EIO);
    TH_CHECK(el >= command_ms - 1);
    TH_CHECK(el < command_ms + 100);
    if (command_ms >= 400) {
        /* slices while the deadline was far, epoll_wait for the last stretch */
        TH_CHECK(n_recv_wait >= (command_ms - 100) / 50 - 2);
        TH_CHECK(n_epoll >= 1);
    } else if (command_ms < 100) {
        TH_EQ_INT(n_recv_wait, 0); /* never a slice that could end late */
    }
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
}

/* try_acquire on a paused server, against dlock.h's bound: one command
 * timeout, a connect timeout for the reconnect, and one more of each for
 * the clean-up (1600 ms here; regress_try_bound checks the bound itself). */
static void paused_acquire(th_server *s) {
    dlock_options o;
    it_options(&o, 300, 500);
    dlock_client *c = it_client(th_server_url(s), &o);
    pair(c, "recv-pause-a");
    TH_EQ_INT(th_server_pause(s), 0);
    zero();
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, "recv-pause-a", 2000, &l);
    long long el = (th_now_us() - t0) / 1000;
    printf("paused: try_acquire -> %s after %lld ms; %ld waiting recv, %ld epoll_wait: %s\n",
           dlock_err_name(rc), el, n_recv_wait, n_epoll, dlock_client_errstr(c));
    TH_EQ_INT(th_server_resume(s), 0);
    TH_CHECK(rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN);
    TH_CHECK(el < 2 * (300 + 500) + 100);
    TH_CHECK(n_recv_wait >= 5);
    dlock_client_free(c);
}

/* ---- 4. a new socket after a reconnect ---- */

static void reconnect(th_server *s) {
    th_proxy *p = th_proxy_start(th_server_port(s));
    TH_CHECK(p != NULL);
    dlock_client *c = it_client(th_proxy_url(p), NULL);
    pair(c, "recv-rc");
    th_proxy_set(p, TH_DROP, 0);
    th_sleep_ms(20); /* let the FIN arrive: the idle check finds it */
    pair(c, "recv-rc"); /* on a new connection */
    TH_EQ_INT(th_proxy_connections(p), 2);
    zero();
    for (int i = 0; i < 20; i++)
        pair(c, "recv-rc");
    printf("after a reconnect: 20 pairs: %ld epoll_wait, %ld waiting recv\n", n_epoll,
           n_recv_wait);
    TH_EQ_INT(n_epoll, 0);
    TH_EQ_INT(n_recv_wait, 40);
    dlock_client_free(c);
    th_proxy_stop(p);
}

/* ---- 5. the async engine never waits ---- */

static void async_never_waits(th_server *s) {
    dlock_client *c = it_client(th_server_url(s), NULL);
    pair(c, "recv-async"); /* the blocking engine's socket now waits in recv */
    et_res a = {0};
    IT_RC(c, dlock_try_acquire_async(c, "recv-async", 5000, et_cb, &a, NULL), DLOCK_OK);
    et_run_until(c, &a.done, 3000);
    ET_STATUS(a, DLOCK_OK);
    TH_EQ_INT(th_server_pause(s), 0);
    et_res r = {0};
    IT_RC(c, dlock_release_async(a.lock, et_cb, &r, NULL), DLOCK_OK);
    long long worst = 0;
    for (int i = 0; i < 5; i++) {
        long long t0 = th_now_us();
        TH_CHECK(dlock_client_process(c) >= 0);
        long long el = th_now_us() - t0;
        if (el > worst)
            worst = el;
    }
    printf("async, server paused: dlock_client_process took at most %lld us\n", worst);
    TH_CHECK(worst < 20000);
    TH_EQ_INT(th_server_resume(s), 0);
    et_run_until(c, &r.done, 3000);
    ET_STATUS(r, DLOCK_OK);
    dlock_lock_free(a.lock);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(90);
    test_thread = pthread_self();
    signal(SIGPIPE, SIG_IGN);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    pairs(th_server_url(s), "tcp");
    th_server *u = th_server_start_unix(NULL);
    TH_CHECK(u != NULL);
    char url[300];
    snprintf(url, sizeof url, "unix://%s", th_server_unix_path(u));
    pairs(url, "unix");
    th_server_free(u);
    drip(s);
    paused_extend(s, 500);
    paused_extend(s, 130);
    paused_extend(s, 60);
    paused_acquire(s);
    reconnect(s);
    async_never_waits(s);
    th_server_free(s);
    IT_PASS("test_engine_recv");
    return 0;
}

/* test_engine_resolve.c - a server named by host name is looked up off the
 * caller's thread, within the connect timeout.
 *
 * getaddrinfo is interposed here (this executable defines it, so the
 * library's calls and hiredis's both reach it): names ending in
 * ".dlock.test" never reach a resolver. "slow.dlock.test" answers
 * 127.0.0.1 after g_delay_ms; "none.dlock.test" does not exist. Other
 * names go to the real getaddrinfo ("localhost" only, from /etc/hosts).
 *   1. A blocking call whose lookup outlasts the connect timeout returns
 *      at that timeout (DLOCK_EIO, "lookup" in the detail), not when the
 *      lookup ends; a quick lookup works, once per connection.
 *   2. The non-blocking API: dlock_client_process never waits for a
 *      lookup, and the operation completes when the lookup does.
 *   3. Per-socket watching: the lookup's descriptor is announced, then
 *      told 0 while still open, before the TCP socket is announced; a
 *      wake-up on it before the answer is ignored.
 *   4. A name that does not exist fails at once, saying so.
 *   5. A client freed during a lookup: the lookup ends alone (ASan: no
 *      leak, no use after free).
 *   6. A reconnect looks the name up again.
 *   7. "localhost" through the real resolver, when /etc/hosts names it.
 *   8. A name with several addresses: one that refuses the connection
 *      gives way to the next ("two.dlock.test": 127.0.0.2, where nothing
 *      listens, then 127.0.0.1), blocking and not; when every address
 *      refuses ("dead.dlock.test") the call fails at once, saying how many
 *      were tried. (unit_resolve checks the order: IPv4 first.) */
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etest.h"

static _Atomic int g_delay_ms;
static _Atomic int g_lookups; /* of .dlock.test names */


static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    th_gai_fn real = (th_gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (node != NULL && ends_with(node, ".dlock.test")) {
        atomic_fetch_add(&g_lookups, 1);
        static const char *const two[] = {"127.0.0.2", "127.0.0.1"};
        static const char *const dead[] = {"127.0.0.2", "127.0.0.3"};
        if (strcmp(node, "two.dlock.test") == 0)
            return th_gai_chain(real, two, 2, service, res);
        if (strcmp(node, "dead.dlock.test") == 0)
            return th_gai_chain(real, dead, 2, service, res);
        if (strcmp(node, "slow.dlock.test") != 0)
            return EAI_NONAME;
        if (hints != NULL && hints->ai_family == AF_INET6)
            return EAI_NONAME; /* an IPv4 name only */
        th_sleep_ms(atomic_load(&g_delay_ms));
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}

static char g_url[128];

static void pair(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

/* A try_acquire that must fail with DLOCK_EIO: prints what it said and
 * how long it took (*ms). */
static void failed_try(dlock_client *c, const char *name, const char *what, long long *ms) {
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_try_acquire(c, name, 5000, &l);
    *ms = (th_now_us() - t0) / 1000;
    printf("%s: %s after %lld ms: %s\n", what, dlock_err_name(rc), *ms, dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_EIO);
}

/* ---- 1. blocking calls ---- */

static void blocking(void) {
    dlock_options o;
    it_options(&o, 200, 500);
    dlock_client *c = it_client(g_url, &o);
    atomic_store(&g_delay_ms, 1500);
    long long el;
    failed_try(c, "res-block", "blocking, a 1500 ms lookup, connect timeout 200 ms", &el);
    TH_CHECK(el >= 190 && el < 450);
    TH_CHECK(strstr(dlock_client_errstr(c), "slow.dlock.test") != NULL);
    TH_CHECK(strstr(dlock_client_errstr(c), "lookup") != NULL);
    dlock_client_free(c);

    atomic_store(&g_delay_ms, 30);
    it_options(&o, 1000, 500);
    c = it_client(g_url, &o);
    int before = atomic_load(&g_lookups);
    for (int i = 0; i < 5; i++)
        pair(c, "res-block");
    TH_EQ_INT(atomic_load(&g_lookups) - before, 1); /* one connection, one lookup */
    dlock_client_free(c);
}

/* ---- 2. the non-blocking API ---- */

static void async_never_waits(void) {
    atomic_store(&g_delay_ms, 600);
    dlock_client *c = it_client(g_url, NULL);
    et_res a = {0};
    long long t0 = th_now_us(), worst = 0;
    IT_RC(c, dlock_try_acquire_async(c, "res-async", 5000, et_cb, &a, NULL), DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 50000);
    while (!a.done && th_now_us() - t0 < 3000000) {
        struct pollfd p = {.fd = dlock_client_fd(c), .events = POLLIN};
        int64_t tmo = dlock_client_timeout(c);
        poll(&p, 1, tmo < 0 || tmo > 20 ? 20 : (int)tmo);
        long long s = th_now_us();
        TH_CHECK(dlock_client_process(c) >= 0);
        if (th_now_us() - s > worst)
            worst = th_now_us() - s;
    }
    long long el = (th_now_us() - t0) / 1000;
    printf("async, a 600 ms lookup: done after %lld ms; dlock_client_process took at most "
           "%lld us\n",
           el, worst);
    ET_STATUS(a, DLOCK_OK);
    TH_CHECK(el >= 590);
    TH_CHECK(worst < 50000);
    et_res r = {0};
    IT_RC(c, dlock_release_async(a.lock, et_cb, &r, NULL), DLOCK_OK);
    et_run_until(c, &r.done, 3000);
    ET_STATUS(r, DLOCK_OK);
    dlock_lock_free(a.lock);
    dlock_client_free(c);
}

/* ---- 3. per-socket watching ---- */

static struct {
    int fd;
    int events;
    ino_t ino;
} w[8];
static int nw, told_zero;

static void on_socket(dlock_client *c, int fd, int events, void *ud) {
    (void)c;
    (void)ud;
    struct stat st;
    if (fstat(fd, &st) != 0)
        TH_FAIL("told of fd %d (events %d), which is closed", fd, events);
    int i = 0;
    while (i < nw && w[i].fd != fd)
        i++;
    if (i < nw && w[i].ino != st.st_ino)
        TH_FAIL("fd %d is a new descriptor: the old one was never told 0", fd);
    if (events == 0) {
        TH_CHECK(i < nw);
        w[i] = w[--nw];
        told_zero++;
        return;
    }
    if (i == nw) {
        TH_CHECK(nw < 8);
        w[nw].fd = fd;
        w[nw++].ino = st.st_ino;
    }
    w[i].events = events;
}

static void per_socket(void) {
    atomic_store(&g_delay_ms, 300);
    dlock_client *c = it_client(g_url, NULL);
    IT_RC(c, dlock_client_set_socket_fn(c, on_socket, NULL), DLOCK_OK);
    et_res a = {0};
    IT_RC(c, dlock_try_acquire_async(c, "res-sock", 5000, et_cb, &a, NULL), DLOCK_OK);
    TH_EQ_INT(nw, 1); /* the look-up's descriptor */
    /* A wake-up before the answer (a loop that reports more than it was
     * asked for) changes nothing. */
    dlock_client_process_fd(c, w[0].fd, DLOCK_READABLE | DLOCK_WRITABLE);
    long long t0 = th_now_us();
    while (!a.done && th_now_us() - t0 < 3000000) {
        struct pollfd p[8];
        for (int i = 0; i < nw; i++)
            p[i] = (struct pollfd){.fd = w[i].fd,
                                   .events = (short)((w[i].events & DLOCK_READABLE ? POLLIN : 0) |
                                                     (w[i].events & DLOCK_WRITABLE ? POLLOUT : 0))};
        int64_t tmo = dlock_client_timeout(c);
        int n = poll(p, (nfds_t)nw, tmo < 0 || tmo > 20 ? 20 : (int)tmo);
        int k = nw;
        for (int i = 0; n > 0 && i < k; i++) {
            TH_CHECK(!(p[i].revents & POLLNVAL));
            if (p[i].revents)
                dlock_client_process_fd(c, p[i].fd,
                                        (p[i].revents & (POLLIN | POLLHUP | POLLERR)
                                             ? DLOCK_READABLE
                                             : 0) |
                                            (p[i].revents & POLLOUT ? DLOCK_WRITABLE : 0));
        }
        TH_CHECK(dlock_client_process(c) >= 0);
    }
    ET_STATUS(a, DLOCK_OK);
    printf("per-socket: %d descriptors told 0 on the way (the lookup's among them)\n",
           told_zero);
    TH_CHECK(told_zero >= 1);
    et_res r = {0};
    IT_RC(c, dlock_release_async(a.lock, et_cb, &r, NULL), DLOCK_OK);
    while (!r.done && th_now_us() - t0 < 6000000) {
        for (int i = 0; i < nw; i++)
            dlock_client_process_fd(c, w[i].fd, DLOCK_READABLE);
        dlock_client_process(c);
        th_sleep_ms(1);
    }
    ET_STATUS(r, DLOCK_OK);
    dlock_lock_free(a.lock);
    dlock_client_free(c);
    TH_EQ_INT(nw, 0); /* free told every socket 0 */
}

/* ---- 4. no such name ---- */

/* A try on host:port that must fail at once (DLOCK_EIO), its detail
 * naming `word`. */
static void fails_at_once(const char *host, int port, const char *what, const char *word) {
    char url[128];
    snprintf(url, sizeof url, "redis://%s:%d", host, port);
    dlock_client *c = it_client(url, NULL);
    long long el;
    failed_try(c, "res-fail", what, &el);
    TH_CHECK(el < 500);
    TH_CHECK(strstr(dlock_client_errstr(c), word) != NULL);
    dlock_client_free(c);
}

static void no_such_name(int port) {
    fails_at_once("none.dlock.test", port, "no such name", "none.dlock.test");
}

/* ---- 5. freed during a lookup ---- */

static void freed_mid_lookup(void) {
    atomic_store(&g_delay_ms, 400);
    dlock_client *c = it_client(g_url, NULL);
    et_res a = {0};
    IT_RC(c, dlock_try_acquire_async(c, "res-free", 5000, et_cb, &a, NULL), DLOCK_OK);
    dlock_client_process(c);
    dlock_client_free(c); /* the op goes with it, unfinished */
    th_sleep_ms(600);     /* the lookup ends and frees what it had alone */
    TH_EQ_INT(a.done, 0);
}

/* ---- 6. a reconnect looks the name up again ---- */

static void reconnect(th_server *s) {
    atomic_store(&g_delay_ms, 10);
    dlock_client *c = it_client(g_url, NULL);
    pair(c, "res-rc");
    int before = atomic_load(&g_lookups);
    freeReplyObject(th_server_cmd(s, "CLIENT KILL TYPE normal"));
    th_sleep_ms(20);
    pair(c, "res-rc");
    TH_EQ_INT(atomic_load(&g_lookups) - before, 1);
    dlock_client_free(c);
}

/* ---- 7. the real resolver ---- */

static void localhost(int port) {
    FILE *f = fopen("/etc/hosts", "r");
    char line[512];
    int named = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        named |= strncmp(line, "127.0.0.1", 9) == 0 && strstr(line, "localhost") != NULL;
    if (f != NULL)
        fclose(f);
    if (!named) {
        printf("localhost: /etc/hosts does not name 127.0.0.1 localhost: skipped\n");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "redis://localhost:%d", port);
    dlock_client *c = it_client(url, NULL);
    pair(c, "res-localhost");
    dlock_client_free(c);
    printf("localhost: a pair through the real resolver\n");
}

/* ---- 8. several addresses ---- */

static void several_addresses(int port) {
    char url[128];
    snprintf(url, sizeof url, "redis://two.dlock.test:%d", port);
    dlock_client *c = it_client(url, NULL);
    pair(c, "res-several");
    dlock_client_free(c);
    c = it_client(url, NULL); /* and through the non-blocking API */
    et_res a = {0};
    IT_RC(c, dlock_try_acquire_async(c, "res-several", 5000, et_cb, &a, NULL), DLOCK_OK);
    et_run_until(c, &a.done, 3000);
    ET_STATUS(a, DLOCK_OK);
    IT_RC(c, dlock_release(a.lock), DLOCK_OK);
    dlock_lock_free(a.lock);
    dlock_client_free(c);
    printf("two.dlock.test: the address that refused gave way to the next\n");
    fails_at_once("dead.dlock.test", port, "every address refuses", "2 addresses");
}

int main(void) {
    th_test_init(90);
    th_server *s = th_server_start(NULL);
    TH_CHECK(s != NULL);
    snprintf(g_url, sizeof g_url, "redis://slow.dlock.test:%d", th_server_port(s));
    blocking();
    async_never_waits();
    per_socket();
    no_such_name(th_server_port(s));
    freed_mid_lookup();
    reconnect(s);
    localhost(th_server_port(s));
    several_addresses(th_server_port(s));
    th_server_free(s);
    IT_PASS("test_engine_resolve");
    return 0;
}

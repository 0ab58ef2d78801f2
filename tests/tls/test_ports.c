/* test_ports.c - the wrong kind of port, and peers that do not answer: each
 * ends in a clear error within the deadline, never a hang.
 *   - a plain client (redis://) to a TLS port: the server resets; the error
 *     says "if this is a TLS port, use rediss://";
 *   - a TLS client to a plain port: Redis waits for a line that never comes,
 *     so the handshake times out within the connect timeout and says so;
 *   - a half-open peer (a socket that listens but never accepts: the kernel
 *     completes TCP, nobody answers the ClientHello): the same, for ping,
 *     try_acquire (EIO: nothing was sent, so not EUNKNOWN) and dlock_wait;
 *   - a TLS server that stops answering after the handshake (fault proxy
 *     stall) and one whose replies drip one byte per write (TLS records
 *     arrive in pieces): each call ends by its command timeout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_env.h"

#define CONNECT_MS 400
#define COMMAND_MS 400

/* Runs call on c; the status must be want, the detail must contain word,
 * and the call must end before limit_ms. */
static void timed(dlock_client *c, const char *what, int want, const char *word,
                  long long limit_ms, int (*call)(dlock_client *c)) {
    long long t0 = th_now_us();
    int rc = call(c);
    long long ms = (th_now_us() - t0) / 1000;
    printf("%-32s -> %s in %lld ms: %s\n", what, dlock_err_name(rc), ms,
           dlock_client_errstr(c));
    IT_RC(c, rc, want);
    TE_IN(dlock_client_errstr(c), word);
    if (ms > limit_ms)
        TH_FAIL("%s took %lld ms, limit %lld ms", what, ms, limit_ms);
}

/* timed() on a fresh client of url. */
static void bounded(const char *what, const char *url, int want, const char *word,
                    long long limit_ms, int (*call)(dlock_client *c)) {
    dlock_client *c = te_client(url, CONNECT_MS, COMMAND_MS);
    timed(c, what, want, word, limit_ms, call);
    dlock_client_free(c);
}

static int do_ping(dlock_client *c) { return dlock_client_ping(c); }

static int do_try(dlock_client *c) {
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "ports", 10000, &l);
    dlock_lock_free(l);
    return rc;
}

static int do_wait(dlock_client *c) {
    dlock_lock *l = NULL;
    int rc = dlock_wait(c, "ports", 1500, 10000, &l);
    dlock_lock_free(l);
    return rc;
}

/* A socket on 127.0.0.1 that listens and never accepts. */
static int half_open(int *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TH_CHECK(fd >= 0);
    TH_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    TH_CHECK(listen(fd, 16) == 0);
    TH_CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A connection made through the proxy, then the proxy turned to mode: the
 * next ping ends by its command timeout. */
static void stalled(th_proxy *px, const char *url, enum th_fault mode, int param,
                    const char *what) {
    th_proxy_set(px, TH_PASS, 0);
    dlock_client *c = te_client(url, CONNECT_MS, COMMAND_MS);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    th_proxy_set(px, mode, param);
    timed(c, what, DLOCK_EIO, "no reply in time", COMMAND_MS + 300, do_ping);
    dlock_client_free(c);
    th_proxy_set(px, TH_PASS, 0);
}

int main(void) {
    th_test_init(80);
    te_init();
    int tport;
    th_server *s = te_server("server", NULL, &tport);
    int plain = th_server_port(s);
    char url[900];
    const char *late = "TLS handshake did not complete in time";
    long long lim = CONNECT_MS + 300;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tport);
    bounded("plain client, TLS port", url, DLOCK_EIO, "use rediss://", 300, do_ping);
    bounded("TLS client, plain port", te_url(url, sizeof url, plain, NULL), DLOCK_EIO, late, lim,
            do_ping);

    int hport, hfd = half_open(&hport);
    te_url(url, sizeof url, hport, NULL);
    bounded("half-open peer: ping", url, DLOCK_EIO, late, lim, do_ping);
    bounded("half-open peer: try_acquire", url, DLOCK_EIO, late, lim, do_try);
    /* dlock_wait retries until its 1.5 s deadline; it may end one command
     * timeout later (dlock.h), never more. */
    bounded("half-open peer: wait 1.5 s", url, DLOCK_EIO, late, 1500 + lim, do_wait);
    close(hfd);

    th_proxy *px = th_proxy_start(tport);
    TH_CHECK(px != NULL);
    te_url(url, sizeof url, th_proxy_port(px), NULL);
    stalled(px, url, TH_STALL, 0, "stalled after the handshake");
    stalled(px, url, TH_DRIP, 30, "replies dripping 1 byte/30 ms");
    bounded("proxy passing again", url, DLOCK_OK, "", 1000, do_ping);
    th_proxy_stop(px);
    th_server_free(s);
    printf("tls_ports: 1 passed, 0 failed\n");
    return 0;
}

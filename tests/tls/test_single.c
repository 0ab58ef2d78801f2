/* test_single.c - TLS to one server (rediss://), the happy path:
 *   - ping, try_acquire, busy for another client, extend, release, a waiter
 *     woken by the release (push waiting: BLPOP over TLS), rising fences,
 *     inspect, release by token, keepalive across several rounds;
 *   - mutual exclusion: 4 processes doing a non-atomic increment under the
 *     lock lose no update;
 *   - one connection serves many calls with idle gaps between them (the
 *     idle check must not mistake TLS session tickets for a closed peer);
 *   - the net layer alone: pipelined replies that arrive in one burst of
 *     TLS records (data held inside the session, invisible to poll, is read);
 *   - AUTH over TLS: right password works, a wrong one fails without the
 *     password in the detail, and the reply to AUTH is never quoted (a
 *     renamed AUTH echoes its arguments). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "pipe_drive.h"
#include "tls.h"
#include "tls_env.h"

#define SECRET "S3cret-tls-9f2c"
#define WORKERS 4
#define ITERS 100

static long long stat_field(th_server *s, const char *field) {
    redisReply *r = th_server_cmd(s, "INFO stats");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, field);
    TH_CHECK(p != NULL);
    long long v = atoll(p + strlen(field) + 1);
    freeReplyObject(r);
    return v;
}

static void basics(const char *url) {
    dlock_client *a = te_client(url, 1000, 1000), *b = te_client(url, 1000, 1000);
    IT_RC(a, dlock_client_ping(a), DLOCK_OK);
    dlock_lock *l = NULL, *l2 = NULL;
    IT_RC(a, dlock_try_acquire(a, "tls-job", 10000, &l), DLOCK_OK);
    IT_RC(b, dlock_try_acquire(b, "tls-job", 10000, &l2), DLOCK_EBUSY);
    dlock_holder h;
    IT_RC(b, dlock_inspect(b, "tls-job", &h), DLOCK_OK);
    TH_CHECK(h.locked);
    IT_RC(a, dlock_extend(l, 20000), DLOCK_OK);
    dlock_info i1;
    IT_RC(a, dlock_info_get(l, &i1), DLOCK_OK);
    /* b waits (queued, BLPOP on its TLS connection) while another process
     * releases a's lease by token over a TLS connection of its own (a TLS
     * session cannot be shared across fork). */
    pid_t pid = fork();
    TH_CHECK(pid >= 0);
    if (pid == 0) {
        th_sleep_ms(200);
        dlock_client *r = te_client(url, 1000, 1000);
        _exit(dlock_release_token(r, "tls-job", i1.token) == DLOCK_OK ? 0 : 1);
    }
    long long t0 = th_now_us();
    IT_RC(b, dlock_wait(b, "tls-job", 5000, 10000, &l2), DLOCK_OK);
    long long waited_ms = (th_now_us() - t0) / 1000;
    TH_EQ_INT(th_wait(pid, 5000), 0);
    printf("waiter woken by the release after %lld ms\n", waited_ms);
    TH_CHECK(waited_ms < 2000);
    dlock_info i2;
    IT_RC(b, dlock_info_get(l2, &i2), DLOCK_OK);
    TH_CHECK(i2.fence > i1.fence);
    dlock_lock_free(l); /* released by the child */
    /* Keepalive: a 600 ms lease kept for 1.5 s. */
    dlock_lock *k = NULL;
    IT_RC(a, dlock_try_acquire(a, "tls-kept", 600, &k), DLOCK_OK);
    IT_RC(a, dlock_keepalive_start(k, 150, NULL, NULL), DLOCK_OK);
    th_sleep_ms(1500);
    TH_CHECK(dlock_held(k));
    dlock_keepalive_stop(k);
    IT_RC(a, dlock_release(k), DLOCK_OK);
    dlock_lock_free(k);
    IT_RC(b, dlock_release_token(b, "tls-job", i2.token), DLOCK_OK);
    dlock_lock_free(l2);
    dlock_client_free(a);
    dlock_client_free(b);
    printf("basics: ok (fences %lld -> %lld)\n", (long long)i1.fence, (long long)i2.fence);
}

struct inc {
    const char *url;
    int admin_port;
};

static int worker(int idx, void *arg) {
    struct inc *x = arg;
    (void)idx;
    dlock_client *c = te_client(x->url, 2000, 2000);
    redisContext *rc = th_connect(x->admin_port, 2000);
    TH_CHECK(rc != NULL);
    for (int i = 0; i < ITERS; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_wait(c, "tls-counter", 30000, 10000, &l), DLOCK_OK);
        redisReply *r = redisCommand(rc, "GET counter");
        TH_CHECK(r != NULL);
        long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        freeReplyObject(r);
        if (i % 8 == 0)
            usleep(200); /* widen the race window */
        freeReplyObject(redisCommand(rc, "SET counter %lld", v + 1));
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
    }
    redisFree(rc);
    dlock_client_free(c);
    return 0;
}

static void mutual_exclusion(th_server *s, const char *url) {
    freeReplyObject(th_server_cmd(s, "DEL counter"));
    struct inc x = {url, th_server_port(s)};
    TH_EQ_INT(th_run_workers(WORKERS, worker, &x, 60), 0);
    redisReply *r = th_server_cmd(s, "GET counter");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    printf("mutual exclusion: %d workers x %d: counter %s\n", WORKERS, ITERS, r->str);
    TH_EQ_INT(atoll(r->str), WORKERS * ITERS);
    freeReplyObject(r);
}

static void one_connection(th_server *s, const char *url) {
    dlock_client *c = te_client(url, 1000, 1000);
    long long before = stat_field(s, "total_connections_received");
    for (int i = 0; i < 5; i++) {
        dlock_lock *l = NULL;
        IT_RC(c, dlock_try_acquire(c, "tls-idle", 5000, &l), DLOCK_OK);
        IT_RC(c, dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
        th_sleep_ms(30); /* past the idle check's 1 ms */
    }
    long long made = stat_field(s, "total_connections_received") - before;
    printf("one connection: 5 rounds with idle gaps made %lld connection(s)\n", made);
    TH_EQ_INT(made, 1);
    dlock_client_free(c);
}

/* The net layer alone, one pipe over TLS (driven as the engine drives it): DEBUG SLEEP 0.2, then
 * 300 ECHOs of 1 KiB. The server answers them all at once, after the sleep:
 * the replies arrive as one burst of TLS records, which the client reads
 * ahead in chunks, so whole records wait inside the session where poll
 * cannot see them (the last ones with no more bytes on the socket behind
 * them). Every reply must arrive, in order, well within the deadline. */
static void pipelined(int port) {
    dl_tls_opts to = {.ca_file = te_file("ca.crt"), .verify = 1};
    dl_tls *tls = NULL;
    char err[300];
    TH_EQ_INT(dl_tls_new(&tls, &to, err, sizeof err), DLOCK_OK);
    dl_conn_cfg cfg = {.connect_timeout_ms = 1000, .tls = tls};
    enum { N = 300, LEN = 1024 };
    static char payload[LEN];
    static pd_reply rep[N + 1];
    for (int round = 0; round < 5; round++) {
        dl_pipe p;
        dl_pipe_init(&p, "127.0.0.1", port, NULL, &cfg);
        memset(rep, 0, sizeof rep);
        int64_t deadline = dl_mono_us() + 3000000;
        const char *sleep_argv[3] = {"DEBUG", "SLEEP", "0.2"};
        size_t sleep_lens[3] = {5, 5, 3};
        TH_EQ_INT(dl_pipe_send(&p, 3, sleep_argv, sleep_lens, deadline, pd_cb, &rep[0]),
                  DLOCK_OK);
        for (int i = 0; i < N; i++) {
            snprintf(payload, sizeof payload, "%0*d", LEN - 1, i);
            const char *argv[2] = {"ECHO", payload};
            size_t lens[2] = {4, LEN - 1};
            TH_EQ_INT(dl_pipe_send(&p, 2, argv, lens, deadline, pd_cb, &rep[i + 1]), DLOCK_OK);
        }
        long long t0 = th_now_us();
        pd_run(&p, &rep[N], deadline);
        long long ms = (th_now_us() - t0) / 1000;
        int got = 0;
        while (got <= N && rep[got].done && rep[got].status == DLOCK_OK)
            got++;
        if (got != N + 1)
            TH_FAIL("round %d: %d of %d replies after %lld ms: %s", round, got, N + 1, ms,
                    p.conn.err);
        TH_CHECK(ms < 1500);
        for (int i = 0; i < N; i++) {
            snprintf(payload, sizeof payload, "%0*d", LEN - 1, i);
            const redisReply *r = rep[i + 1].r;
            TH_CHECK(r->type == REDIS_REPLY_STRING && r->len == LEN - 1 &&
                     memcmp(r->str, payload, LEN - 1) == 0);
        }
        printf("pipelined: %d replies of %d bytes in one burst over TLS, in order, %lld ms\n",
               N, LEN - 1, ms);
        for (int i = 0; i <= N; i++)
            freeReplyObject(rep[i].r);
        dl_pipe_close(&p, DLOCK_ECANCELED, "round over");
    }
    dl_tls_free(tls);
}

static void auth(th_server *s, int port) {
    redisReply *r = th_server_cmd(s, "ACL SETUSER tlsuser on >%s ~* +@all", SECRET);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    char url[900];
    snprintf(url, sizeof url, "rediss://tlsuser:%s@127.0.0.1:%d?tls_ca=%s", SECRET, port,
             te_file("ca.crt"));
    dlock_client *c = te_client(url, 1000, 1000);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, "tls-auth", 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
    snprintf(url, sizeof url, "rediss://tlsuser:wrong-%s@127.0.0.1:%d?tls_ca=%s", SECRET, port,
             te_file("ca.crt"));
    c = te_client(url, 1000, 1000);
    IT_RC(c, dlock_client_ping(c), DLOCK_ESERVER);
    TH_CHECK(strstr(dlock_client_errstr(c), SECRET) == NULL);
    dlock_client_free(c);

    const char *renamed[] = {"--rename-command", "AUTH", "AUTH-renamed", NULL};
    s = te_server("server", renamed, &port);
    snprintf(url, sizeof url, "rediss://u:%s@127.0.0.1:%d?tls_ca=%s", SECRET, port,
             te_file("ca.crt"));
    c = te_client(url, 1000, 1000);
    int rc = dlock_client_ping(c);
    printf("renamed AUTH over TLS -> %s: %s\n", dlock_err_name(rc), dlock_client_errstr(c));
    TH_CHECK(rc != DLOCK_OK);
    TE_IN(dlock_client_errstr(c), "AUTH");
    if (strstr(dlock_client_errstr(c), SECRET) != NULL)
        TH_FAIL("the password appears in the detail string");
    dlock_client_free(c);
    th_server_free(s);
    printf("auth: ok\n");
}

int main(void) {
    th_test_init(80);
    te_init();
    int port;
    th_server *s = te_server("server", NULL, &port);
    char url[800];
    te_url(url, sizeof url, port, NULL);
    basics(url);
    mutual_exclusion(s, url);
    one_connection(s, url);
    pipelined(port);
    auth(s, port);
    th_server_free(s);
    printf("tls_single: 1 passed, 0 failed\n");
    return 0;
}

/* test_redlock_partition.c - Redlock over three servers, one of them behind
 * the fault proxy.
 *
 * 1. The minority server black-holed (connections accepted, nothing
 *    answered): acquire, extend and release still succeed, and fast: the
 *    call settles as soon as a majority answered instead of waiting out the
 *    command timeout on the silent server. p50/p99 are printed; p99 must
 *    stay below half the timeout (waiting it out would take all of it; the
 *    half leaves room for a loaded CI machine under the sanitizers).
 * 2. Six workers contend while the proxy flips between pass, black hole,
 *    latency beyond the timeout and resets: the history stays clean and
 *    fences keep rising. Then the same with read-write locks (30 %
 *    writers, push waiting: queue entries on every master, requests of
 *    unknown outcome cleaned up by token): never a writer with anyone
 *    else, fences rising on writes.
 * 3. A majority answers with server errors (OOM) while one server grants:
 *    ENOQUORUM with Redis's text, and the granted minority lease is undone.
 *    (Found by fuzz_reply: the error detail was read from replies that the
 *    undo had already freed; a use-after-free under ASan.)
 */
#include <stdlib.h>
#include <unistd.h>

#include "faults.h"

#define WORKERS 6
#define CMD_MS 500

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void latency_with_blackhole(const char *url, th_proxy *p) {
    dlock_options o;
    it_options(&o, 200, CMD_MS);
    dlock_client *c = it_client(url, &o);
    IT_RC(c, dlock_client_ping(c), DLOCK_OK);
    th_proxy_set(p, TH_BLACKHOLE, 0);
    enum { N = 200 };
    static long long lat[3][N];
    for (int i = 0; i < N; i++) {
        dlock_lock *l = NULL;
        long long t0 = th_now_us();
        IT_RC(c, dlock_try_acquire(c, "rlp", 5000, &l), DLOCK_OK);
        lat[0][i] = th_now_us() - t0;
        t0 = th_now_us();
        IT_RC(c, dlock_extend(l, 5000), DLOCK_OK);
        lat[1][i] = th_now_us() - t0;
        t0 = th_now_us();
        IT_RC(c, dlock_release(l), DLOCK_OK);
        lat[2][i] = th_now_us() - t0;
        dlock_lock_free(l);
    }
    const char *what[3] = {"acquire", "extend", "release"};
    for (int k = 0; k < 3; k++) {
        qsort(lat[k], N, sizeof lat[k][0], cmp_ll);
        long long p50 = lat[k][N / 2], p99 = lat[k][N * 99 / 100], mx = lat[k][N - 1];
        printf("minority black-holed: %s x%d: p50 %.2f ms, p99 %.2f ms, max %.2f ms "
               "(command timeout %d ms)\n",
               what[k], N, p50 / 1000.0, p99 / 1000.0, mx / 1000.0, CMD_MS);
        TH_CHECK(p99 < CMD_MS / 2 * 1000);
    }
    th_proxy_set(p, TH_PASS, 0);
    dlock_client_free(c);
}

/* Forked before the proxy's thread exists (faults.h); started later: one
 * set of workers for mutexes, one for read-write locks. */
static pid_t g_pids[2][WORKERS];

static ft_cfg *workers_spawn(th_server *store, pid_t *pids) {
    ft_cfg *x = ft_cfg_new();
    x->h = hist_new(100000);
    x->st = ft_stats_new();
    x->store_port = th_server_port(store);
    for (int i = 0; i < WORKERS; i++)
        pids[i] = ft_spawn_worker(x, i);
    return x;
}

static void workers_with_flips(ft_cfg *x, const char *url, th_proxy *p, const pid_t *pids,
                               const char *label) {
    hist *h = x->h;
    ft_stats *st = x->st;
    snprintf(x->url, sizeof x->url, "%s", url);
    snprintf(x->name, sizeof x->name, "%s", x->kind == FT_RW ? "rlrw" : "rlw");
    x->nnames = 2;
    x->ttl_ms = 1000;
    x->wait_ms = 1000;
    x->hold_steps = 10;
    x->step_us = 2000;
    x->random_hold = 1;
    x->extend = 1;
    x->connect_ms = 200;
    x->command_ms = 300;
    if (x->kind != FT_RW)
        x->waiting = DLOCK_WAIT_POLL;
    x->end_us = th_now_us() + 5000 * 1000LL;
    ft_go(x);
    static const enum th_fault modes[] = {TH_BLACKHOLE, TH_LATENCY, TH_RESET, TH_PASS};
    static const char *names[] = {"blackhole", "latency", "reset", "pass"};
    int nflips[4] = {0};
    while (th_now_us() < x->end_us - 300 * 1000LL) {
        int m = ft_rand(0, 3);
        th_proxy_set(p, modes[m], modes[m] == TH_LATENCY ? 400 : 0);
        nflips[m]++;
        hist_fault(h);
        th_sleep_ms(ft_rand(100, 400));
    }
    th_proxy_set(p, TH_PASS, 0);
    TH_EQ_INT(ft_join(pids, WORKERS, 30000), 0);
    hist_result res;
    TH_EQ_INT(hist_check(h, label, &res), 0);
    ft_stats_print(label, st);
    printf("%s: proxy modes %s %d, %s %d, %s %d, %s %d\n", label, names[0], nflips[0],
           names[1], nflips[1], names[2], nflips[2], names[3], nflips[3]);
    TH_CHECK(res.acquisitions > 50);
    /* A minority fault should not cost a majority. On a loaded 2-core
     * machine (CI, other tests alongside) the two healthy servers can
     * themselves miss a 500 ms deadline now and then (seen once: 0 of 3
     * answered), so allow 1 % ENOQUORUM; a real partition bug fails far
     * more calls than that. */
    long nq = atomic_load(&st->acquire[-DLOCK_ENOQUORUM]) + atomic_load(&st->release[-DLOCK_ENOQUORUM]);
    if (nq * 100 > res.acquisitions)
        TH_FAIL("%ld ENOQUORUM in %ld acquisitions with only a minority faulty", nq,
                (long)res.acquisitions);
    hist_free(h);
}

static void majority_errors(th_server **srv, const char *url) {
    dlock_options o;
    it_options(&o, 200, CMD_MS);
    dlock_client *c = it_client(url, &o);
    for (int i = 0; i < 2; i++) { /* servers 1 and 2: memory full */
        redisReply *r = th_server_cmd(srv[i], "CONFIG SET maxmemory 1");
        TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(c, "rlerr", 5000, &l);
    printf("majority OOM, one server grants: try_acquire -> %s: %.160s\n", dlock_err_name(rc),
           dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOQUORUM);
    TH_CHECK(strstr(dlock_client_errstr(c), "OOM") != NULL);
    TH_EQ_INT(ft_lock_exists(srv[2], "rlerr"), 0); /* undone where it was granted */
    for (int i = 0; i < 2; i++)
        freeReplyObject(th_server_cmd(srv[i], "CONFIG SET maxmemory 0"));
    IT_RC(c, dlock_try_acquire(c, "rlerr", 5000, &l), DLOCK_OK);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
    dlock_client_free(c);
}

int main(void) {
    th_test_init(100);
    th_server *srv[3], *store = th_server_start(NULL);
    for (int i = 0; i < 3; i++) {
        srv[i] = th_server_start(NULL);
        TH_CHECK(srv[i] != NULL);
    }
    TH_CHECK(store != NULL);
    ft_cfg *x = workers_spawn(store, g_pids[0]), *xr = workers_spawn(store, g_pids[1]);
    xr->kind = FT_RW;
    xr->writer_pct = 30;
    th_proxy *p = th_proxy_start(th_server_port(srv[2]));
    TH_CHECK(p != NULL);
    char url[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             th_server_port(srv[0]), th_server_port(srv[1]), th_proxy_port(p));
    printf("== one of three servers black-holed\n");
    latency_with_blackhole(url, p);
    printf("== workers while the minority server flips between faults\n");
    workers_with_flips(x, url, p, g_pids[0], "redlock-minority-faults");
    printf("== read-write locks while the minority server flips between faults\n");
    workers_with_flips(xr, url, p, g_pids[1], "redlock-rw-minority-faults");
    printf("== a majority answers with errors\n");
    majority_errors(srv, url);
    th_proxy_stop(p);
    for (int i = 0; i < 3; i++)
        th_server_free(srv[i]);
    th_server_free(store);
    IT_PASS("test_redlock_partition");
    return 0;
}

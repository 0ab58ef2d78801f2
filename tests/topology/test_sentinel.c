/* test_sentinel.c - dlock over Redis Sentinel: master + replica + 3
 * sentinels on loopback.
 *
 *   1. a lock acquired through redis-sentinel:// lives on the master;
 *   2. replicated acquire (replicas=1) is acknowledged by the replica before
 *      the call returns; replicas=2 (only one replica) fails and leaves no
 *      lease; the cost of WAIT is measured (acquire+release pairs);
 *   3. a manual failover (SENTINEL FAILOVER) demotes the master while the
 *      client's connection to it stays open: the next write gets READONLY
 *      and the same call succeeds on the new master;
 *   4. the new master is killed (SIGKILL): the same client, retrying, gets
 *      a lock on the master the sentinels promote, and the locks taken
 *      before (replicated) are still there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"
#include "topo.h"

static dlock_client *client(const char *url, int connect_ms, int command_ms) {
    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = connect_ms;
    o.command_timeout_ms = command_ms;
    o.retry_count = 0;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    if (rc != DLOCK_OK)
        TH_FAIL("dlock_client_new(%s): %s: %s", url, dlock_err_name(rc), dlock_client_errstr(c));
    return c;
}

static long long key_exists(th_server *s, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(s, "EXISTS %s", key);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* iters acquire+release pairs on one name; prints mean/p50/p99 in us. */
static double bench(dlock_client *c, const char *label, int iters) {
    long long *lat = calloc((size_t)iters, sizeof *lat);
    TH_CHECK(lat != NULL);
    long long t0 = th_now_us();
    for (int i = 0; i < iters; i++) {
        long long s = th_now_us();
        dlock_lock *l = NULL;
        int rc = dlock_try_acquire(c, "bench", 10000, &l);
        if (rc != DLOCK_OK)
            TH_FAIL("bench %s: acquire: %s: %s", label, dlock_err_name(rc),
                    dlock_client_errstr(c));
        TH_EQ_INT(dlock_release(l), DLOCK_OK);
        dlock_lock_free(l);
        lat[i] = th_now_us() - s;
    }
    double mean = (double)(th_now_us() - t0) / iters;
    qsort(lat, (size_t)iters, sizeof *lat, cmp_ll);
    printf("cost %-22s %d pairs: mean %.1f us, p50 %lld us, p99 %lld us per acquire+release\n",
           label, iters, mean, lat[iters / 2], lat[(iters * 99) / 100]);
    free(lat);
    return mean;
}

/* READONLY errors the server has answered so far (INFO errorstats). */
static long readonly_errors(th_server *s) {
    redisReply *r = th_server_cmd(s, "INFO errorstats");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "errorstat_READONLY:count=");
    long v = p ? strtol(p + strlen("errorstat_READONLY:count="), NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static th_server *other(tt_sentinels *g, th_server *s) {
    return s == g->data[0] ? g->data[1] : g->data[0];
}

int main(void) {
    th_test_init(85);
    long long t_start = th_now_us();
    tt_sentinels *g = tt_sentinels_start(3);
    TH_CHECK(g != NULL);
    printf("sentinel group up in %.1f s: %s (master %d, replica %d)\n",
           (th_now_us() - t_start) / 1e6, g->url, th_server_port(g->data[0]),
           th_server_port(g->data[1]));
    th_server *m = g->data[0];

    /* 1. A lock through the sentinels lands on the master. */
    dlock_client *c = client(g->url, 500, 1000);
    TH_EQ_INT(dlock_client_ping(c), DLOCK_OK);
    dlock_lock *la = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "sent-a", 60000, &la), DLOCK_OK);
    TH_EQ_INT(key_exists(m, "sent-a"), 1);
    dlock_holder h;
    TH_EQ_INT(dlock_inspect(c, "sent-a", &h), DLOCK_OK);
    TH_EQ_INT(h.locked, 1);
    TH_EQ_INT(h.fence, 1);
    TH_EQ_INT(dlock_extend(la, 60000), DLOCK_OK);
    dlock_lock *busy = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "sent-a", 1000, &busy), DLOCK_EBUSY);
    /* A dead sentinel first in the list is skipped. */
    char durl[700];
    snprintf(durl, sizeof durl, "redis-sentinel://127.0.0.1:%d,%s", tt_free_port(),
             g->url + strlen("redis-sentinel://"));
    dlock_client *cd = client(durl, 500, 1000);
    TH_EQ_INT(dlock_try_acquire(cd, "sent-a", 1000, &busy), DLOCK_EBUSY);
    dlock_client_free(cd);

    /* 2. Replicated acquire: the replica has the lock when the call returns. */
    char rurl[700];
    snprintf(rurl, sizeof rurl, "%s?replicas=1&replica_timeout=500", g->url);
    dlock_client *cr = client(rurl, 500, 1000);
    dlock_lock *lr = NULL;
    int rc = dlock_try_acquire(cr, "sent-r", 60000, &lr);
    if (rc != DLOCK_OK) {
        redisReply *ir = th_server_cmd(m, "INFO replication");
        TH_FAIL("replicated acquire: %s: %s\nmaster: %s", dlock_err_name(rc),
                dlock_client_errstr(cr), ir && ir->type == REDIS_REPLY_STRING ? ir->str : "?");
    }
    TH_EQ_INT(key_exists(g->data[1], "sent-r"), 1); /* no sleep: WAIT acknowledged it */
    snprintf(rurl, sizeof rurl, "%s?replicas=2&replica_timeout=200", g->url);
    dlock_client *c2 = client(rurl, 500, 1000);
    dlock_lock *l2 = NULL;
    long long t = th_now_us();
    rc = dlock_try_acquire(c2, "sent-r2", 60000, &l2);
    printf("replicas=2 with one replica: %s after %lld ms: %s\n", dlock_err_name(rc),
           (th_now_us() - t) / 1000, dlock_client_errstr(c2));
    TH_EQ_INT(rc, DLOCK_ENOREPLICAS); /* not "held by another owner" */
    TH_CHECK(l2 == NULL);
    TH_EQ_INT(key_exists(m, "sent-r2"), 0); /* undone */
    dlock_client_free(c2);

    /* Cost of WAIT. */
    const char *it = getenv("DLOCK_TOPO_BENCH_ITERS");
    int iters = it ? atoi(it) : 2000;
    if (iters > 0) {
        double plain = bench(c, "sentinel replicas=0", iters);
        double repl = bench(cr, "sentinel replicas=1", iters);
        printf("cost of replicas=1: +%.1f us per pair (x%.2f)\n", repl - plain, repl / plain);
    }

    /* 3. Manual failover: the master is demoted while our connection to it
     * stays open. A client that watches the sentinels (+switch-master, the
     * default) goes straight to the new master; one with
     * sentinel_watch=off meets READONLY at the old one, and follows. */
    char wurl[700];
    snprintf(wurl, sizeof wurl, "%s?sentinel_watch=off", g->url);
    dlock_client *cw = client(wurl, 500, 1000);
    dlock_lock *lw = NULL;
    TH_EQ_INT(dlock_try_acquire(cw, "sent-w", 60000, &lw), DLOCK_OK); /* connected to m */
    TH_EQ_INT(dlock_release(lw), DLOCK_OK);
    dlock_lock_free(lw);
    th_server *newm = other(g, m);
    redisContext *sc = th_connect(g->sport[0], 2000);
    TH_CHECK(sc != NULL);
    redisReply *r = redisCommand(sc, "SENTINEL FAILOVER %s", TT_MASTER_NAME);
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(sc);
    t = th_now_us();
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(newm), 20000), 0);
    /* The sentinels demote the old master only after it has reported its
     * role for 8 s; do what they will do, now. */
    redisReply *ro = th_server_cmd(m, "REPLICAOF 127.0.0.1 %d", th_server_port(newm));
    TH_CHECK(ro != NULL && ro->type == REDIS_REPLY_STATUS);
    freeReplyObject(ro);
    TH_EQ_INT(tt_wait_replica_synced(m, 20000), 0);
    printf("manual failover %d -> %d done in %.1f s\n", th_server_port(m), th_server_port(newm),
           (th_now_us() - t) / 1e6);
    dlock_lock *lc = NULL;
    long ro0 = readonly_errors(m);
    t = th_now_us();
    rc = dlock_try_acquire(c, "sent-c", 60000, &lc);
    long ro1 = readonly_errors(m);
    printf("first call after the demotion: %s in %lld ms %s (READONLY answers from the old "
           "master: %ld)\n",
           dlock_err_name(rc), (th_now_us() - t) / 1000, dlock_client_errstr(c), ro1 - ro0);
    TH_EQ_INT(rc, DLOCK_OK);
    TH_EQ_INT(ro1 - ro0, 0); /* told of the switch: never sent to the old master */
    TH_EQ_INT(key_exists(newm, "sent-c"), 1);
    ro0 = readonly_errors(m);
    rc = dlock_try_acquire(cw, "sent-w", 60000, &lw);
    ro1 = readonly_errors(m);
    printf("sentinel_watch=off: %s (READONLY answers from the old master: %ld)\n",
           dlock_err_name(rc), ro1 - ro0);
    TH_EQ_INT(rc, DLOCK_OK);
    TH_EQ_INT(ro1 - ro0, 1); /* it went to the old master first, then followed */
    TH_EQ_INT(key_exists(newm, "sent-w"), 1);
    TH_EQ_INT(dlock_release(lw), DLOCK_OK);
    dlock_lock_free(lw);
    dlock_client_free(cw);
    TH_EQ_INT(dlock_extend(la, 60000), DLOCK_OK); /* replicated before the switch */
    m = newm;

    /* 4. Kill the master: the same client continues on the promoted one. */
    newm = other(g, m);
    /* Make sure the replica has everything before the master dies: this
     * part tests the client, not asynchronous replication. WAIT counts the
     * writes of its own connection: write first (the stream is ordered). */
    redisReply *w = th_server_cmd(m, "SET dlock-test-sync 1");
    TH_CHECK(w != NULL && w->type == REDIS_REPLY_STATUS);
    freeReplyObject(w);
    TH_EQ_INT(th_server_int(m, "WAIT 1 5000"), 1);
    TH_EQ_INT(th_server_kill(m), 0);
    t = th_now_us();
    dlock_lock *lb = NULL;
    int attempts = 0;
    char first[512] = "", last[512] = "";
    for (;;) {
        attempts++;
        long long t1 = th_now_us();
        rc = dlock_try_acquire(c, "sent-b", 60000, &lb);
        long long ms = (th_now_us() - t1) / 1000;
        /* Bound: discovery polls <= command timeout, its last steps and the
         * command itself take connect + command each, the undo as much. */
        if (ms > 2 * (500 + 1000) + 1000 + 500)
            TH_FAIL("one try took %lld ms", ms);
        if (rc == DLOCK_OK)
            break;
        snprintf(last, sizeof last, "%s: %s (%lld ms)", dlock_err_name(rc),
                 dlock_client_errstr(c), ms);
        if (first[0] == '\0')
            memcpy(first, last, sizeof first);
        if (th_now_us() - t > 30000000LL)
            TH_FAIL("no lock 30 s after the master was killed (%d attempts), last: %s", attempts,
                    last);
        th_sleep_ms(100);
    }
    printf("after SIGKILL of the master: lock on the new master after %.2f s, %d attempts\n"
           "  first error: %s\n  last error: %s\n",
           (th_now_us() - t) / 1e6, attempts, first[0] ? first : "none",
           last[0] ? last : "none");
    TH_EQ_INT(key_exists(newm, "sent-b"), 1);
    redisReply *role = th_server_cmd(newm, "ROLE");
    TH_CHECK(role != NULL && role->type == REDIS_REPLY_ARRAY);
    TH_EQ_STR(role->element[0]->str, "master");
    freeReplyObject(role);
    /* Locks from before both failovers are still there and still ours. */
    TH_EQ_INT(key_exists(newm, "sent-r"), 1);
    TH_EQ_INT(dlock_release(la), DLOCK_OK);
    TH_EQ_INT(dlock_release(lc), DLOCK_OK);
    TH_EQ_INT(dlock_release(lb), DLOCK_OK);
    /* The replicated client follows the failover as well; with no replica
     * left, replicas=1 cannot be satisfied any more. */
    TH_EQ_INT(dlock_release(lr), DLOCK_OK);
    dlock_lock *lr2 = NULL;
    rc = DLOCK_EIO;
    for (int i = 0; i < 50 && rc != DLOCK_OK && rc != DLOCK_ENOREPLICAS; i++) {
        rc = dlock_try_acquire(cr, "sent-r3", 60000, &lr2);
        if (rc != DLOCK_OK && rc != DLOCK_ENOREPLICAS)
            th_sleep_ms(100);
    }
    TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
    TH_EQ_INT(key_exists(newm, "sent-r3"), 0);

    dlock_lock_free(la);
    dlock_lock_free(lb);
    dlock_lock_free(lc);
    dlock_lock_free(lr);
    dlock_client_free(cr);
    dlock_client_free(c);
    tt_sentinels_free(g);
    printf("test_sentinel: ok in %.1f s\n", (th_now_us() - t_start) / 1e6);
    return 0;
}

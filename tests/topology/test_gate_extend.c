/* test_gate_extend.c - with ?replicas=1 an extension counts only once a
 * replica has it, as a grant does.
 *
 * A master and its replica; a client with ?replicas=1. Once the replica is
 * detached (REPLICAOF NO ONE), the master alone still extends whatever it
 * is asked to: what a deposed master does after a failover, while its old
 * replica serves the lock's key to others and lets it run out. Then:
 *   1. dlock_extend returns DLOCK_ENOREPLICAS, and the handle's validity
 *      (dlock_info's expires_at) is not extended;
 *   2. the keepalive thread's extensions do not count: the lock is lost
 *      (DLOCK_ETIMEDOUT) when its last replicated lease ends;
 *   3. the engine's keepalive (a lock acquired through the non-blocking
 *      API) likewise;
 *   4. with the replica back, extensions count again. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "dlock.h"
#include "dlock/adapters/poll.h"
#include "harness.h"
#include "topo.h"

static _Atomic int g_lost_status;
static _Atomic long long g_lost_at;

static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    (void)ud;
    atomic_store(&g_lost_status, status);
    atomic_store(&g_lost_at, th_now_us());
}

static int slaves(th_server *m) {
    redisReply *r = th_server_cmd(m, "INFO replication");
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING
                        ? strstr(r->str, "connected_slaves:")
                        : NULL;
    int n = p != NULL ? atoi(p + strlen("connected_slaves:")) : -1;
    freeReplyObject(r);
    return n;
}

static void detach(th_server *m, th_server *r) {
    freeReplyObject(th_server_cmd(r, "REPLICAOF NO ONE"));
    long long end = th_now_us() + 5000000;
    while (slaves(m) != 0 && th_now_us() < end)
        th_sleep_ms(20);
    TH_EQ_INT(slaves(m), 0);
}

static void attach(th_server *m, th_server *r) {
    freeReplyObject(th_server_cmd(r, "REPLICAOF 127.0.0.1 %d", th_server_port(m)));
    TH_EQ_INT(tt_wait_replica_synced(r, 10000), 0);
    TH_EQ_INT(tt_wait_replica_acks(m, "gate-sync", 1, 5000), 0);
}

static int64_t expires_at(dlock_lock *l) {
    dlock_info i;
    dlock_info_get(l, &i);
    return i.expires_at;
}

/* 2 and 3: kept alive on the master alone, the lock is lost when its last
 * replicated lease ends (ttl_ms after it was acquired), not later. */
static void kept_alive(dlock_client *c, dlock_lock *l, long long t_acq, int64_t ttl_ms,
                       int drive, const char *what) {
    atomic_store(&g_lost_status, 0);
    atomic_store(&g_lost_at, 0);
    TH_EQ_INT(dlock_keepalive_start(l, ttl_ms / 4, on_lost, NULL), DLOCK_OK);
    long long end = t_acq + (ttl_ms + 2000) * 1000;
    while (atomic_load(&g_lost_at) == 0 && th_now_us() < end) {
        if (drive)
            dlock_poll_once(c, 20);
        else
            th_sleep_ms(20);
    }
    long long at = atomic_load(&g_lost_at);
    printf("%s: lost %s after %.2f s (lease %lld ms)\n", what,
           at ? dlock_err_name(atomic_load(&g_lost_status)) : "never", (at - t_acq) / 1e6,
           (long long)ttl_ms);
    TH_CHECK(at != 0);
    TH_EQ_INT(atomic_load(&g_lost_status), DLOCK_ETIMEDOUT);
    TH_CHECK(at - t_acq <= ttl_ms * 1000 + 300000);
    dlock_keepalive_stop(l);
}

int main(void) {
    th_test_init(80);
    th_server *m = th_server_start(NULL), *r = th_server_start(NULL);
    TH_CHECK(m != NULL && r != NULL);
    attach(m, r);
    char url[200];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?replicas=1&replica_timeout=200",
             th_server_port(m));
    dlock_client *c = tt_client(url, 500, 1000);

    /* 1. dlock_extend */
    dlock_lock *l = NULL;
    TH_EQ_INT(dlock_try_acquire(c, "g1", 3000, &l), DLOCK_OK);
    TH_EQ_INT(dlock_extend(l, 3000), DLOCK_OK); /* the replica has it */
    detach(m, r);
    int64_t before = expires_at(l);
    int rc = dlock_extend(l, 60000);
    printf("extend with the replica gone: %s: %s\n", dlock_err_name(rc),
           dlock_client_errstr(c));
    TH_EQ_INT(rc, DLOCK_ENOREPLICAS);
    TH_CHECK(expires_at(l) < before + 1000); /* not 60 s (wall clock: a ms of jitter) */
    TH_EQ_INT(dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    /* 2. the keepalive thread */
    attach(m, r);
    long long t = th_now_us();
    TH_EQ_INT(dlock_try_acquire(c, "g2", 2000, &l), DLOCK_OK);
    detach(m, r);
    kept_alive(c, l, t, 2000, 0, "keepalive thread");
    dlock_lock_free(l);

    /* 3. the engine's keepalive */
    attach(m, r);
    tt_res a = {0};
    t = th_now_us();
    TH_EQ_INT(dlock_try_acquire_async(c, "g3", 2000, tt_on_done, &a, NULL), DLOCK_OK);
    while (!a.done && th_now_us() - t < 3000000)
        dlock_poll_once(c, 20);
    TH_EQ_INT(a.status, DLOCK_OK);
    detach(m, r);
    kept_alive(c, a.lock, t, 2000, 1, "engine keepalive");
    dlock_lock_free(a.lock);

    /* 4. the replica back */
    attach(m, r);
    TH_EQ_INT(dlock_try_acquire(c, "g4", 3000, &l), DLOCK_OK);
    before = expires_at(l);
    TH_EQ_INT(dlock_extend(l, 60000), DLOCK_OK);
    TH_CHECK(expires_at(l) > before + 30000);
    TH_EQ_INT(dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);

    dlock_client_free(c);
    th_server_free(m);
    th_server_free(r);
    printf("test_gate_extend: ok\n");
    return 0;
}

/* test_cluster_epoch.c - issue 10 §4, "Fences must keep rising across
 * failovers", on a real Cluster (3 masters + 3 replicas).
 *
 * A fence carries the configEpoch of the master that issued it in its high
 * bits (docs/FAILOVER.md): a replica that takes over gets a configEpoch
 * above every other, so its fences are above every fence its deposed
 * master can still issue. Two failovers of one slot's master:
 *   1. paused past the node timeout: its replica takes over and a new
 *      client takes the lock there; the old master resumes, and a client
 *      that never noticed asks it again (it may still answer as master for
 *      a moment): whatever it issues is below the new master's fences;
 *   2. killed: the next fence's epoch bits are those of the new master,
 *      above every fence before (it was the counter + 1, the same numbers
 *      the deposed master could still hand out). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "topo.h"

static int64_t fence_of(dlock_lock *l) {
    dlock_info i;
    dlock_info_get(l, &i);
    return i.fence;
}

/* The replica of node `victim` (the node whose INFO names it master). */
static int replica_of(tt_cluster *k, int victim) {
    char want[32];
    snprintf(want, sizeof want, "master_port:%d\r", th_server_port(k->node[victim]));
    for (int i = 0; i < k->n; i++) {
        redisReply *ir = th_server_cmd(k->node[i], "INFO replication");
        int is = ir != NULL && ir->type == REDIS_REPLY_STRING && strstr(ir->str, want) != NULL;
        freeReplyObject(ir);
        if (is)
            return i;
    }
    return -1;
}

static int is_master(th_server *s) {
    redisReply *r = th_server_cmd(s, "ROLE");
    int m = r != NULL && r->type == REDIS_REPLY_ARRAY && strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return m;
}

/* Acquire `name` (retrying through a failover for up to 30 s), release,
 * return the fence. */
static int64_t take(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    long long t0 = th_now_us();
    int rc = dlock_wait(c, name, 30000, 10000, &l);
    if (rc != DLOCK_OK)
        TH_FAIL("wait '%s': %s after %lld ms: %s", name, dlock_err_name(rc),
                (th_now_us() - t0) / 1000, dlock_client_errstr(c));
    int64_t f = fence_of(l);
    dlock_release(l);
    dlock_lock_free(l);
    return f;
}

static void sync_replica(tt_cluster *k, int node, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}:sync", name);
    TH_EQ_INT(tt_wait_replica_acks(k->node[node], key, 1, 5000), 0);
}

int main(void) {
    th_test_init(85);
    tt_cluster *k = tt_cluster_start_replicated(3, 1);
    TH_CHECK(k != NULL);
    int victim = tt_cluster_owner(k, 0, 100);
    char name[64];
    TH_CHECK(tt_name_on_node(k, victim, "dlock:", "ep", name, sizeof name) >= 0);
    dlock_client *old = tt_client(k->url, 300, 500);
    int64_t f1 = take(old, name), f2 = take(old, name);
    printf("on the first master: fences %" PRId64 " then %" PRId64 " (epoch %" PRId64 ")\n", f1,
           f2, f2 >> 40);
    TH_CHECK(f2 > f1);
    sync_replica(k, victim, name);

    /* 1. Pause past the node timeout; the replica takes over. */
    int rep = replica_of(k, victim);
    TH_CHECK(rep >= 0);
    TH_EQ_INT(th_server_pause(k->node[victim]), 0);
    long long end = th_now_us() + 20000000;
    while (!is_master(k->node[rep]) && th_now_us() < end)
        th_sleep_ms(50);
    TH_CHECK(is_master(k->node[rep]));
    dlock_client *fresh = tt_client(k->url, 300, 500);
    int64_t f3 = take(fresh, name);
    printf("new master: fence %" PRId64 " (epoch %" PRId64 ")\n", f3, f3 >> 40);
    TH_CHECK(f3 > f2 && (f3 >> 40) > (f2 >> 40));
    TH_EQ_INT(th_server_resume(k->node[victim]), 0);
    dlock_lock *l = NULL;
    int rc = dlock_try_acquire(old, name, 10000, &l); /* may reach the deposed master */
    if (rc == DLOCK_OK) {
        int64_t f4 = fence_of(l);
        printf("the client that never noticed: fence %" PRId64 " (epoch %" PRId64 ")\n", f4,
               f4 >> 40);
        TH_CHECK(f4 != f3 && f4 != f2);
        /* From the deposed master: below the new master's. From the new
         * one: above everything before. */
        TH_CHECK((f4 >> 40) == (f2 >> 40) ? f4 < f3 : f4 > f3);
        dlock_release(l);
        dlock_lock_free(l);
    } else {
        printf("the client that never noticed: %s (%s)\n", dlock_err_name(rc),
               dlock_client_errstr(old));
    }

    /* 2. Kill the (new) master: its replica (the old master, back in sync)
     * takes over with a higher epoch. */
    end = th_now_us() + 20000000;
    while (replica_of(k, rep) < 0 && th_now_us() < end)
        th_sleep_ms(50);
    int rep2 = replica_of(k, rep);
    TH_CHECK(rep2 >= 0);
    int64_t f5 = take(fresh, name);
    sync_replica(k, rep, name);
    TH_EQ_INT(th_server_kill(k->node[rep]), 0);
    int64_t f6 = take(fresh, name);
    printf("after the kill: fences %" PRId64 " then %" PRId64 " (epochs %" PRId64 " -> %" PRId64
           ")\n",
           f5, f6, f5 >> 40, f6 >> 40);
    TH_CHECK(f6 > f5 && (f6 >> 40) > (f5 >> 40));
    dlock_client_free(old);
    dlock_client_free(fresh);
    tt_cluster_free(k);
    printf("test_cluster_epoch: 1 passed, 0 failed\n");
    return 0;
}

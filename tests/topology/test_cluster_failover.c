/* test_cluster_failover.c - a Redis Cluster master dies (SIGKILL) and its
 * replica takes over: the same client, retrying, finds the new owner of the
 * slots (the connection to the dead master fails, which makes the client
 * reload the slot map) and a lock replicated before the failure is still
 * there and still ours. 3 masters + 3 replicas on loopback.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlock.h"
#include "harness.h"
#include "engine.h"
#include "topo.h"


int main(void) {
    th_test_init(70);
    long long t0 = th_now_us();
    tt_cluster *k = tt_cluster_start_replicated(3, 1);
    TH_CHECK(k != NULL);
    printf("cluster (3 masters + 3 replicas) up in %.1f s\n", (th_now_us() - t0) / 1e6);

    dlock_options o;
    dlock_options_init(&o);
    o.connect_timeout_ms = 300;
    o.command_timeout_ms = 500;
    dlock_client *c = NULL;
    TH_EQ_INT(dlock_client_new(&c, k->url, &o), DLOCK_OK);

    /* Two names on the master that serves slot 0's neighbourhood. */
    int victim = tt_cluster_owner(k, 0, 100);
    TH_CHECK(victim >= 0);
    char a[64], b[64];
    int sa = tt_name_on_node(k, victim, "dlock:", "fo-a", a, sizeof a);
    int sb = tt_name_on_node(k, victim, "dlock:", "fo-b", b, sizeof b);
    TH_CHECK(sa >= 0 && sb >= 0);
    dlock_lock *la = NULL;
    TH_EQ_INT(dlock_try_acquire(c, a, 60000, &la), DLOCK_OK);
    /* Replicated before the crash: this test is about the client. WAIT
     * counts the writes of its own connection, so write in a's slot first
     * (the replication stream is ordered: a's lock is acknowledged too). */
    char sync[128];
    snprintf(sync, sizeof sync, "dlock:{%s}:sync", a);
    redisReply *w = th_server_cmd(k->node[victim], "SET %s 1", sync);
    TH_CHECK(w != NULL && w->type == REDIS_REPLY_STATUS);
    freeReplyObject(w);
    TH_EQ_INT(th_server_int(k->node[victim], "WAIT 1 5000"), 1);

    /* The replicated acquire works on a cluster too: WAIT goes to the
     * slot's master, and the replica has the lock when the call returns. */
    char rurl[600];
    snprintf(rurl, sizeof rurl, "%s?replicas=1&replica_timeout=2000", k->url);
    dlock_client *cr = NULL;
    TH_EQ_INT(dlock_client_new(&cr, rurl, &o), DLOCK_OK);
    char r1[64];
    TH_CHECK(tt_name_on_node(k, victim, "dlock:", "fo-r", r1, sizeof r1) >= 0);
    dlock_lock *lr = NULL;
    TH_EQ_INT(dlock_try_acquire(cr, r1, 60000, &lr), DLOCK_OK);
    int replica = -1;
    for (int i = 0; i < k->n; i++) {
        char want[32];
        snprintf(want, sizeof want, "master_port:%d\r", th_server_port(k->node[victim]));
        redisReply *ir = th_server_cmd(k->node[i], "INFO replication");
        if (ir != NULL && ir->type == REDIS_REPLY_STRING && strstr(ir->str, want) != NULL)
            replica = i;
        freeReplyObject(ir);
    }
    TH_CHECK(replica >= 0);
    redisReply *ro = th_server_cmd(k->node[replica], "READONLY");
    TH_CHECK(ro != NULL && ro->type == REDIS_REPLY_STATUS);
    freeReplyObject(ro);
    char rkey[128];
    snprintf(rkey, sizeof rkey, "dlock:{%s}", r1);
    TH_EQ_INT(th_server_int(k->node[replica], "EXISTS %s", rkey), 1);

    int live = (victim + 1) % k->n;
    TH_EQ_INT(th_server_kill(k->node[victim]), 0);
    long long t = th_now_us();
    dlock_lock *lb = NULL;
    int attempts = 0, rc;
    char first[300] = "", last[300] = "";
    for (;;) {
        attempts++;
        long long t1 = th_now_us();
        rc = dlock_try_acquire(c, b, 60000, &lb);
        long long ms = (th_now_us() - t1) / 1000;
        if (ms > o.connect_timeout_ms * 2 + o.command_timeout_ms * 3)
            TH_FAIL("one try took %lld ms", ms);
        if (rc == DLOCK_OK)
            break;
        snprintf(last, sizeof last, "%s: %s", dlock_err_name(rc), dlock_client_errstr(c));
        if (first[0] == '\0')
            memcpy(first, last, sizeof first);
        if (th_now_us() - t > 30000000LL)
            TH_FAIL("no lock 30 s after the master died (%d tries); last: %s", attempts, last);
        th_sleep_ms(100);
    }
    /* The client may have learnt of the promotion (from the new master)
     * before `live` has: ask it until it agrees (gossip converges). */
    int owner = tt_cluster_owner(k, live, sb);
    for (long long end = th_now_us() + 5000000; owner == victim && th_now_us() < end;) {
        th_sleep_ms(50);
        owner = tt_cluster_owner(k, live, sb);
    }
    printf("master %d killed: lock on node %d (was a replica) after %.2f s, %d tries\n"
           "  first error: %s\n  last error: %s\n",
           victim, owner, (th_now_us() - t) / 1e6, attempts, first, last);
    TH_CHECK(owner >= 0 && owner != victim);
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}", b);
    TH_EQ_INT(th_server_int(k->node[owner], "EXISTS %s", key), 1);
    /* The lock taken before the crash survived on the replica. */
    rc = dlock_extend(la, 60000);
    if (rc != DLOCK_OK) {
        snprintf(key, sizeof key, "dlock:{%s}", a);
        redisReply *r = th_server_cmd(k->node[owner], "HGETALL %s", key);
        fprintf(stderr, "extend: %s: %s; %s on node %d: %s (%zu elements)\n", dlock_err_name(rc),
                dlock_client_errstr(c), key, owner,
                r == NULL ? "no reply" : r->type == REDIS_REPLY_ARRAY ? "hash" : "other",
                r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0);
        freeReplyObject(r);
        for (int i = 0; i < k->n; i++) {
            if (i == victim)
                continue;
            r = th_server_cmd(k->node[i], "INFO replication");
            fprintf(stderr, "node %d (port %d): %s\n", i, th_server_port(k->node[i]),
                    r && r->type == REDIS_REPLY_STRING ? r->str : "?");
            freeReplyObject(r);
        }
        TH_FAIL("lock lost in the failover");
    }
    TH_EQ_INT(dlock_release(la), DLOCK_OK);
    TH_EQ_INT(dlock_release(lb), DLOCK_OK);
    TH_EQ_INT(owner, replica);
    TH_EQ_INT(th_server_int(k->node[owner], "EXISTS %s", rkey), 1);
    dlock_lock_free(lr);
    dlock_client_free(cr);
    dl_cluster_stats st;
    dl_client_cluster_stats(c, &st);
    printf("stats: moved %ld asks %ld tryagain %ld refreshes %ld nodes %d\n", st.moved, st.asks,
           st.tryagain, st.refreshes, st.nodes);
    TH_CHECK(st.refreshes > 1);
    dlock_lock_free(la);
    dlock_lock_free(lb);
    dlock_client_free(c);
    tt_cluster_free(k);
    printf("test_cluster_failover: ok in %.1f s\n", (th_now_us() - t0) / 1e6);
    return 0;
}

/* test_cluster_reconnect.c - issue 10 §4, "Every operation on a lock must
 * go to the master the client currently trusts": on Sentinel the engine
 * asks the sentinels (and ROLE) again before a connection that was up
 * connects again (src/topo/sentinel.c). On a Cluster it connected again to the same
 * address, which after a failover can be the old master restarted: back
 * with its old nodes.conf, it believes for a moment that it still serves
 * its slots. Redis itself refuses writes there for a while (CLUSTERDOWN
 * during its rejoin delay, MOVED once gossip has made it a replica), but a
 * node cut off from the cluster bus past that delay would accept them
 * (Redis Cluster's minority window); the client must not go there when
 * the rest of the cluster says otherwise.
 *
 * 3 masters + 3 replicas. A client takes and releases a lock on master A
 * (its connection to A is up); A is killed; its replica B takes over; A is
 * restarted. The client's next operations on that lock (an acquire, an
 * extension, a release) must all go to B: A must see no script call at
 * all, executed or refused (INFO commandstats, which starts afresh with
 * the restart). Before, the acquire went to A first (refused there with
 * CLUSTERDOWN, then retried). Then the same once A is a replica again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo.h"

/* calls + rejected_calls + failed_calls of `cmd` on s (INFO commandstats). */
static long sent_to(th_server *s, const char *cmd) {
    redisReply *r = th_server_cmd(s, "INFO commandstats");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    char pat[64];
    snprintf(pat, sizeof pat, "cmdstat_%s:", cmd);
    const char *p = strstr(r->str, pat);
    long n = 0;
    if (p != NULL) {
        const char *end = strchr(p, '\r');
        const char *fields[3] = {"calls=", "rejected_calls=", "failed_calls="};
        for (int i = 0; i < 3; i++) {
            const char *f = strstr(p, fields[i]);
            if (f != NULL && (end == NULL || f < end) && (f == p + strlen(pat) || f[-1] == ','))
                n += strtol(f + strlen(fields[i]), NULL, 10);
        }
    }
    freeReplyObject(r);
    return n;
}

static long scripts_to(th_server *s) { return sent_to(s, "evalsha") + sent_to(s, "eval"); }

static int replica_of(tt_cluster *k, int master) {
    char want[32];
    snprintf(want, sizeof want, "master_port:%d\r", th_server_port(k->node[master]));
    for (int i = 0; i < k->n; i++) {
        redisReply *ir = th_server_cmd(k->node[i], "INFO replication");
        int is = ir != NULL && ir->type == REDIS_REPLY_STRING && strstr(ir->str, want) != NULL;
        freeReplyObject(ir);
        if (is)
            return i;
    }
    return -1;
}

/* Waits until every live node but `skip` says `want` serves slot, OK. */
static void wait_owner(tt_cluster *k, int slot, int want, int skip) {
    long long end = th_now_us() + 30000000LL;
    for (;;) {
        int good = 1;
        for (int i = 0; good && i < k->n; i++) {
            if (i == skip)
                continue;
            good = tt_cluster_owner(k, i, slot) == want;
            redisReply *r = th_server_cmd(k->node[i], "CLUSTER INFO");
            good = good && r != NULL && r->type == REDIS_REPLY_STRING &&
                   strstr(r->str, "cluster_state:ok") != NULL;
            freeReplyObject(r);
        }
        if (good)
            return;
        if (th_now_us() >= end)
            TH_FAIL("node %d does not serve slot %d after 30 s", want, slot);
        th_sleep_ms(50);
    }
}

#define OK(c, expr)                                                                       \
    do {                                                                                  \
        int ok_rc_ = (expr);                                                              \
        if (ok_rc_ != DLOCK_OK)                                                           \
            TH_FAIL("%s: %s: %s", #expr, dlock_err_name(ok_rc_), dlock_client_errstr(c)); \
    } while (0)

/* Acquire (riding out what is left of the failover), extend, release;
 * returns the lock's fence. */
static int64_t use(dlock_client *c, const char *name) {
    dlock_lock *l = NULL;
    OK(c, dlock_wait(c, name, 20000, 10000, &l));
    dlock_info i;
    dlock_info_get(l, &i);
    OK(c, dlock_extend(l, 10000));
    OK(c, dlock_release(l));
    dlock_lock_free(l);
    return i.fence;
}

int main(void) {
    th_test_init(85);
    tt_cluster *k = tt_cluster_start_replicated(3, 1);
    TH_CHECK(k != NULL);
    int a = tt_cluster_owner(k, 0, 100);
    TH_CHECK(a >= 0);
    char name[64];
    int slot = tt_name_on_node(k, a, "dlock:", "rc", name, sizeof name);
    TH_CHECK(slot >= 0);
    int b = replica_of(k, a);
    TH_CHECK(b >= 0);
    dlock_client *c = tt_client(k->url, 300, 500);
    int64_t f0 = use(c, name); /* the client's connection to A is up */
    printf("lock '%s' (slot %d) on node %d, fence %" PRId64 "; replica node %d\n", name, slot,
           a, f0, b);

    TH_EQ_INT(th_server_kill(k->node[a]), 0);
    wait_owner(k, slot, b, a);
    TH_EQ_INT(th_server_restart(k->node[a]), 0);
    long long t0 = th_now_us();
    int64_t f1 = use(c, name);
    long to_a = scripts_to(k->node[a]);
    printf("after the restart of node %d: lock taken, extended and released in %lld ms, fence "
           "%" PRId64 "; script calls sent to the restarted node: %ld\n",
           a, (th_now_us() - t0) / 1000, f1, to_a);
    TH_EQ_INT(to_a, 0);
    TH_CHECK(f1 > f0);

    /* Once A is a replica again, still nothing goes there. */
    TH_EQ_INT(tt_wait_replica_synced(k->node[a], 30000), 0);
    use(c, name);
    TH_EQ_INT(scripts_to(k->node[a]), 0);
    dlock_client_free(c);
    tt_cluster_free(k);
    printf("test_cluster_reconnect: ok\n");
    return 0;
}

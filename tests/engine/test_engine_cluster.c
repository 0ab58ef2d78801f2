/* test_engine_cluster.c - the non-blocking API on a Redis Cluster (3
 * masters, each with a replica), driven by the test's own poll loop
 * (etopo.h), which times every dlock_client_process call:
 *   1. every operation on names spread over the masters: try, acquire,
 *      inspect, extend, a wait woken by a release, release; each lock on
 *      the node that serves its slot, and the slot map loaded once;
 *   2. a slot migrated, keys and all, while a lock in it is held and kept
 *      alive by the engine: the keepalive and the release follow ASK and
 *      MOVED to the new owner, and a new name of that slot is taken there;
 *   3. a master killed (its replica takes over): a kept-alive lock on it
 *      survives, extended on the new master; a wait on another of its
 *      names completes there within its deadline; and no turn of the loop
 *      blocks while the map is reloaded and the dead node refuses
 *      (ETOPO_PROCESS_MAX_MS). */
#include <inttypes.h>

#include "engine.h"
#include "etopo.h"

#define CONNECT_MS 300
#define COMMAND_MS 500

static tt_cluster *K;

static et_res try_lock(dlock_client *c, const char *name, int64_t ttl) {
    et_res r = {0};
    long long t0 = th_now_us();
    IT_RC(c, dlock_try_acquire_async(c, name, ttl, et_cb, &r, NULL), DLOCK_OK);
    TH_CHECK(th_now_us() - t0 < 20000); /* returns at once, map loaded or not */
    etopo_run(c, &r.done, 5000);
    TH_CHECK(r.done);
    return r;
}

static void release_ok(dlock_client *c, dlock_lock *l) {
    et_res r = {0};
    IT_RC(c, dlock_release_async(l, et_cb, &r, NULL), DLOCK_OK);
    etopo_run(c, &r.done, 5000);
    ET_STATUS(r, DLOCK_OK);
    dlock_lock_free(l);
}

static long long exists_on(int node, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(K->node[node], "EXISTS %s", key);
}

static void every_op(dlock_client *c) {
    for (int i = 0; i < K->n; i++) {
        if (tt_cluster_owner(K, i, 0) < 0)
            continue;
        char name[64];
        int slot = tt_name_on_node(K, i, "dlock:", "ops", name, sizeof name);
        int owner = tt_cluster_owner(K, 0, slot);
        if (owner != i)
            continue; /* a replica: names land on masters only */
        et_res a = try_lock(c, name, 5000);
        ET_STATUS(a, DLOCK_OK);
        TH_EQ_INT(exists_on(i, name), 1);
        et_res in = {0}, ex = {0}, w = {0}, rel = {0};
        IT_RC(c, dlock_inspect_async(c, name, et_cb, &in, NULL), DLOCK_OK);
        IT_RC(c, dlock_extend_async(a.lock, 20000, et_cb, &ex, NULL), DLOCK_OK);
        etopo_run(c, &in.done, 5000);
        etopo_run(c, &ex.done, 5000);
        ET_STATUS(in, DLOCK_OK);
        ET_STATUS(ex, DLOCK_OK);
        TH_CHECK(in.holder.locked && in.holder.fence == a.fence);
        IT_RC(c, dlock_wait_async(c, name, 10000, 5000, et_cb, &w, NULL), DLOCK_OK);
        etopo_spin(c, 100);
        TH_CHECK(!w.done);
        IT_RC(c, dlock_release_async(a.lock, et_cb, &rel, NULL), DLOCK_OK);
        long long t0 = th_now_us();
        etopo_run(c, &w.done, 5000);
        etopo_run(c, &rel.done, 5000);
        ET_STATUS(rel, DLOCK_OK);
        ET_STATUS(w, DLOCK_OK);
        TH_CHECK(th_now_us() - t0 < 2000000); /* woken by the release */
        TH_CHECK(w.fence > a.fence);
        dlock_lock_free(a.lock);
        release_ok(c, w.lock);
        TH_EQ_INT(exists_on(i, name), 0);
        et_res q = {0}; /* the retrying acquire */
        IT_RC(c, dlock_acquire_async(c, name, 5000, et_cb, &q, NULL), DLOCK_OK);
        etopo_run(c, &q.done, 5000);
        ET_STATUS(q, DLOCK_OK);
        TH_EQ_INT(exists_on(i, name), 1);
        release_ok(c, q.lock);
        printf("node %d (port %d, slot %d): every operation ok\n", i,
               th_server_port(K->node[i]), slot);
    }
    dl_cluster_stats st;
    dl_client_cluster_stats(c, &st);
    printf("stats: moved %ld asks %ld refreshes %ld\n", st.moved, st.asks, st.refreshes);
    TH_EQ_INT(st.moved, 0);
    TH_EQ_INT(st.refreshes, 1);
}

/* Run the loop a while, so the keepalive (every 200 ms) extends through
 * whatever the slot's state is now. */
static void step(dlock_client *c) { etopo_spin(c, 500); }

static void migration(dlock_client *c) {
    int src = tt_cluster_owner(K, 0, 100), dst = -1;
    for (int i = 0; i < K->n && dst < 0; i++)
        if (i != src && tt_cluster_owner(K, 0, 0) >= 0) {
            char probe[64];
            int s = tt_name_on_node(K, i, "dlock:", "probe", probe, sizeof probe);
            if (s >= 0 && tt_cluster_owner(K, 0, s) == i)
                dst = i;
        }
    TH_CHECK(src >= 0 && dst >= 0);
    char held[64], fresh[64];
    int slot = tt_name_on_node(K, src, "dlock:", "mig-held", held, sizeof held);
    TH_CHECK(slot >= 0);
    TH_EQ_INT(tt_name_in_slot(slot, "dlock:", "mig-new", fresh, sizeof fresh), 0);
    et_res a = try_lock(c, held, 3000);
    ET_STATUS(a, DLOCK_OK);
    int lost = 0;
    IT_RC(c, dlock_keepalive_start(a.lock, 200, etopo_on_lost, &lost), DLOCK_OK);
    dl_cluster_stats s0, s1;
    dl_client_cluster_stats(c, &s0);
    g_etopo_max_us = 0;
    TH_EQ_INT(tt_slot_begin(K, slot, src, dst), 0);
    step(c);
    TH_EQ_INT(tt_slot_keys(K, slot, src, dst), 0);
    step(c);
    TH_EQ_INT(tt_slot_finish(K, slot, dst), 0);
    step(c);
    step(c);
    TH_EQ_INT(lost, 0);
    TH_EQ_INT(dlock_held(a.lock), 1);
    TH_EQ_INT(exists_on(dst, held), 1);
    TH_CHECK(th_server_int(K->node[dst], "PTTL dlock:{%s}", held) > 2000);
    et_res b = try_lock(c, fresh, 5000);
    ET_STATUS(b, DLOCK_OK);
    TH_EQ_INT(exists_on(dst, fresh), 1);
    TH_EQ_INT(th_server_int(K->node[src], "CLUSTER COUNTKEYSINSLOT %d", slot), 0);
    release_ok(c, a.lock);
    release_ok(c, b.lock);
    TH_EQ_INT(exists_on(dst, held), 0);
    dl_client_cluster_stats(c, &s1);
    printf("slot %d moved from node %d to %d under a kept-alive lock: moved +%ld, asks +%ld, "
           "map loads +%ld\n",
           slot, src, dst, s1.moved - s0.moved, s1.asks - s0.asks, s1.refreshes - s0.refreshes);
    TH_CHECK(s1.moved > s0.moved);
    TH_CHECK(s1.refreshes > s0.refreshes);
    etopo_check_turns("slot migration");
}

static void failover(dlock_client *c) {
    int victim = tt_cluster_owner(K, 0, 15000);
    TH_CHECK(victim >= 0);
    char a[64], b[64];
    TH_CHECK(tt_name_on_node(K, victim, "dlock:", "fo-a", a, sizeof a) >= 0);
    TH_CHECK(tt_name_on_node(K, victim, "dlock:", "fo-b", b, sizeof b) >= 0);
    et_res la = try_lock(c, a, 15000);
    ET_STATUS(la, DLOCK_OK);
    int lost = 0;
    IT_RC(c, dlock_keepalive_start(la.lock, 500, etopo_on_lost, &lost), DLOCK_OK);
    /* Replicated before the crash: WAIT counts this connection's writes,
     * and the replication stream is ordered. */
    TH_CHECK(th_server_int(K->node[victim], "WAIT 1 5000") >= 0);
    char sync[128];
    snprintf(sync, sizeof sync, "dlock:{%s}:sync", a);
    redisReply *w = th_server_cmd(K->node[victim], "SET %s 1", sync);
    TH_CHECK(w != NULL && w->type == REDIS_REPLY_STATUS);
    freeReplyObject(w);
    TH_EQ_INT(th_server_int(K->node[victim], "WAIT 1 5000"), 1);

    g_etopo_max_us = 0;
    long long t0 = th_now_us();
    TH_EQ_INT(th_server_kill(K->node[victim]), 0);
    et_res wb = {0};
    IT_RC(c, dlock_wait_async(c, b, 30000, 10000, et_cb, &wb, NULL), DLOCK_OK);
    etopo_run(c, &wb.done, 30000);
    int live = (victim + 1) % K->n;
    while (tt_cluster_owner(K, live, 0) < 0 && live != victim)
        live = (live + 1) % K->n;
    int owner = tt_cluster_owner(K, live, tt_lock_slot("dlock:", b));
    printf("master %d killed: the wait got '%s' on node %d after %.2f s: %s\n", victim, b, owner,
           (th_now_us() - t0) / 1e6, wb.done ? dlock_err_name(wb.status) : "not done");
    ET_STATUS(wb, DLOCK_OK);
    TH_CHECK(owner >= 0 && owner != victim);
    TH_EQ_INT(exists_on(owner, b), 1);
    /* The kept-alive lock survived on the replica, extended there. */
    char akey[128];
    snprintf(akey, sizeof akey, "dlock:{%s}", a);
    TH_CHECK(etopo_until_int(c, K->node[owner], "PTTL", akey, 14000, 5000) >= 14000);
    TH_EQ_INT(lost, 0);
    TH_EQ_INT(dlock_held(la.lock), 1);
    etopo_check_turns("cluster failover");
    release_ok(c, la.lock);
    release_ok(c, wb.lock);
    TH_EQ_INT(exists_on(owner, a), 0);
}

int main(void) {
    th_test_init(110);
    long long t0 = th_now_us();
    K = tt_cluster_start_replicated(3, 1);
    TH_CHECK(K != NULL);
    printf("cluster (3 masters + 3 replicas) up in %.1f s\n", (th_now_us() - t0) / 1e6);
    dlock_client *c = etopo_client(K->url, CONNECT_MS, COMMAND_MS);
    every_op(c);
    migration(c);
    failover(c);
    dlock_client_free(c);
    tt_cluster_free(K);
    IT_PASS("test_engine_cluster");
    return 0;
}

/* test_cluster.c - Redis Cluster over TLS (rediss-cluster://): three masters
 * with --tls-cluster yes. The client loads the slot map over TLS (CLUSTER
 * SLOTS answers a TLS client with the nodes' TLS ports), takes a lock on
 * every node (the keys land on the slot's owner), and follows a MOVED to
 * another node over TLS after a slot is reassigned behind its back. */
#include <string.h>

#include "engine.h" /* dl_client_cluster_stats: the redirect counters */
#include "crc16.h"
#include "tls_env.h"

/* A name whose lock key "dlock:{name}" lies in a slot served by node want. */
static void name_on(te_cluster *k, int want, char *out, size_t n, int *slot) {
    for (int i = 0; i < 100000; i++) {
        snprintf(out, n, "tls-%d-%d", want, i);
        char key[64];
        int len = snprintf(key, sizeof key, "dlock:{%s}", out);
        *slot = dl_key_slot(key, (size_t)len);
        if (te_cluster_owner(k, *slot) == want)
            return;
    }
    TH_FAIL("no name for node %d", want);
}

static void lock_on(dlock_client *c, th_server *owner, const char *name) {
    dlock_lock *l = NULL;
    IT_RC(c, dlock_try_acquire(c, name, 10000, &l), DLOCK_OK);
    TH_EQ_INT(th_server_int(owner, "EXISTS dlock:{%s}", name), 1);
    IT_RC(c, dlock_release(l), DLOCK_OK);
    dlock_lock_free(l);
}

int main(void) {
    th_test_init(80);
    te_init();
    te_cluster k;
    te_cluster_start(&k, 3);
    printf("cluster: %s\n", k.url);
    dlock_client *c = te_client(k.url, 1000, 1000);
    char names[3][32];
    int slots[3];
    for (int i = 0; i < 3; i++) {
        name_on(&k, i, names[i], sizeof names[i], &slots[i]);
        lock_on(c, k.node[i], names[i]);
        printf("lock '%s' (slot %d) taken and released on node %d over TLS\n", names[i],
               slots[i], i);
    }
    /* Move node 0's slot to node 1 (emptied first: the fence counter stays
     * after a release); the client's map still says node 0, which answers
     * MOVED with node 1's TLS port. */
    redisReply *keys = th_server_cmd(k.node[0], "CLUSTER GETKEYSINSLOT %d 100", slots[0]);
    TH_CHECK(keys != NULL && keys->type == REDIS_REPLY_ARRAY);
    for (size_t j = 0; j < keys->elements; j++)
        freeReplyObject(th_server_cmd(k.node[0], "DEL %s", keys->element[j]->str));
    freeReplyObject(keys);
    redisReply *id = th_server_cmd(k.node[1], "CLUSTER MYID");
    TH_CHECK(id != NULL && id->type == REDIS_REPLY_STRING);
    for (int i = 0; i < 3; i++) {
        redisReply *r = th_server_cmd(k.node[i], "CLUSTER SETSLOT %d NODE %s", slots[0], id->str);
        if (r == NULL || r->type != REDIS_REPLY_STATUS)
            TH_FAIL("SETSLOT on node %d: %s", i, r && r->str ? r->str : "no reply");
        freeReplyObject(r);
    }
    freeReplyObject(id);
    dl_cluster_stats st0, st1;
    dl_client_cluster_stats(c, &st0);
    lock_on(c, k.node[1], names[0]);
    dl_client_cluster_stats(c, &st1);
    printf("after SETSLOT: '%s' locked on node 1, %ld MOVED followed over TLS\n", names[0],
           st1.moved - st0.moved);
    TH_CHECK(st1.moved > st0.moved);
    dlock_client_free(c);
    te_cluster_free(&k);
    printf("tls_cluster: 1 passed, 0 failed\n");
    return 0;
}

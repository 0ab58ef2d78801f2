/* cluster.c - Redis Cluster: slot map, MOVED and ASK. */
#include "topo_ext.h"

int dl_cluster_init(dlock_client *c) {
    return dl_seterr(c, DLOCK_ENOTSUP, "redis-cluster:// is not implemented yet");
}

void dl_cluster_free(dl_topo *t) { (void)t; }

int dl_cluster_target(dlock_client *c, const char *key, size_t klen, dl_call *call) {
    (void)key;
    (void)klen;
    (void)call;
    return dl_seterr(c, DLOCK_ENOTSUP, "redis-cluster:// is not implemented yet");
}

int dl_cluster_redirect(dlock_client *c, dl_conn *from, const redisReply *r, dl_conn **to,
                        int *asking) {
    (void)c;
    (void)from;
    (void)r;
    (void)to;
    (void)asking;
    return 0;
}

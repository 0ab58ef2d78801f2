/* sentinel.c - Redis Sentinel: find the master through the sentinels. */
#include "topo_ext.h"

int dl_sentinel_init(dlock_client *c) {
    return dl_seterr(c, DLOCK_ENOTSUP, "redis-sentinel:// is not implemented yet");
}

void dl_sentinel_free(dl_topo *t) { (void)t; }

int dl_sentinel_target(dlock_client *c, dl_call *call) {
    (void)call;
    return dl_seterr(c, DLOCK_ENOTSUP, "redis-sentinel:// is not implemented yet");
}

int dl_sentinel_redirect(dlock_client *c, dl_conn *from, const redisReply *r, dl_conn **to) {
    (void)c;
    (void)from;
    (void)r;
    (void)to;
    return 0;
}

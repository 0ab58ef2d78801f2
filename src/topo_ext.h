/* topo_ext.h - the Sentinel and Cluster halves of the topology layer.
 * Internal; called only from topology.c. */
#ifndef DLOCK_TOPO_EXT_H
#define DLOCK_TOPO_EXT_H

#include "internal.h"

/* sentinel.c: resolve the master through the sentinels (lazily). */
DL_INTERNAL int dl_sentinel_init(dlock_client *c);
DL_INTERNAL void dl_sentinel_free(dl_topo *t);
/* Set call->conns[0] (n = 1) to the current master, discovering it first if
 * needed (bounded by the client's timeouts). */
DL_INTERNAL int dl_sentinel_target(dlock_client *c, dl_call *call);
/* READONLY / connection lost on the master: forget it, rediscover, and set
 * *to to the new master. Returns 1 when the call should be retried. */
DL_INTERNAL int dl_sentinel_redirect(dlock_client *c, dl_conn *from, const redisReply *r,
                                     dl_conn **to);

/* cluster.c: slot map from CLUSTER SLOTS, MOVED/ASK. */
DL_INTERNAL int dl_cluster_init(dlock_client *c);
DL_INTERNAL void dl_cluster_free(dl_topo *t);
DL_INTERNAL int dl_cluster_target(dlock_client *c, const char *key, size_t klen, dl_call *call);
DL_INTERNAL int dl_cluster_redirect(dlock_client *c, dl_conn *from, const redisReply *r,
                                    dl_conn **to, int *asking);

/* Redirects and map loads seen by a cluster client so far (for tests and
 * diagnostics); all zero for other deployments. */
typedef struct dl_cluster_stats {
    long moved;     /* MOVED redirects followed */
    long asks;      /* ASK redirects followed */
    long tryagain;  /* TRYAGAIN / CLUSTERDOWN retries */
    long refreshes; /* CLUSTER SLOTS loads attempted */
    int nodes;      /* nodes in the client's table */
} dl_cluster_stats;
DL_INTERNAL void dl_cluster_counters(const dlock_client *c, dl_cluster_stats *out);

#endif

/* topology.h - what the URL names, as a table of functions per kind:
 *   direct    one server, or a Redlock set of independent masters (topo.c)
 *   sentinel  the master that the sentinels name, verified by ROLE
 *   cluster   the slot owner from CLUSTER SLOTS, with MOVED / ASK
 * The layer above (quorum) asks only two things: which servers a key's
 * command goes to, and where to go after a redirect or a lost master. */
#ifndef DLOCK_TOPO_H
#define DLOCK_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "ctx.h"
#include "url.h"

typedef struct dl_cluster dl_cluster;   /* cluster.c */
typedef struct dl_sentinel dl_sentinel; /* sentinel.c */
typedef struct dl_topo dl_topo;

/* The servers one command goes to (Redlock: every master). */
typedef struct dl_targets {
    int n;
    dl_conn *conns[DL_URL_MAX_HOSTS];
} dl_targets;

typedef struct dl_topo_ops {
    int (*init)(dl_topo *t);
    void (*free)(dl_topo *t);
    int (*targets)(dl_topo *t, const char *key, size_t klen, dl_targets *out);
    /* A reply (or, r == NULL, a failed connection to `from`) says the key
     * lives elsewhere: set *to (and *asking for ASK); 1 if worth a retry. */
    int (*redirect)(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to, int *asking);
    /* Every server holding data (dl_topo_masters); NULL: those of targets. */
    int (*masters)(dl_topo *t, const dl_conn **out, int cap, int *n);
    /* NULL, or: the server host:port is about to be connected again:
     * check that it still serves before the next targets() trusts it
     * (dl_topo_recheck). */
    void (*recheck)(dl_topo *t, const char *host, int port);
} dl_topo_ops;

struct dl_topo {
    const dl_topo_ops *ops;
    const dl_url *url; /* owned by the client */
    dl_conn_cfg cfg;   /* what every connection needs to (re)connect */
    int connect_timeout_ms;
    int command_timeout_ms;
    dl_ctx *ctx; /* where failures are reported; its cap bounds every wait */
    int n;       /* direct: servers in `conns` */
    dl_conn *conns;
    dl_cluster *cluster;
    dl_sentinel *sentinel;
};

/* Set up the topology for t->url (t->url, cfg, timeouts and ctx filled by
 * the caller). Nothing is connected yet. DLOCK_OK, DLOCK_ENOMEM, EINVAL. */
DL_INTERNAL int dl_topo_init(dl_topo *t);
DL_INTERNAL void dl_topo_free(dl_topo *t);
/* The servers for `key` (discovering the master or the slot map first if
 * needed, within the context's cap). */
DL_INTERNAL int dl_topo_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out);
DL_INTERNAL int dl_topo_redirect(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to,
                                 int *asking);
/* A connection to the key's server host:port (host NULL: a Unix socket)
 * is about to be made again (the old one broke or was closed), and a
 * restarted or deposed master may answer at the old address, still
 * believing it serves: Sentinel forgets its master, so the next
 * dl_topo_targets asks the sentinels and checks ROLE before anything is
 * sent; Cluster reloads the slot map first, asking that node last (its
 * own view is the one in doubt). No-op for one server and Redlock. */
DL_INTERNAL void dl_topo_recheck(dl_topo *t, const char *host, int port);
/* Most servers dl_topo_masters reports (a Cluster's node table holds 1024). */
#define DL_TOPO_MAX_MASTERS 1024
/* Every server that holds locks, for commands about no one key (SCAN): the
 * one server, every Redlock master, the Sentinel master, every Cluster
 * master serving slots (the slot map is reloaded first). Fills
 * out[0..*n), at most cap. The pointers are valid only until the next call
 * on t (a Cluster map reload may drop nodes): copy the addresses. Returns
 * DLOCK_OK, the discovery's error, or DLOCK_EPROTO when more than cap. */
DL_INTERNAL int dl_topo_masters(dl_topo *t, const dl_conn **out, int cap, int *n);
/* Deadline for one round trip to these targets: now + command timeout
 * (+ connect timeout if one is not connected), capped by the context. */
DL_INTERNAL int64_t dl_topo_deadline(const dl_topo *t, const dl_targets *tg);

DL_INTERNAL extern const dl_topo_ops dl_topo_sentinel_ops;
DL_INTERNAL extern const dl_topo_ops dl_topo_cluster_ops;

/* Redirects and map loads seen by a cluster client so far (for tests and
 * diagnostics); all zero for other deployments. */
typedef struct dl_cluster_stats {
    long moved;     /* MOVED redirects followed */
    long asks;      /* ASK redirects followed */
    long tryagain;  /* TRYAGAIN / CLUSTERDOWN retries */
    long refreshes; /* CLUSTER SLOTS loads attempted */
    int nodes;      /* nodes in the client's table */
} dl_cluster_stats;
DL_INTERNAL void dl_cluster_counters(const dl_topo *t, dl_cluster_stats *out);

#endif

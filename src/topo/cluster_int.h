/* cluster_int.h - the state of a Cluster topology, shared by cluster.c
 * (targets, redirects) and cluster_map.c (loading the slot map). Not for
 * the layers above. */
#ifndef DLOCK_CLUSTER_INT_H
#define DLOCK_CLUSTER_INT_H

#include "topo_int.h"

#define DL_CLU_SLOTS 16384
#define DL_CLU_NONE 0xFFFF        /* slot not served by a known node */
#define DL_CLU_MAX_NODES 1024     /* Redis recommends clusters of <= 1000 nodes */
#define DL_CLU_REFRESH_GAP_MS 100 /* at most one stale-map reload per gap */

struct dl_cluster {
    dl_topo *topo;  /* the topology this is part of (for its timer) */
    int nseeds;     /* nodes[0..nseeds) are the URL's addresses */
    int nnodes, cap;
    /* One pipe per node met, each allocated alone and kept until the
     * topology is freed: requests in flight keep pointers to them. A node
     * that serves no slot any more only has its connection closed. */
    dl_pipe **nodes;
    uint16_t slots[DL_CLU_SLOTS];
    uint16_t scratch[DL_CLU_SLOTS]; /* map being parsed */
    int loaded;             /* a map was loaded once */
    int stale;              /* reload before the next request */
    int64_t next_refresh_us; /* no stale-map reload before this */
    long moved, asks, tryagain, refreshes; /* counters, for tests */
    int first;              /* node a load asks first (after one that failed) */
    /* the load under way: one node asked at a time */
    int running;
    unsigned gen;     /* replies of an ended load are dropped */
    int64_t hard_us;  /* the load's bound: connect + command timeout */
    int pass;         /* 0: connected nodes; 1: the rest */
    int k;            /* next position in the pass, counted from `first` */
    int n0;           /* nodes when the load started (parsing adds more) */
    char tried[DL_CLU_MAX_NODES];
    int status;       /* the most telling failure so far */
    size_t off;
    char detail[400]; /* every node's reason so far, "; "-joined */
    dl_timer tick;    /* "look again now": a load whose sends failed at once */
};

/* Reload the slot map (cluster_map.c): start a load unless one runs (one
 * under way past its bound starts over), and queue w. DL_TOPO_PENDING;
 * never ends at once. The waiters are told DLOCK_OK when a map serves
 * (the new one, or the old one if no node answered), else the failure. */
DL_INTERNAL int dl_clu_load(dl_topo *t, dl_topo_wait *w);
/* Index of the node host:port (hlen bytes; "" is none), added if new. -1
 * when the table is full or out of memory. */
DL_INTERNAL int dl_clu_node(dl_topo *t, dl_cluster *s, const char *host, size_t hlen, int port);

#endif

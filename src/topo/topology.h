/* topology.h - what the URL names, as a table of functions per kind:
 *   direct    one server, or a Redlock set of independent masters (topo.c)
 *   sentinel  the master that the sentinels name, verified by ROLE
 *             (sentinel.c; the discovery itself in sentinel_ask.c)
 *   cluster   the slot owner from CLUSTER SLOTS, with MOVED / ASK
 *             (cluster.c; the map load in cluster_map.c)
 *
 * One topology per engine (lock/engine.c), and nothing in it blocks. It
 * owns one pipelined connection (net/pipe.h) per server it meets, data
 * nodes and sentinels alike; the engine watches each of them (the `watch`
 * hook, called when a pipe is made) and fires the topology's timers (its
 * `heap`). Discovery (asking the sentinels for the master and checking
 * ROLE, loading the slot map) runs as requests on those pipes, each with
 * its own deadline. A request that needs a server meanwhile is told
 * DL_TOPO_PENDING and waits (dl_topo_wait) until the discovery ends: it
 * then asks again, or fails with the discovery's reason (dl_topo.why).
 *
 * The layer above (quorum/fan.c) asks two things: which servers a key's
 * request goes to, and where it goes after a redirect or a lost master. */
#ifndef DLOCK_TOPO_H
#define DLOCK_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "ctx.h"
#include "pipe.h"
#include "timer.h"
#include "url.h"

typedef struct dl_cluster dl_cluster;   /* cluster.c */
typedef struct dl_sentinel dl_sentinel; /* sentinel.c */
typedef struct dl_topo dl_topo;
typedef struct dl_topo_wait dl_topo_wait;

/* Waiters, in the order they came (they are told in that order, so
 * requests go out in the order they were made). */
typedef struct dl_topo_wlist {
    dl_topo_wait *head, *tail;
} dl_topo_wlist;

/* Returned (positive: not an error) when a discovery is under way. */
#define DL_TOPO_PENDING 2 /* not 1: redirect answers 1 for "go there" */

/* Someone waiting for the discovery under way: a parked request, the
 * engine's wake-up subscription, a blocking call's map reload. */
struct dl_topo_wait {
    /* The discovery ended: status DLOCK_OK (ask again: dl_topo_targets),
     * or its failure (dl_topo.why says why). Runs from the engine's
     * processing (a reply, a failed connection, a timer), never from the
     * call that queued the waiter. It may queue itself again. */
    void (*fn)(dl_topo_wait *w, int status);
    dl_topo_wait *prev, *next;
    dl_topo_wlist *list; /* the list it is on; NULL when not waiting */
};

/* The servers one request goes to (Redlock: every master). */
typedef struct dl_targets {
    int n;
    dl_pipe *pipes[DL_URL_MAX_HOSTS];
} dl_targets;

typedef struct dl_topo_ops {
    int (*init)(dl_topo *t);
    /* Close every pipe (their requests fail) and free the kind's state. */
    void (*free)(dl_topo *t);
    /* The servers for `key`: DLOCK_OK, DL_TOPO_PENDING (w queued), or the
     * failure of a discovery that ended at once (t->why). */
    int (*targets)(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                   dl_topo_wait *w);
    /* A reply (or, r == NULL, a failed connection to `from`) may say the
     * key lives elsewhere: 1 with *to (and *asking for ASK) set, 0 (the
     * outcome stands), or DL_TOPO_PENDING (a discovery started: w queued;
     * it then asks dl_topo_targets again). */
    int (*redirect)(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to, int *asking,
                    dl_topo_wait *w);
    /* NULL, or: make what the topology knows current (Cluster: reload the
     * slot map; Sentinel: find the master if it is not known): DLOCK_OK
     * when nothing needs doing, else as targets. */
    int (*refresh)(dl_topo *t, dl_topo_wait *w);
    /* NULL, or every server holding data (dl_topo_masters). */
    int (*masters)(dl_topo *t, const dl_conn **out, int cap, int *n);
} dl_topo_ops;

struct dl_topo {
    const dl_topo_ops *ops;
    /* set by the owner before dl_topo_init */
    const dl_url *url;       /* owned by the client */
    const dl_conn_cfg *cfg;  /* what every data connection needs; owned by the client */
    int connect_timeout_ms;
    int command_timeout_ms;
    dl_heap *heap;           /* the owner's timers */
    int (*watch)(void *arg, dl_pipe *p); /* the owner watches p; DLOCK_OK or ENOMEM */
    void (*unwatch)(void *arg, dl_pipe *p); /* ...and stops (p is about to be freed) */
    void *watch_arg;
    /* state */
    int pause_ms;            /* before re-sending after TRYAGAIN / CLUSTERDOWN */
    dl_topo_wlist waiters;   /* waiting for the discovery under way */
    dl_topo_wlist firing;    /* being told that it ended */
    int freeing;             /* dl_topo_free: callbacks start nothing */
    int why_status;          /* the last failed discovery: its status... */
    int why_code;            /* ...server error code (dl_srv_code)... */
    char why[sizeof(((dl_ctx *)0)->err)]; /* ...and why, for the requests that waited */
    int n;                   /* direct: servers in `pipes` */
    dl_pipe *pipes;
    dl_cluster *cluster;
    dl_sentinel *sentinel;
};

/* Whether url names a deployment the topology can serve (Sentinel: 1..N
 * sentinels and a master name; Cluster: 1..N seeds). DLOCK_OK, or
 * DLOCK_EINVAL with x saying why. Pure: no state is made. */
DL_INTERNAL int dl_topo_check(const dl_url *url, dl_ctx *x);
/* Set up the topology for t->url (the fields marked "set by the owner"
 * filled). Nothing is connected yet. DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_topo_init(dl_topo *t);
/* Close every pipe (pending requests fail: their callbacks run) and free
 * the state. No waiter is told. */
DL_INTERNAL void dl_topo_free(dl_topo *t);
/* The servers for `key`, as dl_topo_ops.targets. w may be NULL (nothing
 * is queued: the caller asks again later). */
DL_INTERNAL int dl_topo_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                                dl_topo_wait *w);
DL_INTERNAL int dl_topo_redirect(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to,
                                 int *asking, dl_topo_wait *w);
/* As dl_topo_ops.refresh (DLOCK_OK for kinds with nothing to refresh). */
DL_INTERNAL int dl_topo_refresh(dl_topo *t, dl_topo_wait *w);
/* Most servers dl_topo_masters reports (a Cluster's node table holds 1024). */
#define DL_TOPO_MAX_MASTERS 1024
/* Every server that holds locks, for commands about no one key (SCAN), as
 * the topology knows them now (call dl_topo_refresh first): the one
 * server, every Redlock master, the Sentinel master, every Cluster master
 * serving slots. Fills out[0..*n), at most cap; the pointers are valid
 * until the topology is freed. DLOCK_OK, DLOCK_EIO (the master or the map
 * is not known) or DLOCK_EPROTO (more than cap), with t->why set. */
DL_INTERNAL int dl_topo_masters(dl_topo *t, const dl_conn **out, int cap, int *n);
/* Stop waiting (no-op when w is not queued). */
DL_INTERNAL void dl_topo_unwait(dl_topo_wait *w);
/* What a request that waited until `now` without an answer may say: the
 * discovery under way and the reasons of its failures so far. */
DL_INTERNAL const char *dl_topo_progress(const dl_topo *t);

DL_INTERNAL extern const dl_topo_ops dl_topo_sentinel_ops;
DL_INTERNAL extern const dl_topo_ops dl_topo_cluster_ops;

/* Redirects and map loads seen by a cluster topology so far (for tests
 * and diagnostics); all zero for other deployments. */
typedef struct dl_cluster_stats {
    long moved;     /* MOVED redirects followed */
    long asks;      /* ASK redirects followed */
    long tryagain;  /* TRYAGAIN / CLUSTERDOWN answers left to the caller */
    long refreshes; /* CLUSTER SLOTS loads started */
    int nodes;      /* nodes in the table (the seeds and every node met) */
} dl_cluster_stats;
/* Adds t's counters to *out. */
DL_INTERNAL void dl_cluster_counters(const dl_topo *t, dl_cluster_stats *out);

#endif

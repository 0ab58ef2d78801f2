/* sentinel_int.h - the state of a Sentinel topology, shared by sentinel.c
 * (targets, redirects) and sentinel_ask.c (the discovery). Not for the
 * layers above. */
#ifndef DLOCK_SENTINEL_INT_H
#define DLOCK_SENTINEL_INT_H

#include "topo_int.h"

#define DL_SENT_POLL_MS 100    /* pause between discovery passes */
#define DL_SENT_MAX_MASTERS 64 /* master pipes kept; past that an idle one is re-used */

/* Why the steps of one discovery pass failed: every sentinel's (and every
 * candidate master's) reason, "; "-joined, for the final message. */
typedef struct dl_sent_why {
    int status; /* the most telling status of the pass */
    int code;   /* the first server error code (dl_srv_code) of the pass */
    int soft;   /* a failure in this pass that waiting may cure (EIO) */
    int more;   /* reasons left out: msg was full */
    size_t len;
    char msg[400]; /* with the prefix, fits the 512-byte detail */
} dl_sent_why;

/* A master address a sentinel gave in this pass, to be checked with ROLE. */
typedef struct dl_sent_cand {
    char host[DL_URL_HOST_MAX];
    int port;
    int64_t epoch; /* the master's config-epoch, as the sentinel paired it */
    int from;      /* the sentinel that named it */
} dl_sent_cand;

struct dl_sentinel {
    dl_topo *topo;    /* the topology this is part of (for its timer) */
    dl_conn_cfg scfg; /* for the sentinels: no AUTH, db 0 */
    int n;            /* sentinels */
    dl_pipe *sp[DL_URL_MAX_HOSTS];
    dl_pipe *mp[DL_SENT_MAX_MASTERS]; /* one pipe per master address met */
    int nm;
    dl_pipe *master; /* the verified master, NULL while unknown */
    int next;        /* sentinel that named the master last time */
    int64_t fail_us; /* when the last discovery failed; 0 after a success */
    /* the discovery under way */
    int running;
    int in_pass;   /* a pass is asking (else: pausing between passes) */
    unsigned gen;  /* requests of an ended pass are dropped */
    int64_t poll_until_us, hard_us;
    int asked[DL_URL_MAX_HOSTS]; /* this pass: 0 not asked, 1 waiting, 2 answered */
    redisReply *rep[DL_URL_MAX_HOSTS][3];
    dl_sent_cand cand[DL_URL_MAX_HOSTS];
    int ncand, nchecked;
    int checking;  /* a ROLE request is in flight... */
    dl_pipe *cpipe; /* ...on this pipe */
    dl_sent_why w;
    dl_timer tick; /* the pause between passes, or "look again now" */
    /* The sentinels' +switch-master channel, subscribed on one sentinel
     * once a master is known (sentinel.c): a switch of this master puts it
     * in doubt at once. A deposed master may go on answering as one, to
     * the clients still connected, for seconds before Sentinel demotes it. */
    dl_pipe *sub;
    int sub_from;         /* the sentinel it is on (the next one after a failure) */
    int64_t sub_retry_us; /* no new subscription before this */
    int64_t sub_drained_us; /* the subscription was last read then (sub_drain) */
};

/* Find the master (sentinel_ask.c): start a discovery unless one runs
 * (one under way past its bound, as the blocking engine leaves it between
 * calls, starts over), and queue w. DL_TOPO_PENDING; never ends at once. */
DL_INTERNAL int dl_sent_discover(dl_topo *t, dl_topo_wait *w);

#endif

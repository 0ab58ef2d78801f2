/* fan.h - the non-blocking twin of dl_quorum_run: one request sent to every
 * target pipe at once, answered through a callback.
 *
 * The results land in the same dl_call the blocking path fills, so the
 * layers above read both the same way (deciders, dl_call_error). What the
 * blocking path retries, this does too: NOSCRIPT is re-sent as EVAL with
 * the script's source, and a request that failed on a reused connection
 * before it could have run is re-sent once. Topologies with redirects
 * (Sentinel, Cluster) are not driven here yet.
 *
 * Life cycle: dl_fan_start queues the request; `done` is called once, when
 * every target has its outcome, or a grace after the decider settled the
 * call: the stragglers get as long again as the settling answers took
 * (at least 5 ms), as in the blocking quorum, so that a reply a few
 * microseconds behind still counts (a busy answer is not mistaken for a
 * missing one) while a paused minority costs little. A straggler cut off
 * this way is marked unknown in f->call (its request may still run). The
 * owner reads f->call in `done` (or later) and calls dl_fan_put when finished
 * with it; replies still in flight are then dropped as they arrive, and the
 * fan frees itself after the last one. */
#ifndef DLOCK_FAN_H
#define DLOCK_FAN_H

#include "pipe.h"
#include "quorum.h"
#include "timer.h"

typedef struct dl_fan dl_fan;
typedef void (*dl_fan_done_fn)(dl_fan *f, void *arg);

/* Where a request goes after a redirect (Sentinel, Cluster): `r` is the
 * error reply (MOVED, ASK, READONLY, TRYAGAIN...), or NULL when the
 * connection to `from` failed. Sets *to (and *asking for ASK) and returns
 * 1 if the request is worth sending there; 0 keeps the outcome. Supplied
 * by the owner of the pipes (the engine); NULL for direct deployments. */
typedef struct dl_router {
    int (*redirect)(void *arg, const char *key, size_t klen, dl_pipe *from,
                    const redisReply *r, dl_pipe **to, int *asking);
    /* The pipe to the key's server now (after TRYAGAIN / CLUSTERDOWN): 1
     * and *to set, or 0. */
    int (*route)(void *arg, const char *key, size_t klen, dl_pipe **to);
    void *arg;
    int pause_ms; /* before re-sending after TRYAGAIN / CLUSTERDOWN */
} dl_router;

struct dl_fan_slot {
    dl_fan *f;
    int i;
};

struct dl_fan {
    dl_timer grace; /* first: the timer finds its fan */
    dl_timer again; /* re-send after TRYAGAIN / CLUSTERDOWN (routed) */
    int waiting[DL_URL_MAX_HOSTS]; /* target i waits for `again` */
    dl_heap *heap;
    int settled;    /* the decider settled it: stragglers get a grace */
    dl_call call;
    dl_pipe *pipes[DL_URL_MAX_HOSTS];
    struct dl_fan_slot slot[DL_URL_MAX_HOSTS];
    int tries[DL_URL_MAX_HOSTS];
    int reused[DL_URL_MAX_HOSTS];
    int eval[DL_URL_MAX_HOSTS]; /* re-sent as EVAL after NOSCRIPT */
    int ask[DL_URL_MAX_HOSTS];  /* sent after ASKING (an ASK redirect) */
    const dl_router *router;    /* NULL: no redirects */
    const char *key;            /* the request's routing key (in buf) */
    size_t klen;
    int outstanding;            /* requests whose callback is still to come */
    int completed;              /* `done` was called (or is due) */
    int put;                    /* the owner is finished with the call */
    int64_t deadline_us;
    int64_t sent_us; /* when the request was queued */
    dl_decided_fn decided;
    dl_fan_done_fn done;
    void *arg;
    int argc;
    int floor_at; /* dl_req.floor_at */
    const char *argv[DL_REQ_MAX_ARGV];
    size_t lens[DL_REQ_MAX_ARGV];
    const char *script;
    size_t script_len;
    char *buf; /* copies of the request's arguments */
};

/* Send req to pipes[0..n) with replies due by deadline_us; the grace
 * timer lives in heap; router (may be NULL) says where redirects go. Returns the fan
 * (NULL when out of memory: *rc says so). When no request could even be
 * queued, f->completed is already set and `done` will NOT be called: the
 * caller handles the outcome at once (dl_fan_start never calls back). */
DL_INTERNAL dl_fan *dl_fan_start(dl_pipe **pipes, int n, const dl_req *req, int64_t deadline_us,
                                 dl_heap *heap, const dl_router *router, dl_decided_fn decided,
                                 dl_fan_done_fn done, void *arg, int *rc);
/* The owner is finished with f->call. */
DL_INTERNAL void dl_fan_put(dl_fan *f);

#endif

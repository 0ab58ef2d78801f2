/* fan.h - one request sent to every target of its key at once, answered
 * through a callback, never blocking.
 *
 * The topology (topo/topology.h) says where the request goes: every
 * server (one, or a Redlock set), the Sentinel master, or the slot's
 * Cluster node. While the topology discovers (asks the sentinels, loads
 * the slot map), a target waits "parked" for it and is sent once it ends;
 * if it fails, the target fails with the discovery's reason (call.why).
 * What a caller should never see is retried here: NOSCRIPT is re-sent as
 * EVAL with the script's source; a request that failed on a reused
 * connection before it could have run is routed and sent once more;
 * redirects (MOVED, ASK, READONLY, a lost Sentinel master) go where the
 * topology says; TRYAGAIN / CLUSTERDOWN are re-sent to the key's server
 * after a pause. A request sent after a wait gets as long for its reply as
 * it had when the fan started.
 *
 * Life cycle: dl_fan_start queues the request; `done` is called once, when
 * every target has its outcome, or a grace after the decider settled the
 * call: the stragglers get as long again as the settling answers took
 * (at least 5 ms), so that a reply a few microseconds behind still counts
 * (a busy answer is not mistaken for a missing one) while a paused
 * minority costs little. A straggler cut off this way is marked unknown in
 * f->call (its request may still run). The owner reads f->call in `done`
 * (or later) and calls dl_fan_put when finished with it; replies still in
 * flight are then dropped as they arrive, and the fan frees itself after
 * the last one. */
#ifndef DLOCK_FAN_H
#define DLOCK_FAN_H

#include "pipe.h"
#include "quorum.h"
#include "timer.h"
#include "topology.h"

typedef struct dl_fan dl_fan;
typedef void (*dl_fan_done_fn)(dl_fan *f, void *arg);

struct dl_fan_slot {
    dl_fan *f;
    int i;
};

/* The target waiting for the topology's discovery. Only a topology that
 * routes (Sentinel, Cluster) discovers, and it gives one target. */
struct dl_fan_park {
    dl_topo_wait w; /* first: the topology's callback finds the park */
    dl_fan *f;
    int i;
    redisReply *held; /* the reply that sent it waiting (READONLY...): it
                         stands if the discovery fails */
};

struct dl_fan {
    dl_timer grace; /* first: the timer finds its fan */
    dl_timer again; /* re-send after TRYAGAIN / CLUSTERDOWN */
    unsigned char waiting[DL_URL_MAX_HOSTS]; /* target i waits for `again` */
    dl_heap *heap;
    dl_topo *topo;
    int settled;    /* the decider settled it: stragglers get a grace */
    dl_call call;
    dl_pipe *pipes[DL_URL_MAX_HOSTS];
    struct dl_fan_slot slot[DL_URL_MAX_HOSTS];
    struct dl_fan_park park;
    char *why; /* call.why's copy */
    /* per target; small, so that the fan made for every request stays small */
    unsigned char tries[DL_URL_MAX_HOSTS];
    unsigned char reused[DL_URL_MAX_HOSTS];
    unsigned char eval[DL_URL_MAX_HOSTS]; /* re-sent as EVAL after NOSCRIPT */
    unsigned char ask[DL_URL_MAX_HOSTS];  /* sent after ASKING (an ASK redirect) */
    int sends;                  /* requests queued on a pipe so far */
    const char *key;            /* the request's routing key (in buf) */
    size_t klen;
    int outstanding;            /* requests whose callback is still to come */
    int completed;              /* `done` was called (or is due) */
    int put;                    /* the owner is finished with the call */
    int64_t deadline_us;        /* replies due by this */
    int64_t span_us;            /* deadline_us - start: what a late send gets */
    int64_t sent_us; /* when the request was queued */
    dl_decided_fn decided;
    dl_fan_done_fn done;
    void *arg;
    int argc;
    int floor_at; /* dl_req.floor_at */
    const char **argv; /* argc copies of the request's arguments, */
    size_t *lens;
    const char *script;
    size_t script_len;
    char *buf; /* their bytes: all after the fan, in its allocation */
};

/* Send req to the targets topo gives for req->key, with replies due by
 * deadline_us; the fan's timers live in heap. Returns the fan (NULL when
 * out of memory: *rc says so). When nothing could even be queued (no
 * request sent, none waiting for a discovery), f->completed is already
 * set and `done` will NOT be called: the caller handles the outcome at
 * once (dl_fan_start never calls back). */
DL_INTERNAL dl_fan *dl_fan_start(dl_topo *topo, const dl_req *req, int64_t deadline_us,
                                 dl_heap *heap, dl_decided_fn decided, dl_fan_done_fn done,
                                 void *arg, int *rc);
/* Whether a request of f was ever queued on a pipe (0: it only waited for
 * the topology's discovery, so it ran nowhere). */
DL_INTERNAL int dl_fan_sent(const dl_fan *f);
/* The owner is finished with f->call. */
DL_INTERNAL void dl_fan_put(dl_fan *f);

#endif

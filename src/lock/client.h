/* client.h - the state lock operations work on: a client made of one part
 * per layer (context, connection settings, protocol), and the lock
 * handle. Not installed. Lower layers are handed only their own part
 * (&c->ctx, &c->cfg, &c->proto), never the client; each engine has a
 * topology of its own (engine.h). */
#ifndef DLOCK_CLIENT_H
#define DLOCK_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctx.h"
#include "dlock.h"
#include "fork.h"
#include "proto.h"
#include "quorum.h"
#include "tls.h"
#include "token.h"
#include "topology.h"
#include "url.h"

struct dlock_client {
    dl_ctx ctx;         /* detail string, server code, deadline cap, events */
    dlock_options opts; /* validated; key_prefix / owner_label point to copies */
    dl_url url;         /* parsed URL; holds the password (wiped on free) */
    dl_conn_cfg cfg;    /* what every connection to a data node needs */
    dl_tls *tls;        /* TLS settings of every connection (rediss://), or NULL */
    dl_proto proto;     /* key prefix and script digests */
    char *label;
    char url_redacted[512];
    char host[256]; /* this process's host name, for owner metadata */
    long pid;       /* opts.owner_pid, or this process's */
    char meta[600]; /* "host\tpid\tlabel", stored with every lock */
    size_t meta_len;
    uint64_t rng;      /* jitter */
    dl_rand_pool pool; /* token randomness */
    int unusable;      /* dlock_client_new failed: that status */
    char unusable_why[512];
    struct dl_keepalive *ka; /* keepalive.c, created on first use */
    struct dl_engine *eng;   /* engine.c: the async API, created on first use */
    struct dl_engine *beng;  /* engine.c: the blocking calls' own (blocking.c) */
    pthread_mutex_t ka_mu;   /* guards ka creation */
    /* Every handle acquired through the client and not yet freed, so that
     * dlock_client_free can orphan them (core.c). */
    pthread_mutex_t live_mu;
    struct dlock_lock *live;
    /* The process that made the client, and its fork generation: in a child
     * after fork() the client is refused (see dl_forked). */
    long born_pid;
    unsigned fork_gen;
};

struct dlock_lock {
    dlock_client *client;
    char *name;
    size_t name_len;
    char token[DL_TOKEN_HEX + 1];
    int64_t fence;
    _Atomic int64_t ttl_ms;         /* the last lease set (acquire or extend) */
    int64_t acquired_wall_ms;
    int64_t acquired_us;            /* monotonic: when the winning request was sent */
    _Atomic int64_t valid_until_us; /* monotonic; 0 once released or lost */
    _Atomic int released;
    _Atomic int lost;
    _Atomic int user_ext; /* a dlock_extend is in flight: keepalive stays out */
    /* keepalive (keepalive.c) */
    dlock_lost_fn on_lost;
    void *lost_ud;
    /* made by the engine: its keepalive runs there (keepalive_async.c) */
    struct dl_engine *eng;
    struct dl_eka *eka;
    /* the client's list of live handles (core.c) */
    struct dlock_lock *live_prev, *live_next;
    /* dlock_client_free ran: client is NULL, nothing keeps the lease alive,
     * and only dlock_held, dlock_info_get and dlock_lock_free still work. */
    _Atomic int orphaned;
    unsigned fork_gen; /* its client's: dlock_held is 0 in a child */
    /* The other kinds (kinds.h); all zero for a mutex. */
    int kind;           /* DL_LK_* */
    int want;           /* semaphore: its permits; rw: 1 exclusive, 0 shared */
    int nnames;         /* multi: the names held through this handle (one slot) */
    const char **names; /* multi: those names, sorted bytewise (in l's allocation) */
    size_t *lens;
    int64_t *fences;    /* multi: the fence of each name */
    int nparts;         /* multi over several hash slots: one handle per slot... */
    dlock_lock **parts; /* ...owned by this one, in acquisition order */
    dlock_lock *whole;  /* a part: the handle it belongs to */
};

/* Whether l's lease is valid now by the local monotonic clock and it was
 * neither released nor lost (dlock_held, inlined so that keepalive.c need
 * not call back into handle.c). */
static inline int dl_lock_valid(const dlock_lock *l, int64_t now_us) {
    if (atomic_load(&l->released) || atomic_load(&l->lost) || atomic_load(&l->orphaned))
        return 0;
    return now_us < atomic_load(&l->valid_until_us);
}

/* Whether this is a child process, after fork(), of the one that made c.
 * Its sockets and threads are then the parent's: nothing may be sent on
 * them, no inherited mutex taken, no keepalive thread joined. */
static inline int dl_forked(const dlock_client *c) { return c->fork_gen != dl_fork_gen(); }

/* Whether opts.max_hold_ms (when set) has passed since l was acquired. */
static inline int dl_hold_over(const dlock_lock *l, int64_t now_us) {
    int64_t max = l->client->opts.max_hold_ms;
    return max > 0 && now_us >= l->acquired_us + max * 1000;
}

/* core.c: life cycle of the client's state. */
/* Fill a zeroed client from url and opts (NULL: defaults). On failure the
 * context says why; the caller frees with dl_client_teardown. */
DL_INTERNAL int dl_client_setup(dlock_client *c, const char *url, const dlock_options *opts);
/* A second client on the same deployment, with its own connections. */
DL_INTERNAL int dl_client_clone(const dlock_client *src, dlock_client **out);
/* Release everything the client holds except the struct itself (keepalive
 * must be stopped first). */
DL_INTERNAL void dl_client_teardown(dlock_client *c);
/* Start of every public call on a client: clear the detail string, and
 * refuse a client whose creation failed (with the reason it failed), and
 * one inherited across fork() (dl_refuse_forked). */
DL_INTERNAL int dl_begin(dlock_client *c);
/* DLOCK_EINVAL, with the detail saying why, when c is inherited across
 * fork() (dl_forked); else DLOCK_OK. */
DL_INTERNAL int dl_refuse_forked(dlock_client *c);
/* A new handle for `name` (len bytes, copied) on c's list of live handles,
 * otherwise zeroed; NULL when out of memory. */
DL_INTERNAL dlock_lock *dl_lock_new(dlock_client *c, const char *name, size_t len);
/* Take l off its client's list (unless orphaned) and free it; its
 * keepalive must be stopped first. */
DL_INTERNAL void dl_lock_destroy(dlock_lock *l);
/* Put a handle allocated elsewhere (zeroed; the other kinds' handles carry
 * arrays in the same allocation: klock.c) on c's list of live handles, as
 * dl_lock_new does. */
DL_INTERNAL void dl_lock_register(dlock_client *c, dlock_lock *l);
/* dlock_client_free: orphan every live handle of c (keepalive and engine
 * must be gone first). */
DL_INTERNAL void dl_client_orphan_locks(dlock_client *c);

/* check.c: argument checks shared by the lock operations. */
DL_INTERNAL int dl_check_name(dlock_client *c, const char *name, size_t *len);
DL_INTERNAL int dl_check_ttl(dlock_client *c, int64_t ttl_ms);

/* replies.c: read an INSPECT call's replies into *out (shared by the
 * blocking and the async inspect), and its Redlock decider. */
DL_INTERNAL int dl_inspect_read(dl_ctx *x, const dl_call *call, dlock_holder *out);
/* Owner metadata ("host\tpid\tlabel", a string reply) into h's host, pid
 * and label. */
DL_INTERNAL void dl_meta_read(const redisReply *r, dlock_holder *h);
DL_INTERNAL int dl_inspect_decided(const dl_call *call);

/* replies.c: an ACQUIRE call's answers, counted (shared by the blocking
 * and the async acquire), and the Redlock deciders of ACQUIRE and FENCE. */
typedef struct dl_tally {
    int granted;      /* servers that gave us the lock */
    int answered;     /* servers that answered with a well-formed reply */
    int unknown;      /* some request may have run without an answer */
    int agree;        /* every grant carried the same fence (then seen_max) */
    unsigned maybe;   /* servers (bits) that granted, or may have: no answer */
    int64_t seen_max; /* highest fence among the grants */
    int64_t hint;     /* longest "busy for" among the refusals, -1 if none */
    int64_t counter;  /* highest fencing counter the refusals reported */
} dl_tally;
DL_INTERNAL void dl_acquire_tally(dl_call *call, dl_tally *t);
DL_INTERNAL int dl_acquire_decided(const dl_call *call);
DL_INTERNAL int dl_fence_decided(const dl_call *call);

/* replies.c: read a RELEASE / EXTEND call's replies (shared by the
 * blocking and the async paths), and their Redlock deciders. */
DL_INTERNAL int dl_release_read(dl_ctx *x, dl_call *call, int *released);
DL_INTERNAL int dl_extend_read(dl_ctx *x, dl_call *call, int *extended);
DL_INTERNAL int dl_release_decided(const dl_call *call);
DL_INTERNAL int dl_extend_decided(const dl_call *call);

/* blocking.c: the blocking calls through the client's blocking engine.
 * mode is a DL_AM_* of engine.h. Results and errors as the public calls. */
DL_INTERNAL int dl_block_acquire(dlock_client *c, const char *name, size_t len, int64_t ttl_ms,
                                 int mode, int64_t timeout_ms, int is_wait, dlock_lock **out);
/* The same for the other kinds (kinds.h): acquire what r asks for. */
struct dl_kreq;
DL_INTERNAL int dl_block_kind(dlock_client *c, const struct dl_kreq *r, int64_t ttl_ms, int mode,
                              int64_t timeout_ms, int is_wait, dlock_lock **out);
DL_INTERNAL int dl_block_release(dlock_lock *l);
DL_INTERNAL int dl_block_extend(dlock_lock *l, int64_t ttl_ms);
DL_INTERNAL int dl_block_inspect(dlock_client *c, const char *name, size_t len,
                                 dlock_holder *out);
/* One request on the servers of req->key (the topology's discovery
 * first, if needed), replies due within one command timeout, settled
 * early by `decided` (may be NULL). On DLOCK_OK *out is the fan: the
 * caller reads (*out)->call and dl_fan_put's it. Else (out of memory) the
 * context says why. */
struct dl_fan;
DL_INTERNAL int dl_block_call(dlock_client *c, const dl_req *req, dl_decided_fn decided,
                              struct dl_fan **out);
/* Every server that holds locks (dl_topo_masters), after the topology is
 * made current (a Cluster's map reloaded, a Sentinel master found),
 * waiting no later than until_us (0: the discovery's own bound); an old
 * map still serves. out[0..*n) are valid until the client is freed. */
DL_INTERNAL int dl_block_masters(dlock_client *c, int64_t until_us, const dl_conn **out, int cap,
                                 int *n);
/* One command on a pipe of the caller's own (p, not one of the
 * topology's: dlock_list's SCAN of one server), driven by the blocking
 * engine until its reply, its failure or deadline_us (connecting first,
 * if needed). DLOCK_OK with *out the reply (the caller frees it; it may
 * be an error reply), else the status with the context saying why. */
struct dl_pipe;
DL_INTERNAL int dl_block_pipe_command(dlock_client *c, struct dl_pipe *p, int argc,
                                      const char **argv, const size_t *lens, int64_t deadline_us,
                                      redisReply **out);
/* dlock_release_token (ttl_ms 0) and dlock_extend_token (ttl_ms > 0). */
DL_INTERNAL int dl_block_by_token(dlock_client *c, const char *name, size_t len,
                                  const char *token, int64_t ttl_ms);

/* inspect.c: dlock_inspect on a checked name (len bytes), without
 * dl_begin: what the server knows about it, into *out. */
DL_INTERNAL int dl_inspect(dlock_client *c, const char *name, size_t len, dlock_holder *out);

/* keepalive.c */
DL_INTERNAL void dl_keepalive_client_free(dlock_client *c);
/* Wait until no keepalive extension of l is in flight (l->user_ext must be
 * set first, so none starts). Waits for l's own round trip only. */
DL_INTERNAL void dl_keepalive_quiesce(dlock_lock *l);

#endif

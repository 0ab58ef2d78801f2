/* engine.h - the non-blocking core behind the async API: one poll set
 * (epoll, or the caller's loop watching each socket: watch.c), one pipe
 * per server, one subscriber pipe for wake-ups, a timer
 * heap, the operations in flight and the finished ones whose callbacks are
 * due. Single-threaded: driven by dlock_client_process.
 *
 * Operations are small state machines (dl_aop) advanced by fan-out
 * completions (fan.h), timers and wake-up messages. User callbacks never run
 * from inside that machinery: a finished operation is queued and its
 * callback runs at the end of dlock_client_process, when no internal state
 * is mid-update. */
#ifndef DLOCK_ENGINE_H
#define DLOCK_ENGINE_H

#include "client.h"
#include "fan.h"
#include "pipe.h"
#include "timer.h"

typedef struct dl_engine dl_engine;
typedef struct dl_aop dl_aop;
typedef struct dl_acq_steps dl_acq_steps;

enum dl_aop_kind {
    DL_AOP_ACQUIRE, /* acquire / try / wait */
    DL_AOP_RELEASE,
    DL_AOP_EXTEND,
    DL_AOP_INSPECT,
    DL_AOP_CLEANUP, /* internal: leave the queue and release by token */
    DL_AOP_LOST     /* internal: a kept-alive lock's on_lost notice */
};

/* One operation. Which fields matter depends on kind and phase. */
struct dl_aop {
    dl_timer timer; /* first: a fired timer finds its op */
    dl_engine *e;
    /* what the engine forwards to the op's kind (acquire_async.c) */
    void (*on_wake)(dl_aop *op, int64_t fence);
    void (*on_subscribed)(dl_aop *op);
    void (*on_cancel)(dl_aop *op);
    /* the clean-up op it waits for (its child) ended; failed_too: that
     * could not reach a server either */
    void (*on_cleaned)(dl_aop *op, int failed_too);
    uint64_t id;
    int kind;
    int phase;
    dlock_done_fn cb;
    void *ud;
    dl_fan *fan;               /* the request in flight, if any */
    dl_aop *prev, *next;       /* the engine's list of live ops */
    dl_aop *done_next;         /* the queue of finished ops */
    int finished;              /* on the done queue */
    int status;
    dl_ctx x;                  /* this op's error detail */
    dlock_lock *lock;          /* result (acquire) or subject (release/extend) */
    dlock_holder holder;       /* inspect */
    char *name;
    size_t name_len;
    dl_keys keys;
    int has_keys;
    char token[DL_TOKEN_HEX + 1];
    int64_t ttl_ms;
    char ttl_s[24];
    size_t ttl_len;
    /* acquire */
    int mode;               /* DL_AM_* */
    int push;               /* waits for a wake-up message */
    int attempts;
    int enqueued;           /* an attempt may have queued us */
    int cancelled;
    int contended;
    int unknown_open;       /* an earlier token's outcome is unknown */
    int unknown_now;        /* the current token's last request may have run */
    int dirty;              /* the current token may hold a grant somewhere */
    int pending_rc;         /* the end status while an awaited clean-up runs */
    int cleanup_failed;     /* clean-up op: a step got no answer */
    int leave_only;         /* clean-up op: leave the queues, keep the lock */
    unsigned maybe;         /* servers (bits) the current token may hold a grant on:
                               granted, or asked with no answer; a clean-up op
                               must reach these */
    dl_aop *parent, *child; /* an awaited clean-up and the op awaiting it */
    int is_wait;            /* dlock_wait_async: a busy end is ETIMEDOUT */
    int migrating;          /* the last attempt met TRYAGAIN (Cluster) */
    int gate_warned;        /* the replica gate's warning was raised */
    int probes;             /* WAIT probes since the gate last failed */
    int64_t gate_ms;        /* the timeout of the last WAIT sent */
    int64_t timeout_ms;
    int64_t deadline_us;    /* wait: when to give up */
    int64_t cap_us;         /* when set, no request of the op is due later
                               (the clean-up's steps share one budget) */
    int64_t t_begin_us;
    int64_t sent_us;        /* when the request in flight was sent */
    int64_t busy_us;        /* sent time of the last attempt found busy */
    int64_t start_us;       /* lease start of the lock we got */
    int64_t fence;
    int64_t queue_score;    /* Redlock: this wait's place in the queues */
    int64_t fence_want;     /* Redlock: the fence the FENCE step writes */
    const dl_acq_steps *steps; /* acquire: its kind's steps (acquire_shared.c) */
    int handed;             /* a wake-up came while an attempt was in flight */
    int64_t busy_counter;   /* the fencing counter the last busy answer saw */
    dlock_lost_fn on_lost;  /* DL_AOP_LOST */
    /* the other kinds (kinds.h): their state, freed by on_free with the op */
    void *kx;
    void *extra; /* dl_aop_new_with's bytes, or NULL */
    void (*on_free)(dl_aop *op);
    /* an acquire of the other kinds: what it asks for (its clean-up takes
     * the same keys); NULL for a mutex, named by name */
    const struct dl_kreq *req;
};

/* A kept-alive lock (keepalive_async.c). */
typedef struct dl_eka {
    dl_timer timer;
    dl_engine *e;
    dlock_lock *l;
    int64_t interval_ms;
    dlock_lost_fn on_lost;
    void *ud;
    dl_fan *fan;
    dl_fan *gfan;     /* its replica gate's WAIT (gate.c), or NULL */
    int64_t sent_us;
    int64_t ttl_sent; /* the ttl of the extension in flight */
    dl_keyset keys;   /* what l's extension touches (any kind: kinds.h) */
    const struct dl_kscripts *sc;
    struct dl_eka *prev, *next;
} dl_eka;

enum dl_sub_state { DL_SUB_NONE, DL_SUB_PENDING, DL_SUB_READY };

struct dl_engine {
    dlock_client *c;
    int epfd;
    int n; /* servers per operation: the Redlock set, else 1 */
    /* Which servers a request goes to, with one pipe per server it meets
     * (direct, Sentinel master and sentinels, Cluster nodes); Sentinel
     * discovery and the Cluster slot map run on those pipes too. */
    dl_topo topo;
    /* Every pipe to watch but the subscriber: the topology's (its watch
     * hook adds them). */
    dl_pipe **all;
    int nall, capall;
    int routed;        /* Sentinel or Cluster: a key's server may move */
    /* Wake-ups: one subscription per server a hand-over can come from
     * (every Redlock master; the key's server when routed). */
    dl_pipe subs[DL_URL_MAX_HOSTS];
    int sub_st[DL_URL_MAX_HOSTS]; /* enum dl_sub_state */
    int nsubs;
    int sub_state; /* the aggregate: PENDING while any is, READY if one is */
    /* Routed: the subscription waits for the topology's discovery of the
     * key's server (sub_key, copied) */
    dl_topo_wait sub_wait;
    char *sub_key;
    size_t sub_klen;
    int sub_parked; /* subs[0] is PENDING for that discovery, not a SUBSCRIBE */
    char chan[400]; /* our wake channel */
    size_t chan_len;
    dl_heap heap;
    dl_aop *ops, *ops_tail;      /* live ops, in the order they started */
    dl_aop *done_head, *done_tail;
    dl_eka *kas;                 /* kept-alive locks */
    int nops, nkas;
    uint64_t next_id;
    dlock_notify_fn notify;
    void *notify_ud;
    /* Per-socket watching (dlock_client_set_socket_fn): when set, the
     * caller's loop watches each socket and epfd stays empty. */
    dlock_socket_fn sock_fn;
    void *sock_ud;
    int flushing;
    int blocking; /* drives the blocking calls (blocking.c); its locks keep
                     alive with the keepalive thread, not with its timers */
    int quiet;    /* raises no eviction-policy warning (the keepalive
                     thread's engine: the caller's own engines tell) */
    int gate_short; /* the last replica gate (or probe) had too few
                       replicas: acquires probe with WAIT before taking */
};

/* engine.c */
/* The client's engine, created on first use. NULL when it cannot be (the
 * client's context says why: DLOCK_ENOTSUP, DLOCK_EIO, DLOCK_ENOMEM). */
DL_INTERNAL dl_engine *dl_engine_get(dlock_client *c, int *rc);
/* The engine that the blocking calls drive (blocking.c), created on first
 * use: separate from the async one, so a blocking call never runs the
 * callbacks of async operations. */
DL_INTERNAL dl_engine *dl_engine_blocking(dlock_client *c, int *rc);
/* Drive e until *done, or until until_us when not 0 (blocking.c's loop,
 * the keepalive thread's rounds): wait in epoll for its sockets or its
 * next timer (or, for one plain socket's reply, in its read: wait_once),
 * then process. Bounded by the operations' own deadlines. */
DL_INTERNAL void dl_engine_run_until(dl_engine *e, const int *done, int64_t until_us);
DL_INTERNAL void dl_engine_free(dl_engine *e);
/* Watch (and time out the requests of) a pipe that is not the topology's,
 * until dl_engine_disown; the caller closes it. DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_engine_adopt(dl_engine *e, dl_pipe *p);
DL_INTERNAL void dl_engine_disown(dl_engine *e, dl_pipe *p);
/* watch.c: keep what is watched in step with what each pipe's socket
 * waits for (in e's epoll set, or through e->sock_fn), and re-subscribe
 * where a subscription was lost. */
DL_INTERNAL void dl_engine_watch_all(dl_engine *e);
/* watch.c: switch e to per-socket watching through fn (NULL: back to its
 * epoll set). Every socket watched so far leaves the old way first. */
DL_INTERNAL void dl_engine_watch_with(dl_engine *e, dlock_socket_fn fn, void *ud);
/* A new live op of `kind` with its callback (NULL when out of memory). */
DL_INTERNAL dl_aop *dl_aop_new(dl_engine *e, int kind, dlock_done_fn cb, void *ud);
/* The same with `extra` bytes after it, in the same allocation (op->extra,
 * 16-byte aligned, not zeroed; freed with the op). */
DL_INTERNAL dl_aop *dl_aop_new_with(dl_engine *e, int kind, dlock_done_fn cb, void *ud,
                                    size_t extra);
/* Set the op's keys from name (copied). DLOCK_OK or DLOCK_ENOMEM. */
DL_INTERNAL int dl_aop_name(dl_aop *op, const char *name, size_t name_len);
/* Finish op with status (detail from op->x): its callback is queued. */
DL_INTERNAL void dl_aop_finish(dl_aop *op, int status);
/* Free an op that was never started (its callback will not run). */
DL_INTERNAL void dl_aop_discard(dl_aop *op);
/* One request on the servers of req->key (through e's topology: it may
 * wait for a discovery first); `done` gets the fan, whose call the caller
 * reads and dl_fan_put's. NULL when out of memory (*rc). As dl_fan_start:
 * a fan already completed was not sent at all (its call says why). */
DL_INTERNAL dl_fan *dl_engine_fan(dl_engine *e, const dl_req *req, int64_t deadline_us,
                                  dl_decided_fn decided, dl_fan_done_fn done, void *arg,
                                  int *rc);
/* Run script `id` on op's keys on every server, replies due within one
 * command timeout; `done` is called with the fan (op->fan). Returns
 * DLOCK_OK, or the failure to send (nothing was sent). */
DL_INTERNAL int dl_aop_script(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                              const size_t *lens, dl_decided_fn decided, dl_fan_done_fn done);
/* The same on the keys of ks (the other kinds: kinds.h). */
DL_INTERNAL int dl_aop_kscript(dl_aop *op, enum dl_script_id id, const dl_keyset *ks,
                               int nargs, const char **args, const size_t *lens,
                               dl_decided_fn decided, dl_fan_done_fn done);
/* The same for a plain command (WAIT), on op's key's servers. */
DL_INTERNAL int dl_aop_command(dl_aop *op, int argc, const char **argv, const size_t *lens,
                               int64_t deadline_us, dl_fan_done_fn done);
/* Raise the eviction-policy warning of call's servers not yet told (once
 * per connection), and with opts.require_noeviction return 1 after
 * setting x (DLOCK_ENOTSUP, code DL_SRV_EVICTION) if one of them may
 * evict lock keys; else 0. */
DL_INTERNAL int dl_engine_unsafe(dl_engine *e, dl_ctx *x, const dl_call *call);
/* The op's deadline passed with its request (op->fan) still out: let go
 * of it. Returns 1 if it was sent (it may yet run), 0 if it never went out
 * (it waited for the topology's discovery all along, so it ran nowhere):
 * op->x then says so, as DLOCK_EIO. */
DL_INTERNAL int dl_aop_drop_fan(dl_aop *op);
/* Arm op's timer. */
DL_INTERNAL void dl_aop_timer(dl_aop *op, int64_t at_us);
/* After an async start: write what can be written, and tell the adapter;
 * from a callback, nothing (engine_process writes after the callbacks). */
DL_INTERNAL void dl_engine_kick(dl_engine *e);
/* wake.c: the wake-up subscription. */
/* Subscribe to the wake channel if not yet (the reply re-starts the ops
 * waiting for it); on Sentinel and Cluster, on the server of `key` (once
 * the topology knows it: until then the subscription is PENDING). */
DL_INTERNAL void dl_engine_subscribe(dl_engine *e, const char *key, size_t klen);
/* The subscriptions' state into e->sub_state: PENDING while one is, else
 * READY if any is (a hand-over from the others is found by the next
 * attempt). */
DL_INTERNAL void dl_engine_sub_aggregate(dl_engine *e);
/* e->sub_wait's callback: the discovery the subscription waited for ended. */
DL_INTERNAL void dl_engine_sub_found(dl_topo_wait *w, int status);

/* Stop keeping k's lock alive and free k (no callback). */
DL_INTERNAL void dl_eka_stop(dl_eka *k);
/* Drop l's lost notice if it is queued and not yet run (its keepalive
 * is being stopped). */
DL_INTERNAL void dl_engine_drop_lost(dl_engine *e, const dlock_lock *l);

/* acquire_async.c: start an acquire on engine e (mode DL_AM_*). As the
 * public async starts: an error at once, or DLOCK_OK and cb later. */
enum { DL_AM_TRY, DL_AM_RETRY, DL_AM_DEADLINE };
DL_INTERNAL int dl_acquire_start(dl_engine *e, const char *name, size_t len, int64_t ttl_ms,
                                 int mode, int64_t timeout_ms, int is_wait, dlock_done_fn cb,
                                 void *ud, uint64_t *id);
/* cleanup_async.c: leave the queue and release by token what `from`'s
 * current token may hold (its kind's keys and scripts: from->req, or the
 * mutex from->name), in a clean-up op of its own. Returns the op (NULL if
 * it could not be started: the queue entry and any lease then end by
 * their own expiry). An op that waits for it as its child is told by its
 * on_cleaned. */
DL_INTERNAL dl_aop *dl_acq_cleanup(dl_engine *e, const dl_aop *from);

/* The phases of an acquire op of any kind (acquire_async.c; kind_async.c
 * uses those without GATE and PROBE). */
enum dl_acq_phase {
    DL_PH_SUBWAIT = 1, /* waiting for the wake channel's subscription */
    DL_PH_ATTEMPT,     /* the ACQUIRE in flight */
    DL_PH_FENCE,       /* Redlock: max+1 written to a majority */
    DL_PH_WAIT,        /* queued: a timer, or a wake-up */
    DL_PH_NAP,         /* backoff after a transient failure */
    DL_PH_LEAVE,       /* the deadline passed while queued: CANCEL */
    DL_PH_REFRESH,     /* a grant after a long wait: EXTEND */
    DL_PH_REPLICAS,    /* WAIT for replicas */
    DL_PH_GATE,        /* too few replicas: a timer before the next PROBE */
    DL_PH_PROBE,       /* a WAIT alone */
    DL_PH_CLEANUP      /* ending: waiting for the clean-up of its token */
};

/* What an acquire op's kind does where the steps every kind shares
 * (acquire_shared.c, acquire_redlock.c) reach a point that differs: the
 * mutex's (acquire_async.c) and the other kinds' (kind_async.c). */
struct dl_acq_steps {
    void (*attempt)(dl_aop *op); /* run the kind's ACQUIRE */
    /* held since start_us with `fence` (0 without fencing) */
    void (*got)(dl_aop *op, int64_t fence, int64_t start_us);
    void (*deliver)(dl_aop *op); /* held, lease fresh: replicas, then the handle */
    void (*busy)(dl_aop *op, const dl_tally *t); /* Redlock: too few granted */
    void (*busy_end)(dl_aop *op);                /* end busy (or timed out) */
    void (*failed)(dl_aop *op, int rc, int code); /* retry later, or end with rc */
    dl_fan_done_fn left;                          /* the LEAVE step's CANCEL answered */
    /* Send the kind's script for step `phase` (DL_PH_FENCE: its FENCE,
     * DL_PH_REFRESH: its EXTEND, DL_PH_LEAVE: its CANCEL) on the op's keys,
     * `decided` settling a Redlock call early; the cap armed. DLOCK_OK or
     * the failure to send. */
    int (*send)(dl_aop *op, int phase, int nargs, const char **args, const size_t *lens,
                dl_decided_fn decided, dl_fan_done_fn done);
};

/* acquire_shared.c: the steps every kind's acquire state machine takes
 * alike. An acquire op may still go on waiting: */
DL_INTERNAL int dl_acq_will_wait(const dl_aop *op);
/* Milliseconds from now until until_us, rounded up; 0 once past. */
DL_INTERNAL int64_t dl_acq_ms_until(int64_t until_us);
/* Set up an acquire op (op->name set) of the kind whose steps are `steps`:
 * its ttl, stopping rule, deadline, cap, waiting and queue score (the
 * engine's on_subscribed and on_cancel); then its token. DLOCK_OK, or
 * DLOCK_EIO (no token: the client's context says so). */
DL_INTERNAL int dl_acq_init(dl_aop *op, const dl_acq_steps *steps, int64_t ttl_ms, int mode,
                            int64_t timeout_ms, int is_wait);
/* dlock_wait_async: while a request is in flight, the op's timer is its
 * cap (deadline + one command timeout), so a slow server cannot stretch
 * the call; the connection itself keeps the command timeout. */
DL_INTERNAL void dl_acq_arm_cap(dl_aop *op);
/* A failure that waiting may cure (rc, with the server's error kind
 * code): see acquire_shared.c. */
DL_INTERNAL int dl_acq_transient(const dl_aop *op, int rc, int code);
/* How long a refused op waits before its next attempt; hint: the
 * refusal's "busy for" (-1: none). */
DL_INTERNAL int64_t dl_acq_sleep_ms(dl_aop *op, int64_t hint);
/* The longest a waiter's queue entry lasts unrefreshed (the ACQUIRE
 * scripts' wait argument). */
DL_INTERNAL int64_t dl_acq_queue_wait_ms(const dl_aop *op);
/* The lock is the op's since start_us: restart the lease first if a long
 * wait has eaten into it, then the kind's deliver. */
DL_INTERNAL void dl_acq_held(dl_aop *op, int64_t start_us);
/* An attempt found the lock busy: raise DLOCK_EV_CONTENDED (once per op);
 * an op that will not wait then ends, leaving the queue first if an
 * attempt may have queued it: 1. 0: the op may wait. */
DL_INTERNAL int dl_acq_refused(dl_aop *op);
/* An attempt's answers came from a server whose eviction policy is unsafe
 * while opts.require_noeviction is set (dl_engine_unsafe): end with
 * DLOCK_ENOTSUP, giving back what it got (granted: some server granted;
 * unknown: a request's outcome is unknown), and return 1. 0: go on. Every
 * kind's attempt asks it first. */
DL_INTERNAL int dl_acq_unsafe(dl_aop *op, const dl_call *call, int granted, int unknown);
/* Give up waiting (the deadline passed while queued): the LEAVE step, the
 * kind's CANCEL, which also says whether the lock was the op's meanwhile
 * (the kind's left reads it). */
DL_INTERNAL void dl_acq_leave(dl_aop *op);
/* The CANCEL of the LEAVE step failed (call says how): a lease may exist.
 * Try the clean-up once more in the background and end DLOCK_EUNKNOWN. */
DL_INTERNAL void dl_acq_left_unknown(dl_aop *op, const dl_call *call);
/* Go: a waiting op subscribes its engine's wake channel (on the server of
 * `key`) and attempts once subscribed, else it attempts now. */
DL_INTERNAL void dl_acq_begin(dl_aop *op, const char *key, size_t klen,
                              void (*attempt)(dl_aop *op));
/* Before a waiting op's next attempt (from its timer) on one server,
 * Sentinel or Cluster: if the wake channel's subscription was lost (its
 * connection failed: a failover, a restart), subscribe again on the key's
 * server and return 1, the op waiting for it as dl_acq_begin does; else
 * 0: attempt now. Without it the attempt would queue where no wake-up is
 * heard, and the hand-over would wait for the op's next slice. */
DL_INTERNAL int dl_acq_resubscribe(dl_aop *op, const char *key, size_t klen);
/* End with rc: an earlier token of unknown outcome makes it EUNKNOWN;
 * failures raise DLOCK_EV_ERROR. */
DL_INTERNAL void dl_acq_finish(dl_aop *op, int rc);
/* The on_cleaned of an acquire: its awaited clean-up ended. */
DL_INTERNAL void dl_acq_cleaned(dl_aop *op, int failed_too);
/* Leave no trace of the current token (a clean-up in the background) and
 * draw a fresh one. DLOCK_OK or DLOCK_EIO. */
DL_INTERNAL int dl_acq_abandon_token(dl_aop *op);
/* End with rc once what the current token may have left is undone (the
 * wait for that is cut at the cap). */
DL_INTERNAL void dl_acq_end_with(dl_aop *op, int rc);
/* Cancelled: clean up in the background, end with DLOCK_ECANCELED. */
DL_INTERNAL void dl_acq_give_up(dl_aop *op);
/* A step failed with rc: when it is `transient` and the op may wait,
 * nap (backoff, with a fresh token if the old one may have left
 * something) and attempt again from the timer; else end with rc. */
DL_INTERNAL void dl_acq_retry_later(dl_aop *op, int rc, int transient);
/* What the op's timer does in any kind: end once the cap passes while a
 * clean-up or a request is awaited, give up when cancelled. Returns 1 if
 * it handled the timer, 0 if the kind's own step is due. */
DL_INTERNAL int dl_acq_timer_common(dl_aop *op);
/* A waiting op's timer at its deadline: 1 if it is queued and must leave
 * the queue now; else 0, having made the next attempt the last one (a try
 * at the deadline) if the deadline has passed. */
DL_INTERNAL int dl_acq_at_deadline(dl_aop *op);
/* acquire_redlock.c: the Redlock rules of every kind's acquire. The
 * ACQUIRE call on every master answered (t its tally): held (the kind's
 * got, after the FENCE step when the granting masters' counters disagree:
 * it writes their highest + rise to a majority), busy, or failed. */
DL_INTERNAL void dl_acq_redlock_attempted(dl_aop *op, dl_call *call, const dl_tally *t,
                                          int rise);
/* Held on a Redlock set: leave the queues of the masters that did not
 * grant (the lock stays where it is held). */
DL_INTERNAL void dl_acq_redlock_leave_queues(dl_aop *op);
/* handle_async.c: the same for release, extend and inspect. */
DL_INTERNAL int dl_release_start(dl_engine *e, dlock_lock *l, dlock_done_fn cb, void *ud,
                                 uint64_t *id);
DL_INTERNAL int dl_extend_start(dl_engine *e, dlock_lock *l, int64_t ttl_ms, dlock_done_fn cb,
                                void *ud, uint64_t *id);
DL_INTERNAL int dl_inspect_start(dl_engine *e, const char *name, size_t len, dlock_done_fn cb,
                                 void *ud, uint64_t *id);

/* The Cluster counters of c's engines, added up (for tests). */
DL_INTERNAL void dl_client_cluster_stats(const dlock_client *c, dl_cluster_stats *out);

/* gate.c: the replica gate. Send WAIT for opts.replicas replicas on op's
 * lock server (its timeout: replica_timeout_ms, or, for 0, what the call
 * has left; recorded in op->gate_ms); `done` gets the fan. DLOCK_OK or
 * the failure to send. */
DL_INTERNAL int dl_gate_send(dl_aop *op, dl_fan_done_fn done);
/* The fewest acknowledgements a server answered WAIT with (-1: none did):
 * DLOCK_OK, or the call's error (op->x says it). */
DL_INTERNAL int dl_gate_acked(dl_aop *op, dl_fan *f, int64_t *acked);
/* 1 if on Sentinel or Cluster the WAIT was refused because the server is
 * no longer a master: a failover demoted it between the grant and the
 * WAIT. Redis refuses WAIT on a replica ("ERR WAIT cannot be used with
 * replica instances", the only ERR a well-formed WAIT gets), and cuts a
 * WAIT blocked there when the node becomes one (UNBLOCKED). The grant's
 * fate is then unknown, as after READONLY: give it back and take the lock
 * again from the new master. */
DL_INTERNAL int dl_gate_demoted(const dl_aop *op, const dl_fan *f);
/* Extensions (gate.c): whether e gates them (opts.replicas, one master
 * per lock); the WAIT to send right after an EXTEND on ks's route (a fan
 * as dl_engine_fan gives: NULL, or already completed, when it could not be
 * sent; the extension then does not count); whether its completed fan
 * shows enough replicas (NULL or failed: no). */
DL_INTERNAL int dl_gate_extension_on(const dl_engine *e);
DL_INTERNAL dl_fan *dl_gate_extension(dl_engine *e, const dl_keyset *ks, dl_fan_done_fn done,
                                      void *arg);
DL_INTERNAL int dl_gate_extension_ok(const dl_engine *e, const dl_fan *f);

/* keepalive_async.c: keep l alive with a timer in its engine. */
DL_INTERNAL int dl_eka_start(dl_engine *e, dlock_lock *l, int64_t interval_ms,
                             dlock_lost_fn on_lost, void *ud);

#endif

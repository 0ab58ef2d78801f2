/* kind_async.c - acquiring a semaphore permit, a read-write lock, or the
 * names of one hash slot of a multi-lock, as a state machine driven by the
 * engine. The protocol is the mutex's (acquire_async.c), on the scripts of
 * kinds.lua.h: on one server (one server, Sentinel, Cluster), and for rw
 * locks on a Redlock set too, with the mutex's Redlock rules
 * (docs/REDLOCK.md): the attempt on every master, held when a majority
 * grants within the validity, a minority's grants undone by token, one
 * queue score on every master, waiters only woken by a master:
 *   ATTEMPT   the kind's ACQUIRE (queued as a waiter when the op will wait
 *             and waiting is push);
 *   FENCE     Redlock, only when the granting masters' counters disagree:
 *             SEM_FENCE writes a writer's max + 1 (a reader's max) to a
 *             majority;
 *   WAIT      a timer (the first lease's end, a 2 s slice, the backoff or
 *             the deadline), ended early by a wake-up message: for a
 *             semaphore or rw lock the message is the grant itself; for a
 *             multi-lock it hands over one name, and the op attempts again
 *             (the script grants all names once every one is the caller's);
 *   NAP       backoff after a transient failure, with a fresh token;
 *   LEAVE     the deadline passed while queued: CANCEL, which also says
 *             whether the caller was admitted meanwhile;
 *   REFRESH   a grant after a long wait: EXTEND restarts the lease;
 *   REPLICAS  WAIT for replicas (opts.replicas).
 * Whatever an op gives up on it leaves no trace: a clean-up op
 * (cleanup_async.c) leaves the queue and releases by token. The steps
 * every kind takes alike (set-up, naps, waits, REFRESH, endings) are
 * acquire_shared.c's, the Redlock rules and the FENCE step
 * acquire_redlock.c's; this file gives them its steps (kind_steps). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "kinds.h"
#include "resp.h"

/* The kind's part of an op (op->kx). */
typedef struct kst {
    dl_kreq r; /* names point at names/lens below */
    const char *names[DLOCK_MULTI_MAX];
    size_t lens[DLOCK_MULTI_MAX];
    const dl_kscripts *sc;
    dl_keyset ks;
    char want[24];
    size_t want_len;
    int64_t fences[DLOCK_MULTI_MAX];
    int redlock;         /* an rw lock on a Redlock set */
} kst;

static void attempt(dl_aop *op);

static dlock_client *cli(const dl_aop *op) { return op->e->c; }
static kst *K(const dl_aop *op) { return op->kx; }

/* Send the kind's script `id` with args on the op's keys; on a Redlock set
 * `decided` may settle the call before every master answered. */
static int send_d(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                  const size_t *lens, dl_decided_fn decided, dl_fan_done_fn done) {
    int rc = dl_aop_kscript(op, id, &K(op)->ks, nargs, args, lens,
                            K(op)->redlock ? decided : NULL, done);
    if (rc == DLOCK_OK)
        dl_acq_arm_cap(op);
    return rc;
}

/* An ACQUIRE or CANCEL reply: a semaphore's or rw lock's fence alone (a
 * grant of SEM_ACQUIRE) or {1, fence...} (1, fences read), {0, hint,
 * waiters} (0, *hint), anything else -1. */
static int read_grant(dl_aop *op, const redisReply *r, int64_t *hint) {
    kst *k = K(op);
    if (r != NULL && r->type == REDIS_REPLY_STRING && k->r.kind != DL_LK_MULTI) {
        k->fences[0] = dl_reply_int(r, -1);
        return k->fences[0] >= 0 ? 1 : -1;
    }
    const redisReply *e0 = dl_elem(r, 0);
    if (e0 == NULL || e0->type != REDIS_REPLY_INTEGER)
        return -1;
    if (e0->integer == 1) {
        int want = k->r.kind == DL_LK_MULTI ? k->r.n : 1;
        if (r->elements < (size_t)want + 1)
            return -1;
        for (int i = 0; i < want; i++)
            k->fences[i] = dl_reply_int(r->element[i + 1], 0);
        return 1;
    }
    *hint = dl_reply_int(dl_elem(r, 1), -1);
    return 0;
}

/* ---- the op's own copy of the request ---- */

static void kst_free(dl_aop *op) {
    kst *k = op->kx;
    if (k != NULL)
        dl_keyset_free(&k->ks);
    free(k);
}

/* The op's own copy of r: names point into its name buffer. */
static int kst_make(dl_aop *op, const dl_kreq *r) {
    size_t bytes = 0;
    for (int i = 0; i < r->n; i++)
        bytes += r->lens[i] + 1;
    kst *k = calloc(1, sizeof *k + bytes);
    if (k == NULL)
        return DLOCK_ENOMEM;
    char *d = (char *)(k + 1);
    op->kx = k;
    op->on_free = kst_free;
    k->r = *r;
    for (int i = 0; i < r->n; i++) {
        memcpy(d, r->names[i], r->lens[i]);
        d[r->lens[i]] = '\0';
        k->names[i] = d;
        k->lens[i] = r->lens[i];
        d += r->lens[i] + 1;
    }
    k->r.names = k->names;
    k->r.lens = k->lens;
    op->req = &k->r; /* its clean-up takes the same keys */
    k->sc = dl_kind_scripts(r->kind);
    k->want_len = dl_kreq_want(r, k->want, sizeof k->want);
    op->name = strdup(k->names[0]);
    op->name_len = k->lens[0];
    if (op->name == NULL)
        return DLOCK_ENOMEM;
    return dl_kreq_keys(&op->e->c->proto, &k->r, &k->ks) == DLOCK_OK ? DLOCK_OK : DLOCK_ENOMEM;
}

/* ---- endings (the shared ones: acquire_shared.c) ---- */

static void busy_end(dl_aop *op) {
    if (op->is_wait) {
        dl_seterr(&op->x, DLOCK_ETIMEDOUT, "lock '%s' still held after %" PRId64 " ms",
                  op->name, op->timeout_ms);
        dl_acq_end_with(op, DLOCK_ETIMEDOUT);
    } else {
        dl_seterr(&op->x, DLOCK_EBUSY, "lock '%s' is held by other owners", op->name);
        dl_acq_end_with(op, DLOCK_EBUSY);
    }
}

/* As the mutex's (dl_acq_transient: a demoted master, READONLY, on
 * Sentinel or Cluster is a failover under way; on a Redlock set, too few
 * masters answering), but not when a majority refused the name as another
 * kind's (WRONGTYPE). */
static int transient(const dl_aop *op, int rc, int code) {
    if (rc == DLOCK_ENOQUORUM && code == DL_SRV_WRONGTYPE)
        return 0;
    return dl_acq_transient(op, rc, code);
}

/* A failed step: retry after a backoff (fresh token) while the caller
 * waits and the failure may pass; else end with it. */
static void failed(dl_aop *op, int rc, int code) {
    dl_acq_retry_later(op, rc, transient(op, rc, code));
}

/* ---- the lock is ours ---- */

static void make_lock(dl_aop *op) {
    dlock_client *c = cli(op);
    kst *k = K(op);
    dl_acq_redlock_leave_queues(op);
    dlock_lock *l = dl_klock_new(c, &k->r, op->ttl_ms, op->start_us);
    if (l == NULL) {
        op->dirty = 1;
        dl_acq_end_with(op, dl_seterr(&op->x, DLOCK_ENOMEM, "out of memory"));
        return;
    }
    l->eng = op->e->blocking ? NULL : op->e; /* whose timers keep it alive */
    memcpy(l->token, op->token, sizeof l->token);
    l->fence = k->fences[0];
    for (int i = 0; i < l->nnames; i++)
        l->fences[i] = k->fences[i];
    op->lock = l;
    op->fence = l->fence;
    dl_emit(&c->ctx, DLOCK_EV_ACQUIRED, op->name, DLOCK_OK, l->fence,
            dl_mono_us() - op->t_begin_us, op->attempts);
    dl_aop_finish(op, DLOCK_OK);
}

static void on_replicas(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    int want = cli(op)->opts.replicas;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    int rc = dl_call_error(&op->x, &f->call, "wait for replicas");
    int64_t acked = rc == DLOCK_OK ? dl_reply_int(f->call.replies[0], -1) : 0;
    if (rc == DLOCK_OK && acked < want)
        rc = dl_seterr(&op->x, DLOCK_EBUSY,
                       "only %" PRId64 " of %d replicas acknowledged the lock", acked, want);
    if (rc != DLOCK_OK && rc != DLOCK_EBUSY && dl_gate_demoted(op, f)) {
        op->dirty = 1; /* a demoted master: retried as after READONLY */
        failed(op, rc, DL_SRV_READONLY);
        return;
    }
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        dl_acq_end_with(op, rc);
        return;
    }
    make_lock(op);
}

/* Held: pass the replica gate (if any) and make the handle. */
static void deliver(dl_aop *op) {
    dlock_client *c = cli(op);
    if (c->opts.replicas <= 0) {
        make_lock(op);
        return;
    }
    char nrep[16], tmo[24];
    int n1 = snprintf(nrep, sizeof nrep, "%d", c->opts.replicas);
    size_t n2 = dl_fmt_i64(tmo, c->opts.replica_timeout_ms);
    const char *argv[3] = {"WAIT", nrep, tmo};
    size_t lens[3] = {4, (size_t)n1, n2};
    int64_t deadline = dl_capped(&op->x, dl_mono_us() + ((int64_t)c->opts.replica_timeout_ms +
                                                         c->opts.command_timeout_ms) * 1000);
    op->phase = DL_PH_REPLICAS;
    int rc = dl_aop_command(op, 3, argv, lens, deadline, on_replicas);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        dl_acq_end_with(op, rc);
    } else {
        dl_acq_arm_cap(op);
    }
}

/* Ours since start_us (fences in K(op)). */
static void got(dl_aop *op, int64_t start_us) {
    op->dirty = 1; /* from here on, a failure must give it back */
    dl_acq_held(op, start_us);
}

/* The same with the (first name's) fence: a Redlock rw lock's. */
static void got_fence(dl_aop *op, int64_t fence, int64_t start_us) {
    K(op)->fences[0] = fence;
    got(op, start_us);
}

/* ---- waiting ---- */

/* Redlock: CANCEL has left the queues; no master admits a Redlock waiter
 * on its own, so what a master still grants is a minority's (the last
 * attempt's) or unknown: give it back, and end busy. */
static void left_redlock(dl_aop *op, const dl_call *call) {
    for (int i = 0; i < call->n; i++) {
        const redisReply *e0 = call->status[i] == DLOCK_OK ? dl_elem(call->replies[i], 0) : NULL;
        if (e0 == NULL || e0->type != REDIS_REPLY_INTEGER || e0->integer != 0) {
            op->dirty = 1;
            op->maybe |= 1u << i;
        }
    }
    busy_end(op);
}

static void on_left(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    op->enqueued = 0;
    if (K(op)->redlock) {
        left_redlock(op, &f->call);
        return;
    }
    int64_t hint;
    int g = f->call.status[0] == DLOCK_OK ? read_grant(op, f->call.replies[0], &hint) : -1;
    if (g < 0) {
        dl_acq_left_unknown(op, &f->call);
    } else if (g == 1) {
        got(op, op->sent_us);
    } else {
        busy_end(op);
    }
}

static void busy(dl_aop *op, int64_t hint) {
    if (dl_acq_refused(op))
        return;
    /* Redlock: a minority's grants (dirty) are undone with the token. */
    if ((op->unknown_now || (K(op)->redlock && op->dirty)) &&
        dl_acq_abandon_token(op) != DLOCK_OK) {
        dl_acq_finish(op, DLOCK_EIO);
        return;
    }
    op->busy_us = op->sent_us;
    op->phase = DL_PH_WAIT;
    /* A wake-up that raced the attempt (the grant or hand-over ran after
     * it, its message came before its answer): look again now rather than
     * after a slice. */
    int64_t ms = op->handed ? 0 : dl_acq_sleep_ms(op, hint);
    dl_aop_timer(op, dl_mono_us() + ms * 1000);
}

static void busy_tally(dl_aop *op, const dl_tally *t) { busy(op, t->hint); }

static void k_woken(dl_aop *op, int64_t fence) {
    if (op->phase == DL_PH_ATTEMPT)
        op->handed = 1; /* its answer may predate the grant: busy() looks again */
    if (op->phase != DL_PH_WAIT || op->cancelled)
        return;
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (K(op)->r.kind == DL_LK_MULTI || K(op)->redlock) {
        /* A multi-lock: one name handed over: all of them yet? Redlock: a
         * master woke us, its head, to take the room on every master. */
        attempt(op);
        return;
    }
    /* Admitted after our last attempt found it busy: the lease started no
     * earlier than that attempt was sent. */
    K(op)->fences[0] = fence;
    got(op, op->busy_us);
}

static void k_timer(dl_timer *t) {
    dl_aop *op = (dl_aop *)t;
    if (dl_acq_timer_common(op))
        return;
    if (dl_acq_at_deadline(op))
        dl_acq_leave(op);
    else if (!dl_acq_resubscribe(op, K(op)->ks.k[0], K(op)->ks.len[0]))
        attempt(op);
}

/* ---- attempts ---- */

static void on_attempt(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dl_call *call = &f->call;
    if (K(op)->redlock) {
        dl_tally t;
        dl_acquire_tally(call, &t);
        op->maybe |= t.maybe;
        /* A writer's fence: max + 1; a reader's: the highest counter. */
        if (op->cancelled)
            dl_acq_give_up(op);
        else if (!dl_acq_unsafe(op, call, t.granted > 0, t.unknown))
            dl_acq_redlock_attempted(op, call, &t, K(op)->r.want == 1);
        return;
    }
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    if (call->status[0] == DLOCK_ESERVER && call->code[0] == DL_SRV_TRYAGAIN) {
        busy(op, 50); /* a Cluster slot migrating: the script ran nowhere */
        return;
    }
    int64_t hint = -1;
    int g = call->status[0] == DLOCK_OK ? read_grant(op, call->replies[0], &hint) : -1;
    if (dl_acq_unsafe(op, call, g == 1, call->unknown[0]))
        return;
    if (g < 0) {
        int rc = dl_call_error(&op->x, call, "acquire");
        if (call->status[0] == DLOCK_OK || call->status[0] == DLOCK_EPROTO)
            rc = dl_seterr(&op->x, DLOCK_EPROTO, "unexpected reply to acquire of '%s'",
                           op->name);
        op->unknown_now = call->unknown[0];
        failed(op, rc, op->x.code);
    } else if (g == 1) {
        got(op, op->sent_us);
    } else {
        busy(op, hint);
    }
}

static void attempt(dl_aop *op) {
    dlock_client *c = cli(op);
    kst *k = K(op);
    op->attempts++;
    int enqueue = op->push && dl_acq_will_wait(op);
    char wait_s[24], wall_s[24], score_s[24];
    size_t wl = dl_fmt_i64(wait_s, dl_acq_queue_wait_ms(op));
    size_t al = dl_fmt_i64(wall_s, dl_wall_ms());
    size_t sl = dl_fmt_i64(score_s, op->queue_score);
    /* Redlock: a reader reports the counter (2), a writer INCRs it (3),
     * whatever opts.fencing says (its fence is then 0), so that a master
     * never admits a waiter of either on its own (kinds.lua.h). */
    const char *fencing = k->redlock ? (k->r.want == 1 ? "3" : "2")
                                     : c->opts.fencing ? "1" : "0";
    const char *args[11] = {op->token, op->ttl_s, c->meta, fencing, enqueue ? "1" : "0",
                            wait_s,    wall_s,    op->e->chan, k->want, "", score_s};
    size_t lens[11] = {DL_TOKEN_HEX, op->ttl_len, c->meta_len, 1, 1, wl, al, op->e->chan_len,
                       k->want_len, 0, sl};
    op->phase = DL_PH_ATTEMPT;
    op->enqueued |= enqueue;
    op->handed = 0;
    /* The queue score (after an empty floor) only for a Redlock waiter. */
    int nargs = k->r.kind == DL_LK_MULTI ? 8 : k->redlock && enqueue ? 11 : 9;
    int rc = send_d(op, k->sc->acquire, nargs, args, lens, dl_acquire_decided, on_attempt);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
}

/* ---- start ---- */

/* The FENCE (Redlock rw locks), the EXTEND of a grant after a long wait,
 * the CANCEL of LEAVE (CANCEL keeps a grant made meanwhile). */
static int send_step(dl_aop *op, int phase, int nargs, const char **args, const size_t *lens,
                     dl_decided_fn decided, dl_fan_done_fn done) {
    enum dl_script_id id = phase == DL_PH_FENCE     ? DL_S_SEM_FENCE
                           : phase == DL_PH_REFRESH ? K(op)->sc->extend
                                                    : K(op)->sc->cancel;
    return send_d(op, id, nargs, args, lens, decided, done);
}

static const dl_acq_steps kind_steps = {
    .attempt = attempt,   .got = got_fence,  .deliver = deliver,  .busy = busy_tally,
    .busy_end = busy_end, .failed = failed, .left = on_left, .send = send_step,
};

int dl_kacquire_start(dl_engine *e, const dl_kreq *r, int64_t ttl_ms, int mode,
                      int64_t timeout_ms, int is_wait, dlock_done_fn cb, void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    if (e->n > 1 && r->kind != DL_LK_RW) /* multi-locks: multi.c's, as mutexes */
        return dl_seterr(&c->ctx, DLOCK_ENOTSUP,
                         "semaphores need one server, Sentinel or Cluster, not a Redlock set "
                         "(docs/REDLOCK.md says why)");
    dl_aop *op = dl_aop_new(e, DL_AOP_ACQUIRE, cb, ud);
    if (op == NULL || kst_make(op, r) != DLOCK_OK) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    op->timer.fire = k_timer;
    op->on_wake = k_woken;
    if (dl_acq_init(op, &kind_steps, ttl_ms, mode, timeout_ms, is_wait) != DLOCK_OK) {
        dl_aop_discard(op);
        return DLOCK_EIO;
    }
    K(op)->redlock = e->n > 1;
    if (id != NULL)
        *id = op->id;
    dl_acq_begin(op, K(op)->ks.k[0], K(op)->ks.len[0], attempt);
    return DLOCK_OK;
}

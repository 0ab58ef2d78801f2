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
 * every kind takes alike (set-up, naps, endings) are acquire_shared.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "kinds.h"
#include "resp.h"

#define SLICE_MAX_MS 2000 /* longest wait between attempts while queued */
/* Redlock: each master wakes its queue's head on its own; a missed or
 * early wake-up costs at most this (the mutex's slice: acquire_async.c). */
#define SLICE_REDLOCK_MS 250
#define QUEUE_MARGIN_MS 100

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
    int woken;           /* a wake-up came while an attempt was in flight */
    int redlock;         /* an rw lock on a Redlock set */
} kst;

static void attempt(dl_aop *op);

static dlock_client *cli(const dl_aop *op) { return op->e->c; }
static kst *K(const dl_aop *op) { return op->kx; }

static void arm_cap(dl_aop *op) {
    if (op->x.cap_us > 0 && op->fan != NULL && !op->finished)
        dl_aop_timer(op, op->x.cap_us);
}

static int64_t backoff(dl_aop *op, int64_t base, int64_t max) {
    dlock_client *c = cli(op);
    return dl_backoff_ms(op->attempts, base, max, c->opts.retry_jitter_pct, &c->rng);
}

/* How long to wait before the next attempt (the mutex's rule). */
static int64_t sleep_ms(dl_aop *op, int64_t hint) {
    dlock_client *c = cli(op);
    int redlock = K(op)->redlock;
    int64_t slice = redlock ? SLICE_REDLOCK_MS : SLICE_MAX_MS;
    int64_t ms = op->push && op->mode != DL_AM_RETRY
                     ? slice
                     : backoff(op, c->opts.retry_delay_ms, c->opts.retry_max_delay_ms);
    if (hint >= 0 && (op->push || redlock) && hint + 1 < ms)
        ms = hint + 1; /* the first lease ends first */
    if (op->push && ms > slice)
        ms = slice;
    if (op->mode == DL_AM_DEADLINE && ms > dl_acq_ms_until(op->deadline_us))
        ms = dl_acq_ms_until(op->deadline_us);
    return ms < 1 ? 1 : ms;
}

/* Send the kind's script `id` with args on the op's keys; on a Redlock set
 * `decided` may settle the call before every master answered. */
static int send_d(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                  const size_t *lens, dl_decided_fn decided, dl_fan_done_fn done) {
    int rc = dl_aop_kscript(op, id, &K(op)->ks, nargs, args, lens,
                            K(op)->redlock ? decided : NULL, done);
    if (rc == DLOCK_OK)
        arm_cap(op);
    return rc;
}

static int send(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                const size_t *lens, dl_fan_done_fn done) {
    return send_d(op, id, nargs, args, lens, NULL, done);
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

/* As the mutex's (acquire_async.c): a demoted master (READONLY) on
 * Sentinel or Cluster is a failover under way; on a Redlock set, too few
 * masters answering, unless a majority refused the name as another kind's
 * (WRONGTYPE). */
static int transient(const dl_aop *op, int rc, int code) {
    if (rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN ||
        (rc == DLOCK_ENOQUORUM && code != DL_SRV_WRONGTYPE))
        return 1;
    return rc == DLOCK_ESERVER &&
           (dl_srv_code_transient(code) || (code == DL_SRV_READONLY && op->e->routed));
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
    if (op->enqueued && k->redlock) {
        /* The masters that did not grant still queue this token: a stale
         * head there would keep the room for no one. SEM_CANCEL keeps the
         * grant where there is one (it only restarts its lease). */
        dl_aop *leave = dl_acq_cleanup(op->e, op);
        if (leave != NULL)
            leave->leave_only = 1;
        op->enqueued = 0;
    }
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
        arm_cap(op);
    }
}

static void on_refresh(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    int yes = 0;
    int rc = dl_extend_read(&op->x, &f->call, &yes);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        failed(op, rc, op->x.code);
    } else if (yes) {
        op->start_us = op->sent_us;
        deliver(op);
    } else if (dl_acq_will_wait(op)) {
        attempt(op); /* admitted, but the lease ran out before we noticed */
    } else {
        busy_end(op);
    }
}

/* Ours since start_us (fences in K(op)). A grant after a long wait has
 * eaten into the lease: restart it so the caller gets most of its ttl. */
static void got(dl_aop *op, int64_t start_us) {
    op->start_us = start_us;
    op->dirty = 1; /* from here on, a failure must give it back */
    if (dl_mono_us() - start_us <= op->ttl_ms * 500) {
        deliver(op);
        return;
    }
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    op->phase = DL_PH_REFRESH;
    int rc = send_d(op, K(op)->sc->extend, 2, args, lens, dl_extend_decided, on_refresh);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
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
        char why[200];
        dl_call_error(&op->x, &f->call, "leave the wait queue");
        snprintf(why, sizeof why, "%s", op->x.err);
        dl_acq_cleanup(op->e, op); /* try once more, in the background */
        dl_acq_finish(op, dl_seterr(&op->x, DLOCK_EUNKNOWN, "%s: a lease may exist for %" PRId64 " ms",
                             why, op->ttl_ms));
    } else if (g == 1) {
        got(op, op->sent_us);
    } else {
        busy_end(op);
    }
}

/* Give up waiting: leave the queue; CANCEL keeps a grant made meanwhile. */
static void leave(dl_aop *op) {
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    op->phase = DL_PH_LEAVE;
    int rc = send(op, K(op)->sc->cancel, 2, args, lens, on_left);
    if (rc != DLOCK_OK)
        dl_acq_end_with(op, rc);
}

static void busy(dl_aop *op, int64_t hint) {
    if (!op->contended) {
        op->contended = 1;
        dl_emit(&cli(op)->ctx, DLOCK_EV_CONTENDED, op->name, DLOCK_EBUSY, 0, 0, op->attempts);
    }
    if (!dl_acq_will_wait(op)) {
        if (op->enqueued)
            leave(op);
        else
            busy_end(op);
        return;
    }
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
    int64_t ms = K(op)->woken ? 0 : sleep_ms(op, hint);
    dl_aop_timer(op, dl_mono_us() + ms * 1000);
}

static void k_woken(dl_aop *op, int64_t fence) {
    if (op->phase == DL_PH_ATTEMPT)
        K(op)->woken = 1; /* its answer may predate the grant: busy() looks again */
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
        leave(op);
    else if (!dl_acq_resubscribe(op, K(op)->ks.k[0], K(op)->ks.len[0]))
        attempt(op);
}

static void k_subscribed(dl_aop *op) {
    if (op->phase != DL_PH_SUBWAIT)
        return;
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->cancelled)
        dl_acq_give_up(op);
    else
        attempt(op);
}

static void k_cancel(dl_aop *op) {
    op->cancelled = 1;
    if (op->phase == DL_PH_SUBWAIT || op->phase == DL_PH_WAIT || op->phase == DL_PH_NAP)
        dl_acq_give_up(op);
}

/* ---- Redlock (rw locks) ----
 * The mutex's rules (acquire_async.c, docs/REDLOCK.md): held when a
 * majority grants within the validity. A writer's fence is the value its
 * granting masters INCRed when they all agree, else max + 1 written to a
 * majority; a reader's is the counter they report when they agree, else
 * the highest, written to a majority, so that every later writer (whose
 * majority meets that one) rises above it. */

static void on_kfence(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dlock_client *c = cli(op);
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    int ok = 0;
    int64_t cand = K(op)->fences[0];
    for (int i = 0; i < f->call.n; i++)
        if (f->call.status[i] == DLOCK_OK && dl_reply_int(f->call.replies[i], -1) >= cand)
            ok++;
    int64_t valid_until = dl_valid_until_us(op->start_us, op->ttl_ms, c->opts.drift_factor);
    if (ok >= f->call.quorum && dl_mono_us() < valid_until) {
        got(op, op->start_us);
        return;
    }
    dl_call_error(&op->x, &f->call, "fence");
    int rc = dl_seterr(&op->x, DLOCK_ENOQUORUM, "fence: only %d of %d servers stored it", ok,
                       f->call.n);
    op->dirty = 1; /* held on some masters: given back */
    failed(op, rc, 0);
}

static void kfence(dl_aop *op, int64_t seen_max) {
    int writer = K(op)->r.want == 1;
    if (writer && seen_max == INT64_MAX) {
        dl_seterr(&op->x, DLOCK_ESERVER,
                  "lock '%s': FENCEMAX the fencing counter is at 2^63-1: no higher fence can "
                  "be issued",
                  op->name);
        op->x.code = DL_SRV_FENCEMAX;
        op->dirty = 1; /* held on a majority: given back */
        dl_acq_end_with(op, DLOCK_ESERVER);
        return;
    }
    K(op)->fences[0] = writer ? seen_max + 1 : seen_max;
    char cand[24];
    size_t n = dl_fmt_i64(cand, K(op)->fences[0]);
    const char *args[2] = {op->token, cand};
    size_t lens[2] = {DL_TOKEN_HEX, n};
    op->phase = DL_PH_FENCE;
    op->dirty = 1; /* held on a majority: a failure from here gives it back */
    int rc = send_d(op, DL_S_SEM_FENCE, 2, args, lens, dl_fence_decided, on_kfence);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
}

static void on_attempt_redlock(dl_aop *op, dl_call *call, const dl_tally *t) {
    dlock_client *c = cli(op);
    int64_t valid_until = dl_valid_until_us(op->sent_us, op->ttl_ms, c->opts.drift_factor);
    if (t->granted >= call->quorum && dl_mono_us() < valid_until) {
        op->start_us = op->sent_us;
        K(op)->fences[0] = c->opts.fencing ? t->seen_max : 0;
        if (!c->opts.fencing || t->agree)
            got(op, op->sent_us); /* the fence is on a majority already */
        else
            kfence(op, t->seen_max); /* the counters disagree */
        return;
    }
    int rc = t->answered < call->quorum ? dl_call_error(&op->x, call, "acquire") : DLOCK_OK;
    /* A minority's grant (or a request of unknown outcome) is undone by
     * the clean-up, pipelined behind the ACQUIRE on each master. */
    op->dirty = t->granted > 0;
    op->unknown_now = t->unknown;
    if (t->answered < call->quorum)
        failed(op, rc, op->x.code);
    else
        busy(op, t->hint);
}

/* ---- attempts ---- */

static void on_attempt(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dl_call *call = &f->call;
    if (K(op)->redlock) {
        dl_tally t;
        dl_acquire_tally(call, &t);
        op->maybe |= t.maybe;
        if (op->cancelled)
            dl_acq_give_up(op);
        else
            on_attempt_redlock(op, call, &t);
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
    size_t wl = dl_fmt_i64(wait_s, SLICE_MAX_MS + c->opts.command_timeout_ms + QUEUE_MARGIN_MS);
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
    k->woken = 0;
    /* The queue score (after an empty floor) only for a Redlock waiter. */
    int nargs = k->r.kind == DL_LK_MULTI ? 8 : k->redlock && enqueue ? 11 : 9;
    int rc = send_d(op, k->sc->acquire, nargs, args, lens, dl_acquire_decided, on_attempt);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
}

/* ---- start ---- */

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
    op->on_subscribed = k_subscribed;
    op->on_cancel = k_cancel;
    if (dl_acq_init(op, ttl_ms, mode, timeout_ms, is_wait) != DLOCK_OK) {
        dl_aop_discard(op);
        return DLOCK_EIO;
    }
    /* Redlock: one place in every master's queue, kept across fresh
     * tokens (as the mutex's: acquire_async.c). */
    K(op)->redlock = e->n > 1;
    op->queue_score = dl_wall_ms() * 1000 + (int64_t)(op->id % 1000);
    if (id != NULL)
        *id = op->id;
    dl_acq_begin(op, K(op)->ks.k[0], K(op)->ks.len[0], attempt);
    return DLOCK_OK;
}

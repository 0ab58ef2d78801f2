/* acquire_async.c - acquiring as a state machine driven by the engine
 * (the public calls, blocking and async, are in acquire.c).
 *
 * The same protocol as acquire.c, one step per event (the steps every kind
 * takes alike are acquire_shared.c's, the Redlock rules and the FENCE step
 * acquire_redlock.c's; this file gives them its steps, mutex_steps):
 *   ATTEMPT   the ACQUIRE script on every server (queued as a waiter when
 *             the op will wait and waiting is push);
 *   FENCE     Redlock, only when the granting servers' counters disagree:
 *             max+1 written to a majority;
 *   WAIT      a timer (the holder's lease left, a 2 s slice, the backoff or
 *             the deadline), ended early by a wake-up message on the
 *             engine's channel when the release hands us the lock;
 *   NAP       backoff after a transient failure, with a fresh token;
 *   LEAVE     the deadline passed while queued: CANCEL, which also tells
 *             whether the lock was handed to us meanwhile;
 *   REFRESH   a hand-over after a long wait: EXTEND restarts the lease;
 *   REPLICAS  WAIT for replicas (opts.replicas);
 *   GATE      too few acknowledged: the grant was given back; a timer,
 *             then PROBE, a WAIT alone, until the replicas are back (or
 *             the deadline: DLOCK_ENOREPLICAS).
 * Whatever an op gives up on (cancelled, failed, timed out) it leaves no
 * trace: a background clean-up op (cleanup_async.c) leaves the queue and
 * releases by token, and the op goes on with a fresh token. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "engine.h"
#include "resp.h"

_Static_assert(DL_LUA_META_MAX + 1 == sizeof(((dlock_client *)0)->meta), "metadata bound");
_Static_assert(DL_LUA_CHAN_MAX + 1 == sizeof(((dl_engine *)0)->chan), "channel bound");

static void attempt(dl_aop *op);
static void probe(dl_aop *op);
static void on_wait(dl_fan *f, void *arg);

static dlock_client *cli(const dl_aop *op) { return op->e->c; }

/* ---- endings (the shared ones: acquire_shared.c) ---- */

static void busy_end(dl_aop *op) {
    if (op->is_wait) {
        dl_seterr(&op->x, DLOCK_ETIMEDOUT, "lock '%s' still held after %" PRId64 " ms",
                  op->name, op->timeout_ms);
        dl_acq_end_with(op, DLOCK_ETIMEDOUT);
    } else if (op->migrating) {
        dl_seterr(&op->x, DLOCK_EBUSY,
                  "lock '%s': its cluster slot is migrating (TRYAGAIN); try again", op->name);
        dl_acq_end_with(op, DLOCK_EBUSY);
    } else {
        dl_seterr(&op->x, DLOCK_EBUSY, "lock '%s' is held by another owner", op->name);
        dl_acq_end_with(op, DLOCK_EBUSY);
    }
}

/* A failed step: retry after a backoff (with a fresh token if the old one
 * may have left something) while the caller waits and the failure may
 * pass; else end with it. */
static void failed(dl_aop *op, int rc, int code) {
    dl_acq_retry_later(op, rc, dl_acq_transient(op, rc, code));
}

/* ---- the lock is ours ---- */

static void make_lock(dl_aop *op) {
    dlock_client *c = cli(op);
    dl_acq_redlock_leave_queues(op);
    dlock_lock *l = dl_lock_new(c, op->name, op->name_len);
    if (l == NULL) {
        op->dirty = 1;
        dl_acq_end_with(op, dl_seterr(&op->x, DLOCK_ENOMEM, "out of memory"));
        return;
    }
    l->eng = op->e->blocking ? NULL : op->e; /* whose timers keep it alive */
    memcpy(l->token, op->token, sizeof l->token);
    l->fence = op->fence;
    l->ttl_ms = op->ttl_ms;
    l->acquired_wall_ms = dl_wall_ms() - (dl_mono_us() - op->start_us) / 1000;
    l->acquired_us = op->start_us;
    atomic_store(&l->valid_until_us,
                 dl_valid_until_us(op->start_us, op->ttl_ms, c->opts.drift_factor));
    op->lock = l;
    dl_emit(&c->ctx, DLOCK_EV_ACQUIRED, op->name, DLOCK_OK, op->fence,
            dl_mono_us() - op->t_begin_us, op->attempts);
    dl_aop_finish(op, DLOCK_OK);
}

/* ---- the replica gate (opts.replicas) ----
 * Fewer replicas than opts.replicas acknowledged a grant: it is given back
 * and the engine remembers the gate as short. A caller that waits keeps
 * waiting, but takes the lock again only once a WAIT alone (PROBE) shows
 * the replicas back, so no fence is spent on a gate that cannot pass; so
 * does every later acquire while the gate is short (a try then fails
 * without touching the lock). The call ends with DLOCK_ENOREPLICAS. */

/* The pause before the next probe: 50 ms doubling to 1 s, not past the
 * deadline. */
static void gate_nap(dl_aop *op) {
    dlock_client *c = cli(op);
    int64_t nap = dl_backoff_ms(op->probes++, 50, 1000, c->opts.retry_jitter_pct, &c->rng);
    if (op->mode == DL_AM_DEADLINE && nap > dl_acq_ms_until(op->deadline_us))
        nap = dl_acq_ms_until(op->deadline_us);
    op->phase = DL_PH_GATE;
    dl_aop_timer(op, dl_mono_us() + nap * 1000);
}

/* The gate is short (`acked` of opts.replicas): say so, then end, or wait
 * (raising the warning once per op). `what` is the lock's fate. */
static void gate_short(dl_aop *op, int64_t acked, const char *what) {
    dlock_client *c = cli(op);
    op->e->gate_short = 1;
    dl_seterr(&op->x, DLOCK_ENOREPLICAS,
              "lock '%s': only %" PRId64 " of %d replicas acknowledged within %" PRId64
              " ms (replicas option); %s",
              op->name, acked < 0 ? 0 : acked, c->opts.replicas, op->gate_ms, what);
    if (!dl_acq_will_wait(op)) {
        dl_acq_end_with(op, DLOCK_ENOREPLICAS);
        return;
    }
    if (!op->gate_warned) {
        char msg[600];
        op->gate_warned = 1;
        snprintf(msg, sizeof msg, "%s: waiting for the replicas to come back", op->x.err);
        dl_warn(&c->ctx, msg);
    }
    if ((op->dirty || op->unknown_now) && dl_acq_abandon_token(op) != DLOCK_OK) {
        dl_acq_finish(op, DLOCK_EIO);
        return;
    }
    gate_nap(op);
}

/* Ask WAIT alone whether the replicas are back; at the deadline, end. */
static void probe(dl_aop *op) {
    if (op->phase == DL_PH_GATE && !dl_acq_will_wait(op)) {
        dl_acq_finish(op, DLOCK_ENOREPLICAS); /* op->x still says why */
        return;
    }
    op->phase = DL_PH_PROBE;
    op->attempts++; /* a try, for the retry count */
    if (dl_gate_send(op, on_wait) == DLOCK_OK) {
        dl_acq_arm_cap(op);
        return;
    }
    op->e->gate_short = 0; /* the attempt meets (and reports) the failure */
    attempt(op);
}

/* A WAIT answered: after a grant (DL_PH_REPLICAS) the gate passes or the
 * grant is given back; a probe (DL_PH_PROBE) lets the next attempt go, or
 * waits on. */
static void on_wait(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    int64_t acked;
    int rc = dl_gate_acked(op, f, &acked);
    int enough = rc == DLOCK_OK && acked >= cli(op)->opts.replicas;
    if (op->phase == DL_PH_PROBE) {
        if (rc == DLOCK_OK && !enough) {
            gate_short(op, acked, "the lock was not taken");
            return;
        }
        op->e->gate_short = 0; /* back (or the server changed: the attempt finds out) */
        attempt(op);
        return;
    }
    if (enough) {
        op->e->gate_short = 0;
        make_lock(op);
        return;
    }
    op->dirty = 1; /* what we hold is given back */
    if (rc != DLOCK_OK) {
        /* A demoted master: retried as after READONLY (dl_acq_transient). */
        failed(op, rc, dl_gate_demoted(op, f) ? DL_SRV_READONLY : op->x.code);
    } else {
        op->probes = 0;
        gate_short(op, acked, "it was given back");
    }
}

/* Held: pass the replica gate (if any) and make the handle. */
static void deliver(dl_aop *op) {
    if (cli(op)->opts.replicas <= 0) {
        make_lock(op);
        return;
    }
    op->phase = DL_PH_REPLICAS;
    int rc = dl_gate_send(op, on_wait);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        dl_acq_end_with(op, rc);
    } else {
        dl_acq_arm_cap(op);
    }
}

/* The lock is ours since start_us, with `fence`. */
static void got(dl_aop *op, int64_t fence, int64_t start_us) {
    op->fence = fence;
    dl_acq_held(op, start_us);
}

/* ---- waiting ---- */

/* The deadline passed while queued, and the CANCEL that leaves the queue
 * (dl_acq_leave) answered: the lock may have been handed to us meanwhile
 * (CANCEL then keeps it for us). */
static void on_left(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    op->enqueued = 0;
    if (f->call.status[0] != DLOCK_OK) {
        dl_acq_left_unknown(op, &f->call);
        return;
    }
    const redisReply *r = f->call.replies[0];
    if (op->e->n == 1 && dl_reply_int(dl_elem(r, 0), 0) == 1) {
        got(op, dl_reply_int(dl_elem(r, 1), 0), op->sent_us);
        return;
    }
    /* A Redlock master never hands the lock over alone (its entries are
     * woken only), so no single answer here is a grant; should one say
     * the lock is ours anyway, it is given back, by token. */
    for (int i = 0; op->e->n > 1 && i < f->call.n; i++)
        if (f->call.status[i] == DLOCK_OK &&
            dl_reply_int(dl_elem(f->call.replies[i], 0), 0) == 1) {
            dl_acq_cleanup(op->e, op);
            break;
        }
    busy_end(op);
}

static void busy(dl_aop *op, int64_t hint, int64_t counter) {
    if (dl_acq_refused(op))
        return;
    if ((op->dirty || op->unknown_now) && dl_acq_abandon_token(op) != DLOCK_OK) {
        dl_acq_finish(op, DLOCK_EIO);
        return;
    }
    if (op->handed) {
        /* Woken while that attempt flew. The wake-up cannot be ordered
         * against the attempt (another connection): it may be news of a
         * hand-over after the attempt, or a stale one whose lease has
         * ended (this process was paused) and gone to someone else. Only
         * another attempt can tell: it finds the lock ours, or not. */
        attempt(op);
        return;
    }
    op->busy_us = op->sent_us;
    op->busy_counter = counter;
    op->phase = DL_PH_WAIT;
    dl_aop_timer(op, dl_mono_us() + dl_acq_sleep_ms(op, hint) * 1000);
}

static void busy_tally(dl_aop *op, const dl_tally *t) { busy(op, t->hint, t->counter); }

static void dl_acq_woken(dl_aop *op, int64_t fence_v) {
    if (op->cancelled)
        return;
    if (op->phase == DL_PH_ATTEMPT) {
        /* If the attempt ran after the release it reports the grant; if
         * before, it reports busy, and the wake-up (which the server may
         * write first) is the only news: keep it for busy(), which asks
         * again at once rather than sleep a slice. */
        op->handed = 1;
        return;
    }
    if (op->phase != DL_PH_WAIT)
        return;
    if (op->e->n == 1 && cli(op)->opts.fencing && fence_v <= op->busy_counter)
        return; /* a hand-over older than our last busy answer: stale */
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->e->n > 1 || !cli(op)->opts.fencing) {
        /* Redlock: a master woke us, the head, to take the lock on all.
         * Without fencing a hand-over cannot be told from a stale one: ask.
         * Either way, the next attempt says whether the lock is ours. */
        attempt(op);
        return;
    }
    /* The hand-over happened after our last attempt found the lock busy
     * (its fence is above the counter that answer saw): the lease started
     * no earlier than that attempt was sent. */
    got(op, fence_v, op->busy_us);
}

static void dl_acq_timer(dl_timer *t) {
    dl_aop *op = (dl_aop *)t;
    if (dl_acq_timer_common(op))
        return;
    if (op->phase == DL_PH_GATE) {
        probe(op);
        return;
    }
    if (dl_acq_at_deadline(op))
        dl_acq_leave(op);
    else if (!dl_acq_resubscribe(op, op->keys.k[0], op->keys.len[0]))
        attempt(op);
}

/* ---- attempts ---- */

static void on_attempt_one(dl_aop *op, dl_call *call, const dl_tally *t) {
    if (call->status[0] == DLOCK_ESERVER && call->code[0] == DL_SRV_TRYAGAIN) {
        /* Cluster slot migration in progress: like a busy lock, try again
         * shortly (the script ran nowhere). */
        op->migrating = 1;
        busy(op, 50, 0);
        return;
    }
    if (call->status[0] != DLOCK_OK) {
        int rc = dl_call_error(&op->x, call, "acquire");
        if (call->status[0] == DLOCK_EPROTO)
            rc = DLOCK_EPROTO;
        op->unknown_now = t->unknown;
        failed(op, rc, op->x.code);
        return;
    }
    if (t->granted)
        got(op, t->seen_max, op->sent_us);
    else
        busy(op, t->hint, t->counter);
}

static void on_attempt(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dl_tally t;
    dl_acquire_tally(&f->call, &t);
    op->maybe |= t.maybe;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    if (dl_acq_unsafe(op, &f->call, t.granted > 0, t.unknown))
        return;
    if (op->e->n == 1)
        on_attempt_one(op, &f->call, &t);
    else
        dl_acq_redlock_attempted(op, &f->call, &t, 1); /* fence: max + 1 */
}

static void attempt(dl_aop *op) {
    dlock_client *c = cli(op);
    if (c->opts.replicas > 0 && op->e->gate_short) {
        probe(op); /* no grant (and no fence) while the gate cannot pass */
        return;
    }
    op->attempts++;
    op->migrating = 0;
    int ww = dl_acq_will_wait(op);
    int enqueue = op->push && ww;
    char wait_s[24], wall_s[24];
    size_t wl = dl_fmt_i64(wait_s, dl_acq_queue_wait_ms(op));
    size_t al = dl_fmt_i64(wall_s, dl_wall_ms());
    /* Redlock fences with "3": each granting server INCRs its own counter
     * (one round trip while they agree). Without fencing it sends "2" (the
     * counter is only read, and the fence ignored): either way a Redlock
     * waiter's queue entries are only woken, never handed the lock by one
     * master (see the scripts), which "0" would allow. */
    const char *fencing = op->e->n > 1 ? (c->opts.fencing ? "3" : "2")
                                       : (c->opts.fencing ? "1" : "0");
    char score_s[24];
    size_t sl = dl_fmt_i64(score_s, op->queue_score);
    const char *args[9] = {op->token, op->ttl_s, c->meta, fencing,     enqueue ? "1" : "0",
                           wait_s,    wall_s,    op->e->chan, score_s};
    size_t lens[9] = {DL_TOKEN_HEX, op->ttl_len, c->meta_len, 1, 1, wl, al, op->e->chan_len, sl};
    /* Not subscribed (yet, or the subscription failed): a hand-over is
     * then found by the next attempt, which the timer bounds. */
    op->phase = DL_PH_ATTEMPT;
    op->handed = 0;
    op->enqueued |= enqueue;
    /* The channel and the queue score are read only by a waiter joining
     * the queue: fewer arguments for the server to parse on every other
     * acquire (Sentinel and Cluster pad them for the floor: engine.c). */
    int nargs = !enqueue ? 7 : op->e->n > 1 ? 9 : 8;
    int rc = dl_aop_script(op, DL_S_ACQUIRE, nargs, args, lens,
                           op->e->n > 1 ? dl_acquire_decided : NULL, on_attempt);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
    else
        dl_acq_arm_cap(op);
}

/* ---- starts ---- */

/* The FENCE, the EXTEND of a hand-over after a long wait, the CANCEL of
 * LEAVE. */
static int send(dl_aop *op, int phase, int nargs, const char **args, const size_t *lens,
                dl_decided_fn decided, dl_fan_done_fn done) {
    enum dl_script_id id = phase == DL_PH_FENCE     ? DL_S_FENCE
                           : phase == DL_PH_REFRESH ? DL_S_EXTEND
                                                    : DL_S_CANCEL;
    int rc = dl_aop_script(op, id, nargs, args, lens, decided, done);
    if (rc == DLOCK_OK)
        dl_acq_arm_cap(op);
    return rc;
}

static const dl_acq_steps mutex_steps = {
    .attempt = attempt, .got = got,   .deliver = deliver, .busy = busy_tally,
    .busy_end = busy_end, .failed = failed, .left = on_left, .send = send,
};

int dl_acquire_start(dl_engine *e, const char *name, size_t len, int64_t ttl_ms, int mode,
                     int64_t timeout_ms, int is_wait, dlock_done_fn cb, void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    dl_aop *op = dl_aop_new(e, DL_AOP_ACQUIRE, cb, ud);
    if (op == NULL || dl_aop_name(op, name, len) != DLOCK_OK) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    op->timer.fire = dl_acq_timer;
    op->on_wake = dl_acq_woken;
    if (dl_acq_init(op, &mutex_steps, ttl_ms, mode, timeout_ms, is_wait) != DLOCK_OK) {
        dl_aop_discard(op);
        return DLOCK_EIO;
    }
    if (id != NULL)
        *id = op->id;
    dl_acq_begin(op, op->keys.k[0], op->keys.len[0], attempt);
    return DLOCK_OK;
}

/* acquire_redlock.c - the Redlock rules of an acquire (docs/REDLOCK.md),
 * once for every kind that takes a lock on a Redlock set: the mutex
 * (acquire_async.c) and the rw lock (kind_async.c); multi-locks are taken
 * there as mutexes (multi.c). The attempt runs the kind's ACQUIRE on every
 * master, one queue score on all of them (acquire_shared.c), and a master
 * only wakes its waiters, never hands them the lock (the scripts). Then:
 *   held    a majority granted within the validity; with fencing, the
 *           FENCE step first when the granting masters' counters disagree;
 *   busy    a majority answered, too few granting: a minority's grants
 *           (or requests of unknown outcome) are undone by token;
 *   failed  fewer than a majority answered.
 * Held, the op leaves the queues of the masters that did not grant. What
 * differs between the kinds (their scripts, keys and replies, how they
 * wait and end) comes through op->steps (engine.h). */
#include <inttypes.h>

#include "backoff.h"
#include "clock.h"
#include "engine.h"
#include "resp.h"

/* ---- fencing ----
 * Each granting master INCRs its own counter (a reader's reports it).
 * When every grant carries the same value, that value is already stored
 * on a majority and above every earlier fence: the acquire is done in one
 * round trip. Otherwise (the counters diverged: a failed acquire or a
 * master that lost its data) the second step writes the highest + rise
 * (1; a reader's 0) to a majority, so that every later writer, whose
 * majority meets that one, rises above it. docs/REDLOCK.md has the
 * proof. */

static void on_fence(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dlock_client *c = op->e->c;
    if (op->cancelled) {
        dl_acq_give_up(op);
        return;
    }
    int ok = 0;
    for (int i = 0; i < f->call.n; i++)
        if (f->call.status[i] == DLOCK_OK &&
            dl_reply_int(f->call.replies[i], -1) >= op->fence_want)
            ok++;
    int64_t valid_until = dl_valid_until_us(op->start_us, op->ttl_ms, c->opts.drift_factor);
    if (ok >= f->call.quorum && dl_mono_us() < valid_until) {
        op->steps->got(op, op->fence_want, op->start_us);
        return;
    }
    dl_call_error(&op->x, &f->call, "fence");
    int rc = dl_seterr(&op->x, DLOCK_ENOQUORUM, "fence: only %d of %d servers stored it", ok,
                       f->call.n);
    op->dirty = 1; /* we hold it on some masters: give it back */
    op->steps->failed(op, rc, 0);
}

static void fence(dl_aop *op, int64_t seen_max, int rise) {
    if (rise && seen_max == INT64_MAX) {
        /* As the single-server scripts say it: no higher fence exists. */
        dl_seterr(&op->x, DLOCK_ESERVER,
                  "lock '%s': FENCEMAX the fencing counter is at 2^63-1: no higher fence can "
                  "be issued",
                  op->name);
        op->x.code = DL_SRV_FENCEMAX;
        op->dirty = 1; /* we hold it on a majority: release it */
        dl_acq_end_with(op, DLOCK_ESERVER);
        return;
    }
    op->fence_want = seen_max + rise;
    char cand[24];
    size_t n = dl_fmt_i64(cand, op->fence_want);
    const char *args[2] = {op->token, cand};
    size_t lens[2] = {DL_TOKEN_HEX, n};
    op->phase = DL_PH_FENCE;
    int rc = op->steps->send(op, DL_PH_FENCE, 2, args, lens, dl_fence_decided, on_fence);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        op->steps->failed(op, rc, 0);
    }
}

/* ---- the attempt's answers ---- */

void dl_acq_redlock_attempted(dl_aop *op, dl_call *call, const dl_tally *t, int rise) {
    dlock_client *c = op->e->c;
    int64_t valid_until = dl_valid_until_us(op->sent_us, op->ttl_ms, c->opts.drift_factor);
    if (t->granted >= call->quorum && dl_mono_us() < valid_until) {
        op->start_us = op->sent_us;
        if (!c->opts.fencing)
            op->steps->got(op, 0, op->sent_us);
        else if (t->agree)
            op->steps->got(op, t->seen_max, op->sent_us); /* stored on a majority already */
        else
            fence(op, t->seen_max, rise); /* the counters diverged */
        return;
    }
    int rc = t->answered < call->quorum ? dl_call_error(&op->x, call, "acquire") : DLOCK_OK;
    /* A minority's grant (or a request of unknown outcome) is undone by
     * the clean-up, pipelined behind the ACQUIRE on each master, so it
     * also undoes a grant that is still on its way. */
    op->dirty = t->granted > 0;
    op->unknown_now = t->unknown;
    if (t->answered < call->quorum)
        op->steps->failed(op, rc, op->x.code);
    else
        op->steps->busy(op, t);
}

void dl_acq_redlock_leave_queues(dl_aop *op) {
    if (!op->enqueued || op->e->n <= 1)
        return;
    /* The masters that did not grant still queue this token: a stale
     * head there would keep their free lock for no one. CANCEL keeps the
     * lock where it is held (it only restarts its lease). */
    dl_aop *leave = dl_acq_cleanup(op->e, op);
    if (leave != NULL)
        leave->leave_only = 1;
    op->enqueued = 0;
}

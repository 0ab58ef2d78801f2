/* acquire_shared.c - what the acquire state machines of every kind share:
 * the mutex's (acquire_async.c) and the other kinds' (kind_async.c) take
 * the same steps around their own scripts. Set-up and start, the stopping
 * rules, the nap after a transient failure, and every way an op ends:
 * with or without waiting for the clean-up by token of what its current
 * token may have left (cleanup_async.c), cancelled, or cut at the cap of
 * dlock_wait_async (the deadline plus one command timeout). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "engine.h"

int dl_acq_will_wait(const dl_aop *op) {
    switch (op->mode) {
    case DL_AM_RETRY:
        return op->attempts <= op->e->c->opts.retry_count;
    case DL_AM_DEADLINE:
        return dl_mono_us() < op->deadline_us;
    default:
        return 0;
    }
}

int64_t dl_acq_ms_until(int64_t until_us) {
    int64_t d = until_us - dl_mono_us();
    return d <= 0 ? 0 : (d + 999) / 1000;
}

int dl_acq_init(dl_aop *op, int64_t ttl_ms, int mode, int64_t timeout_ms, int is_wait) {
    dlock_client *c = op->e->c;
    op->on_cleaned = dl_acq_cleaned;
    op->ttl_ms = ttl_ms;
    op->ttl_len = dl_fmt_i64(op->ttl_s, ttl_ms);
    op->mode = mode;
    op->is_wait = is_wait;
    op->timeout_ms = timeout_ms;
    op->t_begin_us = dl_mono_us();
    op->deadline_us = op->t_begin_us + timeout_ms * 1000;
    if (mode == DL_AM_DEADLINE)
        op->x.cap_us = op->deadline_us + (int64_t)c->opts.command_timeout_ms * 1000;
    op->push = c->opts.waiting == DLOCK_WAIT_PUSH && mode != DL_AM_TRY;
    if (dl_pool_token(&c->pool, op->token) != 0)
        return dl_seterr(&c->ctx, DLOCK_EIO, "getrandom failed");
    return DLOCK_OK;
}

/* Subscribe the wake channel on the server of key where it is not (yet,
 * or any more); 1 if the op now waits for that in PH_SUBWAIT (its
 * on_subscribed, or its timer, attempts), 0 if it may attempt now. */
static int sub_wait(dl_aop *op, const char *key, size_t klen) {
    dl_engine *e = op->e;
    dl_engine_subscribe(e, key, klen);
    if (e->sub_state != DL_SUB_PENDING)
        return 0;
    /* Queue only once subscribed, so no hand-over is missed; but never
     * wait for that longer than a command timeout (or the cap): a
     * hand-over is also found by the next attempt. */
    op->phase = DL_PH_SUBWAIT;
    int64_t at = dl_mono_us() + (int64_t)e->c->opts.command_timeout_ms * 1000;
    dl_aop_timer(op, op->x.cap_us > 0 && op->x.cap_us < at ? op->x.cap_us : at);
    dl_engine_kick(e);
    return 1;
}

void dl_acq_begin(dl_aop *op, const char *key, size_t klen, void (*attempt)(dl_aop *op)) {
    if (op->push && sub_wait(op, key, klen))
        return;
    attempt(op);
    dl_engine_kick(op->e);
}

int dl_acq_resubscribe(dl_aop *op, const char *key, size_t klen) {
    dl_engine *e = op->e;
    /* Redlock: every master wakes its own queue's head, so one lost
     * subscription costs little, and a master that is down must not hold
     * up the attempts on the others. A timer in PH_SUBWAIT: the
     * subscription took a command timeout already; attempt. A standing
     * subscription stays where it is (as at the op's start). */
    if (!op->push || e->n > 1 || op->phase == DL_PH_SUBWAIT || e->sub_st[0] != DL_SUB_NONE ||
        !dl_acq_will_wait(op))
        return 0;
    return sub_wait(op, key, klen);
}

void dl_acq_finish(dl_aop *op, int rc) {
    dlock_client *c = op->e->c;
    if (rc != DLOCK_OK && rc != DLOCK_EUNKNOWN && rc != DLOCK_ECANCELED && op->unknown_open) {
        char why[sizeof op->x.err];
        memcpy(why, op->x.err, sizeof why);
        rc = dl_seterr(&op->x, DLOCK_EUNKNOWN,
                       "%.300s; an earlier attempt's outcome is unknown: a lease may exist for "
                       "%" PRId64 " ms",
                       why, op->ttl_ms);
    }
    if (rc != DLOCK_OK && rc != DLOCK_EBUSY && rc != DLOCK_ETIMEDOUT && rc != DLOCK_ECANCELED)
        dl_emit(&c->ctx, DLOCK_EV_ERROR, op->name, rc, 0, dl_mono_us() - op->t_begin_us,
                op->attempts);
    dl_aop_finish(op, rc);
}

/* The clean-up `child` ended; its parent was waiting to end with
 * pending_rc. If the request whose outcome was unknown could not be
 * undone either, the outcome stays unknown. */
void dl_acq_cleaned(dl_aop *op, int failed_too) {
    op->child = NULL;
    int rc = op->pending_rc;
    if (op->cancelled) {
        rc = dl_seterr(&op->x, DLOCK_ECANCELED, "acquire of '%s' cancelled", op->name);
    } else if (failed_too && op->unknown_now) {
        char saved[sizeof op->x.err];
        memcpy(saved, op->x.err, sizeof saved);
        rc = dl_seterr(&op->x, DLOCK_EUNKNOWN,
                       "%.300s; clean-up by token failed too: a lease may exist for %" PRId64
                       " ms",
                       saved, op->ttl_ms);
    }
    dl_acq_finish(op, rc);
}

int dl_acq_abandon_token(dl_aop *op) {
    dl_acq_cleanup(op->e, op);
    op->unknown_open |= op->unknown_now;
    op->enqueued = op->dirty = op->unknown_now = 0;
    op->maybe = 0;
    if (dl_pool_token(&op->e->c->pool, op->token) != 0)
        return dl_seterr(&op->x, DLOCK_EIO, "getrandom failed");
    return DLOCK_OK;
}

/* The caller learns of the failure only once nothing of the current token
 * (a queue entry, a grant, a request of unknown outcome) remains, or that
 * it may. */
void dl_acq_end_with(dl_aop *op, int rc) {
    dl_aop *child = op->enqueued || op->dirty || op->unknown_now ? dl_acq_cleanup(op->e, op)
                                                                 : NULL;
    if (child == NULL) {
        dl_acq_finish(op, rc);
        return;
    }
    child->parent = op;
    op->child = child;
    op->pending_rc = rc;
    op->phase = DL_PH_CLEANUP;
    if (op->x.cap_us > 0)
        dl_aop_timer(op, op->x.cap_us);
    else
        dl_heap_disarm(&op->e->heap, &op->timer);
}

void dl_acq_give_up(dl_aop *op) {
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->attempts > 0)
        dl_acq_cleanup(op->e, op);
    dl_seterr(&op->x, DLOCK_ECANCELED, "acquire of '%s' cancelled", op->name);
    dl_aop_finish(op, DLOCK_ECANCELED);
}

void dl_acq_retry_later(dl_aop *op, int rc, int transient) {
    dlock_client *c = op->e->c;
    if (!transient || !dl_acq_will_wait(op)) {
        dl_acq_end_with(op, rc);
        return;
    }
    if (op->enqueued || op->dirty || op->unknown_now) {
        int trc = dl_acq_abandon_token(op);
        if (trc != DLOCK_OK) {
            dl_acq_finish(op, trc);
            return;
        }
    }
    int64_t nap = op->mode == DL_AM_RETRY
                      ? dl_backoff_ms(op->attempts, c->opts.retry_delay_ms,
                                      c->opts.retry_max_delay_ms, c->opts.retry_jitter_pct,
                                      &c->rng)
                      : dl_backoff_ms(op->attempts, 50, 1000, c->opts.retry_jitter_pct, &c->rng);
    if (op->mode == DL_AM_DEADLINE && nap > dl_acq_ms_until(op->deadline_us))
        nap = dl_acq_ms_until(op->deadline_us);
    op->phase = DL_PH_NAP;
    dl_aop_timer(op, dl_mono_us() + nap * 1000);
}

int dl_acq_at_deadline(dl_aop *op) {
    if (op->phase != DL_PH_WAIT || op->mode != DL_AM_DEADLINE || dl_mono_us() < op->deadline_us)
        return 0;
    if (op->enqueued)
        return 1;
    op->mode = DL_AM_TRY; /* one last try at the deadline */
    return 0;
}

int dl_acq_timer_common(dl_aop *op) {
    if (op->phase == DL_PH_CLEANUP) {
        /* dlock_wait_async's cap passed while its clean-up runs: end now;
         * the clean-up goes on alone. */
        dl_acq_finish(op, op->pending_rc);
        return 1;
    }
    if (op->cancelled) {
        dl_acq_give_up(op);
        return 1;
    }
    if (op->fan != NULL && !op->fan->completed) {
        /* dlock_wait_async's cap passed with a request in flight: stop
         * waiting for it. If it went out, the clean-up queued behind it on
         * each connection undoes whatever it does. */
        if (!dl_aop_drop_fan(op)) {
            dl_acq_end_with(op, DLOCK_EIO); /* it never went out: it ran nowhere */
            return 1;
        }
        op->maybe = ~0u; /* the request may still reach any server */
        dl_acq_abandon_token(op);
        dl_seterr(&op->x, DLOCK_EUNKNOWN,
                  "lock '%s': the deadline passed with no answer to a request in flight (it "
                  "is undone by token in the background): a lease may exist for %" PRId64
                  " ms",
                  op->name, op->ttl_ms);
        dl_aop_finish(op, DLOCK_EUNKNOWN);
        return 1;
    }
    return 0;
}

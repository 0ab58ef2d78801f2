/* acquire_shared.c - what the acquire state machines of every kind share:
 * the mutex's (acquire_async.c) and the other kinds' (kind_async.c) take
 * the same steps around their own scripts (op->steps: engine.h). Set-up
 * and start, the stopping rules, which failures may pass, how long a
 * refused op waits, the nap after a transient failure, the lease's
 * restart after a long wait, and every way an op ends: with or without
 * waiting for the clean-up by token of what its current token may have
 * left (cleanup_async.c), cancelled, or cut at the cap of
 * dlock_wait_async (the deadline plus one command timeout). The Redlock
 * rules are acquire_redlock.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "engine.h"

#define SLICE_MAX_MS 2000 /* longest wait between attempts while queued */
/* Redlock: each master wakes its queue's head on its own, and a wake-up
 * one of them sends before the others are free is only a hint: a shorter
 * slice bounds what a missed one costs. */
#define SLICE_REDLOCK_MS 250
#define QUEUE_MARGIN_MS 100
/* The scripts refuse a longer queue wait (command timeouts reach 1 h). */
_Static_assert(SLICE_MAX_MS + 3600000 + QUEUE_MARGIN_MS <= DL_LUA_WAIT_MAX, "queue wait bound");

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

/* The wake channel's subscription answered: attempt now. */
static void subscribed(dl_aop *op) {
    if (op->phase != DL_PH_SUBWAIT)
        return;
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->cancelled)
        dl_acq_give_up(op);
    else
        op->steps->attempt(op);
}

static void cancel(dl_aop *op) {
    op->cancelled = 1;
    if (op->phase == DL_PH_SUBWAIT || op->phase == DL_PH_WAIT || op->phase == DL_PH_NAP ||
        op->phase == DL_PH_GATE)
        dl_acq_give_up(op);
    /* else: the request in flight ends in give_up when it is answered */
}

int dl_acq_init(dl_aop *op, const dl_acq_steps *steps, int64_t ttl_ms, int mode,
                int64_t timeout_ms, int is_wait) {
    dlock_client *c = op->e->c;
    op->steps = steps;
    op->on_subscribed = subscribed;
    op->on_cancel = cancel;
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
    /* Redlock: one place in every master's queue (see the ACQUIRE
     * scripts); kept across fresh tokens, so a retry does not lose its
     * turn. */
    op->queue_score = dl_wall_ms() * 1000 + (int64_t)(op->id % 1000);
    return DLOCK_OK;
}

void dl_acq_arm_cap(dl_aop *op) {
    if (op->x.cap_us > 0 && op->fan != NULL && !op->finished)
        dl_aop_timer(op, op->x.cap_us);
}

/* A failure that waiting may cure: an unreachable or restarting server,
 * no quorum, an unknown outcome, a "try again" error; on Sentinel and
 * Cluster also READONLY (a master a failover demoted: the next attempt
 * finds the new one). A Sentinel discovery that found no master is EIO. */
int dl_acq_transient(const dl_aop *op, int rc, int code) {
    if (rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN || rc == DLOCK_ENOQUORUM)
        return 1;
    return rc == DLOCK_ESERVER &&
           (dl_srv_code_transient(code) || (code == DL_SRV_READONLY && op->e->routed));
}

/* A waiter (push) sleeps a slice, anyone else the backoff; not past the
 * end of the holder's lease (hint) when it waits or is on a Redlock set,
 * nor past the deadline. */
int64_t dl_acq_sleep_ms(dl_aop *op, int64_t hint) {
    dlock_client *c = op->e->c;
    int64_t ms;
    int64_t slice = op->e->n > 1 ? SLICE_REDLOCK_MS : SLICE_MAX_MS;
    if (op->push && op->mode != DL_AM_RETRY)
        ms = slice;
    else
        ms = dl_backoff_ms(op->attempts, c->opts.retry_delay_ms, c->opts.retry_max_delay_ms,
                           c->opts.retry_jitter_pct, &c->rng);
    if (hint >= 0 && (op->push || op->e->n > 1) && hint + 1 < ms)
        ms = hint + 1; /* the holder's lease ends first */
    if (op->push && ms > slice)
        ms = slice;
    if (op->mode == DL_AM_DEADLINE && ms > dl_acq_ms_until(op->deadline_us))
        ms = dl_acq_ms_until(op->deadline_us);
    return ms < 1 ? 1 : ms;
}

int64_t dl_acq_queue_wait_ms(const dl_aop *op) {
    return SLICE_MAX_MS + op->e->c->opts.command_timeout_ms + QUEUE_MARGIN_MS;
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
        op->dirty = 1; /* we may hold it: clean up */
        op->steps->failed(op, rc, op->x.code);
    } else if (yes) {
        op->start_us = op->sent_us;
        op->steps->deliver(op);
    } else if (dl_acq_will_wait(op)) {
        /* Handed over (a kind: admitted), but gone before use (this
         * process was paused): it went on to the next waiter. Wait on. */
        op->steps->attempt(op);
    } else {
        op->steps->busy_end(op);
    }
}

/* A hand-over or grant after a long wait has eaten into the lease: the
 * REFRESH step (the kind's EXTEND) restarts it, so the caller gets most
 * of its ttl. */
void dl_acq_held(dl_aop *op, int64_t start_us) {
    op->start_us = start_us;
    if (dl_mono_us() - start_us <= op->ttl_ms * 500) {
        op->steps->deliver(op);
        return;
    }
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    op->phase = DL_PH_REFRESH;
    int rc = op->steps->send(op, DL_PH_REFRESH, 2, args, lens, dl_extend_decided, on_refresh);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        op->steps->failed(op, rc, 0);
    }
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

int dl_acq_unsafe(dl_aop *op, const dl_call *call, int granted, int unknown) {
    if (!dl_engine_unsafe(op->e, &op->x, call))
        return 0;
    op->dirty = granted;     /* given back, not retried: it cannot pass */
    op->unknown_now = unknown;
    dl_acq_end_with(op, DLOCK_ENOTSUP);
    return 1;
}

int dl_acq_refused(dl_aop *op) {
    if (!op->contended) {
        op->contended = 1;
        dl_emit(&op->e->c->ctx, DLOCK_EV_CONTENDED, op->name, DLOCK_EBUSY, 0, 0, op->attempts);
    }
    if (dl_acq_will_wait(op))
        return 0;
    if (op->enqueued)
        dl_acq_leave(op);
    else
        op->steps->busy_end(op);
    return 1;
}

void dl_acq_leave(dl_aop *op) {
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    op->phase = DL_PH_LEAVE;
    int rc = op->steps->send(op, DL_PH_LEAVE, 2, args, lens, NULL, op->steps->left);
    if (rc != DLOCK_OK)
        dl_acq_end_with(op, rc);
}

void dl_acq_left_unknown(dl_aop *op, const dl_call *call) {
    char why[200];
    dl_call_error(&op->x, call, "leave the wait queue");
    snprintf(why, sizeof why, "%s", op->x.err);
    dl_acq_cleanup(op->e, op); /* try once more, in the background */
    dl_acq_finish(op, dl_seterr(&op->x, DLOCK_EUNKNOWN, "%s: a lease may exist for %" PRId64 " ms",
                                why, op->ttl_ms));
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

/* keepalive_async.c - keepalive of locks acquired through the engine: a
 * timer per lock, no thread. Each due lock sends one EXTEND on the
 * engine's pipes, so the extensions of many locks due together go out
 * pipelined in one write per server. As in keepalive.c: the lease renewed
 * is the ttl at start; a failed extension is retried sooner until the
 * validity runs out; a lost lock is marked not held and its on_lost runs
 * once, from dlock_client_process, with nothing mid-update. */
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "kinds.h"

/* The lock is gone (status says why): tell the owner from the done queue. */
static void lose(dl_eka *k, int status) {
    dl_engine *e = k->e;
    dlock_lock *l = k->l;
    dlock_lost_fn fn = k->on_lost;
    void *ud = k->ud;
    atomic_store(&l->lost, 1);
    if (status != DLOCK_EMAXHOLD) /* at the hold limit the lease runs out by itself */
        atomic_store(&l->valid_until_us, 0);
    dl_emit(&e->c->ctx, DLOCK_EV_LOST, l->name, status, l->fence, 0, 0);
    dl_eka_stop(k);
    if (fn == NULL)
        return;
    dl_aop *op = dl_aop_new(e, DL_AOP_LOST, NULL, ud);
    if (op == NULL)
        return;
    op->on_lost = fn;
    op->lock = l;
    dl_aop_finish(op, status);
}

/* The earlier of `at` and the hold limit (opts.max_hold_ms), so the limit
 * is reported when it is reached, not at the next extension. */
static int64_t next_fire(const dl_eka *k, int64_t at) {
    int64_t max = k->e->c->opts.max_hold_ms;
    int64_t end = max > 0 ? k->l->acquired_us + max * 1000 : 0;
    return end > 0 && end < at ? end : at;
}

/* The extension and (opts.replicas) its gate have both answered: count
 * the first (a yes counts only if the gate passed: gate.c). */
static void on_extended(dl_fan *unused, void *arg) {
    dl_eka *k = arg;
    dl_engine *e = k->e;
    dlock_lock *l = k->l;
    (void)unused;
    if (!k->fan->completed || (k->gfan != NULL && !k->gfan->completed))
        return; /* the other one is still out */
    dl_fan *f = k->fan;
    int gated = dl_gate_extension_on(e) && !dl_gate_extension_ok(e, k->gfan);
    int yes = 0, no = 0;
    for (int i = 0; i < f->call.n; i++) {
        const redisReply *r = f->call.replies[i];
        if (f->call.status[i] != DLOCK_OK || r->type != REDIS_REPLY_INTEGER)
            continue;
        r->integer == 1 ? yes++ : no++;
    }
    int64_t now = dl_mono_us();
    if (yes >= f->call.quorum && gated)
        yes = 0; /* extended on a master its replicas did not follow: no answer */
    if (yes >= f->call.quorum) {
        int64_t until = dl_valid_until_us(k->sent_us, k->ttl_sent, e->c->opts.drift_factor);
        if (!atomic_load(&l->lost) && now < until) {
            atomic_store(&l->valid_until_us, until);
            dl_emit(&e->c->ctx, DLOCK_EV_EXTENDED, l->name, DLOCK_OK, l->fence, 0, 0);
        }
        dl_heap_arm(&e->heap, &k->timer, next_fire(k, now + k->interval_ms * 1000));
    } else if (no >= f->call.quorum) {
        lose(k, DLOCK_ENOTHELD);
    } else {
        /* No answer: try again soon, until the validity runs out. */
        int64_t retry = k->interval_ms * 250;
        if (retry < 50000)
            retry = 50000;
        int64_t vu = atomic_load(&l->valid_until_us);
        dl_heap_arm(&e->heap, &k->timer, now + retry < vu ? now + retry : vu);
    }
}

static void eka_fire(dl_timer *t) {
    dl_eka *k = (dl_eka *)t;
    dl_engine *e = k->e;
    dlock_lock *l = k->l;
    int64_t now = dl_mono_us();
    if (!dl_lock_valid(l, now)) {
        /* No extension confirmed in time: DLOCK_ETIMEDOUT, as the
         * keepalive thread of blocking locks says (keepalive.c). */
        lose(k, atomic_load(&l->released) ? DLOCK_ENOTHELD : DLOCK_ETIMEDOUT);
        return;
    }
    if (dl_hold_over(l, now)) {
        lose(k, DLOCK_EMAXHOLD); /* opts.max_hold_ms: no more extensions */
        return;
    }
    if ((k->fan != NULL && !k->fan->completed) || (k->gfan != NULL && !k->gfan->completed)) {
        /* The last extension is still unanswered: check again at the
         * validity end (the pipe's own deadline fails it before that). */
        dl_heap_arm(&e->heap, &k->timer, atomic_load(&l->valid_until_us));
        return;
    }
    char ttl_s[24];
    size_t tl = dl_fmt_i64(ttl_s, k->ttl_sent);
    const char *args[2] = {l->token, ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, tl};
    const char *argv[DL_REQ_MAX_ARGV];
    size_t alens[DL_REQ_MAX_ARGV];
    dl_req req;
    dl_keyset_req(&e->c->proto, k->sc->extend, &k->keys, 2, args, lens, argv, alens, &req);
    int64_t deadline = now + (int64_t)e->c->opts.command_timeout_ms * 1000;
    int64_t vu = atomic_load(&l->valid_until_us);
    int rc;
    dl_fan_put(k->fan);
    dl_fan_put(k->gfan);
    k->gfan = NULL;
    k->sent_us = now;
    k->fan = dl_engine_fan(e, &req, deadline, dl_extend_decided, on_extended, k, &rc);
    if (k->fan == NULL || k->fan->completed) {
        /* Could not even send: try again shortly. */
        dl_heap_arm(&e->heap, &k->timer, now + 50000 < vu ? now + 50000 : vu);
        return;
    }
    if (dl_gate_extension_on(e)) {
        k->gfan = dl_gate_extension(e, &k->keys, on_extended, k);
        if (k->gfan != NULL && k->gfan->completed) { /* not sent: this one does not count */
            dl_fan_put(k->gfan);
            k->gfan = NULL;
        }
    }
}

int dl_eka_start(dl_engine *e, dlock_lock *l, int64_t interval_ms, dlock_lost_fn on_lost,
                 void *ud) {
    dl_eka *k = calloc(1, sizeof *k);
    if (k == NULL)
        return DLOCK_ENOMEM;
    if (dl_lock_keys(l, &k->keys, &k->sc) != DLOCK_OK) {
        free(k);
        return DLOCK_ENOMEM;
    }
    dl_timer_init(&k->timer, eka_fire);
    k->e = e;
    k->l = l;
    k->interval_ms = interval_ms;
    k->on_lost = on_lost;
    k->ud = ud;
    k->ttl_sent = atomic_load(&l->ttl_ms);
    if (dl_heap_arm(&e->heap, &k->timer, next_fire(k, dl_mono_us() + interval_ms * 1000)) != 0) {
        dl_keyset_free(&k->keys);
        free(k);
        return DLOCK_ENOMEM;
    }
    k->next = e->kas;
    if (e->kas != NULL)
        e->kas->prev = k;
    e->kas = k;
    e->nkas++;
    l->eka = k;
    dl_engine_kick(e);
    return DLOCK_OK;
}

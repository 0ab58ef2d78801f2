/* handle_async.c - release, extend and inspect as engine operations:
 * one fan-out each, read with the same functions as the blocking calls.
 * Release and extend work on a handle of any kind (kinds.h) but a
 * multi-lock over several hash slots (multi.c releases its parts): each
 * kind says its keys and scripts. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "kinds.h"

static void on_released(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dlock_lock *l = op->lock;
    dlock_client *c = op->e->c;
    int released = 0;
    int rc = dl_release_read(&op->x, &f->call, &released);
    /* A multi-lock's script answers how many of its names it released. */
    int64_t names = released && l->nnames > 1 ? dl_reply_int(f->call.replies[0], 0) : 0;
    atomic_store(&l->valid_until_us, 0);
    if (rc != DLOCK_OK) {
        /* The release may have run: stop claiming the lease. */
        dl_emit(&c->ctx, DLOCK_EV_ERROR, l->name, rc, l->fence, 0, 0);
    } else if (!released || (l->nnames > 1 && names < l->nnames)) {
        atomic_store(&l->released, 1);
        atomic_store(&l->lost, 1);
        dl_emit(&c->ctx, DLOCK_EV_LOST, l->name, DLOCK_ENOTHELD, l->fence, 0, 0);
        if (released)
            rc = dl_seterr(&op->x, DLOCK_ENOTHELD,
                           "only %" PRId64 " of the %d names of multi-lock '%s' were still "
                           "held by this handle (those were released)",
                           names, l->nnames, l->name);
        else
            rc = dl_seterr(&op->x, DLOCK_ENOTHELD,
                           "lock '%s' was no longer held by this handle (expired or taken)",
                           l->name);
    } else {
        atomic_store(&l->released, 1);
        dl_emit(&c->ctx, DLOCK_EV_RELEASED, l->name, DLOCK_OK, l->fence, 0, 0);
    }
    dl_aop_finish(op, rc);
}

/* The extension's outcome: rc and ok (it was the holder) from the
 * EXTEND, after the replica gate when there is one. */
static void extended(dl_aop *op, int rc, int ok) {
    dlock_lock *l = op->lock;
    dlock_client *c = op->e->c;
    int64_t until = dl_valid_until_us(op->sent_us, op->ttl_ms, c->opts.drift_factor);
    if (rc == DLOCK_OK && ok && dl_mono_us() >= until)
        ok = 0; /* took longer than the lease itself */
    if (rc != DLOCK_OK) {
        /* It may have run: a shorter ttl may have cut the lease. */
        if (until < atomic_load(&l->valid_until_us))
            atomic_store(&l->valid_until_us, until);
        dl_emit(&c->ctx, DLOCK_EV_ERROR, l->name, rc, l->fence, 0, 0);
    } else if (!ok) {
        atomic_store(&l->lost, 1);
        atomic_store(&l->valid_until_us, 0);
        dl_emit(&c->ctx, DLOCK_EV_LOST, l->name, DLOCK_ENOTHELD, l->fence, 0, 0);
        rc = dl_seterr(&op->x, DLOCK_ENOTHELD, "lock '%s' is no longer held by this handle",
                       l->name);
    } else {
        atomic_store(&l->ttl_ms, op->ttl_ms);
        atomic_store(&l->valid_until_us, until);
        dl_emit(&c->ctx, DLOCK_EV_EXTENDED, l->name, DLOCK_OK, l->fence, 0, 0);
    }
    atomic_store(&l->user_ext, 0);
    dl_aop_finish(op, rc);
}

/* The replica gate's WAIT answered (gate.c): the extension counts only
 * with enough replicas; else it ran on the master alone (DLOCK_ENOREPLICAS,
 * or the WAIT's own failure: the validity is not extended, only cut if the
 * new ttl is shorter). */
static void on_ext_gated(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    int64_t acked;
    int rc = dl_gate_acked(op, f, &acked);
    if (rc == DLOCK_OK && acked >= op->e->c->opts.replicas) {
        extended(op, DLOCK_OK, 1);
        return;
    }
    if (rc == DLOCK_OK)
        rc = dl_seterr(&op->x, DLOCK_ENOREPLICAS,
                       "lock '%s': only %" PRId64 " of %d replicas acknowledged the extension "
                       "within %" PRId64 " ms (replicas option): it does not count",
                       op->lock->name, acked < 0 ? 0 : acked, op->e->c->opts.replicas,
                       op->gate_ms);
    extended(op, rc, 0);
}

static void on_extended(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    int ok = 0;
    int rc = dl_extend_read(&op->x, &f->call, &ok);
    if (rc == DLOCK_OK && ok && dl_gate_extension_on(op->e)) {
        /* WAIT on the lock's route, after the EXTEND on that connection. */
        const dl_keyset *ks = op->kx;
        op->keys.k[0] = ks->k[0]; /* not op's to free: has_keys stays 0 */
        op->keys.len[0] = ks->len[0];
        rc = dl_gate_send(op, on_ext_gated);
        if (rc == DLOCK_OK)
            return;
        ok = 0;
    }
    extended(op, rc, ok);
}

static void on_inspected(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dl_aop_finish(op, dl_inspect_read(&op->x, &f->call, &op->holder));
}

/* A new op on `name` (len bytes, checked) in engine e. */
static int new_op(dl_engine *e, int kind, const char *name, size_t len, dlock_done_fn cb,
                  void *ud, dl_aop **out) {
    dl_aop *op = dl_aop_new(e, kind, cb, ud);
    if (op == NULL || dl_aop_name(op, name, len) != DLOCK_OK) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&e->c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    *out = op;
    return DLOCK_OK;
}

/* The keys live in the op's own allocation: only what they took is freed. */
static void free_keyset(dl_aop *op) { dl_keyset_free(op->kx); }

/* A new op on handle l in engine e, with l's keys (any kind). */
static int handle_op(dl_engine *e, int kind, dlock_lock *l, dlock_done_fn cb, void *ud,
                     const dl_kscripts **sc, dl_aop **out) {
    dl_aop *op = dl_aop_new_with(e, kind, cb, ud, sizeof(dl_keyset));
    dl_keyset *ks = op != NULL ? op->extra : NULL;
    if (ks != NULL) {
        op->kx = ks;
        op->on_free = free_keyset;
    }
    if (ks == NULL || dl_lock_keys(l, ks, sc) != DLOCK_OK) {
        if (op != NULL)
            dl_aop_discard(op);
        return dl_seterr(&e->c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    op->lock = l;
    *out = op;
    return DLOCK_OK;
}

/* Send and hand the op to the engine; a send that fails at once still
 * reports through the callback (as every started op does). */
static int launch(dl_aop *op, int rc, uint64_t *id) {
    if (id != NULL)
        *id = op->id;
    if (rc != DLOCK_OK)
        dl_aop_finish(op, rc);
    dl_engine_kick(op->e);
    return DLOCK_OK;
}

int dl_release_start(dl_engine *e, dlock_lock *l, dlock_done_fn cb, void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    if (atomic_load(&l->released))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' was already released", l->name);
    dl_aop *op = NULL;
    const dl_kscripts *sc;
    int rc = handle_op(e, DL_AOP_RELEASE, l, cb, ud, &sc, &op);
    if (rc != DLOCK_OK)
        return rc;
    dlock_keepalive_stop(l);
    const char *args[1] = {l->token};
    size_t lens[1] = {DL_TOKEN_HEX};
    rc = dl_aop_kscript(op, sc->release, op->kx, 1, args, lens, dl_release_decided, on_released);
    return launch(op, rc, id);
}

int dl_extend_start(dl_engine *e, dlock_lock *l, int64_t ttl_ms, dlock_done_fn cb, void *ud,
                    uint64_t *id) {
    dlock_client *c = e->c;
    int rc = dl_check_ttl(c, ttl_ms);
    if (rc != DLOCK_OK)
        return rc;
    if (dl_hold_over(l, dl_mono_us()))
        return dl_seterr(&c->ctx, DLOCK_EMAXHOLD,
                         "lock '%s' has been held for max_hold_ms (%" PRId64 " ms)", l->name,
                         c->opts.max_hold_ms);
    if (atomic_load(&l->released) || atomic_load(&l->lost))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held", l->name);
    dl_aop *op = NULL;
    const dl_kscripts *sc;
    rc = handle_op(e, DL_AOP_EXTEND, l, cb, ud, &sc, &op);
    if (rc != DLOCK_OK)
        return rc;
    /* A thread keepalive must not extend alongside (engine keepalive
     * requests share our pipes, so the server sees them in order). */
    atomic_store(&l->user_ext, 1);
    if (l->eng == NULL)
        dl_keepalive_quiesce(l);
    op->ttl_ms = ttl_ms;
    op->ttl_len = dl_fmt_i64(op->ttl_s, ttl_ms);
    const char *args[2] = {l->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    rc = dl_aop_kscript(op, sc->extend, op->kx, 2, args, lens, dl_extend_decided, on_extended);
    if (rc != DLOCK_OK)
        atomic_store(&l->user_ext, 0);
    return launch(op, rc, id);
}

int dl_inspect_start(dl_engine *e, const char *name, size_t len, dlock_done_fn cb, void *ud,
                     uint64_t *id) {
    dl_aop *op = NULL;
    int rc = new_op(e, DL_AOP_INSPECT, name, len, cb, ud, &op);
    if (rc != DLOCK_OK)
        return rc;
    rc = dl_aop_script(op, DL_S_INSPECT, 0, NULL, NULL, dl_inspect_decided, on_inspected);
    return launch(op, rc, id);
}

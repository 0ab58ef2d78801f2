/* cleanup_async.c - the clean-up op of an acquire of any kind
 * (DL_AOP_CLEANUP): leave the wait queue with the kind's CANCEL, then
 * release by token with its RELEASE, for a token the acquire gives up on
 * (cancelled, failed, timed out, or an attempt of unknown outcome), both
 * within one connect and one command timeout.
 * Pipelined behind the acquire's own requests on each connection, so it
 * also undoes a request still on its way. The acquire that waits for it
 * (op->parent) is told through its on_cleaned. */
#include <string.h>

#include "clock.h"
#include "kinds.h"

/* A clean-up that found no server is tried again, a few times over about
 * the life of a queue entry: an abandoned entry at the head of the queue
 * would keep a free lock idle (no barging) until it expired, and a
 * multi-lock's every name of its set. */
#define CLEANUP_TRIES 6
#define CLEANUP_RETRY_MS 400

/* The keys and scripts of what is cleaned up (op->kx). */
typedef struct cst {
    dl_keyset ks;
    const dl_kscripts *sc;
} cst;

static int cleanup_start(dl_aop *op);

static void cleanup_retry(dl_timer *t) { cleanup_start((dl_aop *)t); }

static void cst_free(dl_aop *op) {
    cst *k = op->kx;
    if (k != NULL)
        dl_keyset_free(&k->ks);
    free(k);
}

/* Returns 1 while op lives on (a retry is due), 0 once it is finished. */
static int cleanup_end(dl_aop *op) {
    dl_aop *parent = op->parent;
    int failed_too = op->cleanup_failed;
    if (parent != NULL) { /* it waited for the first outcome: tell it */
        parent->child = NULL;
        op->parent = NULL;
        parent->on_cleaned(parent, failed_too);
    }
    if (failed_too && ++op->attempts < CLEANUP_TRIES) {
        op->cleanup_failed = 0;
        op->timer.fire = cleanup_retry;
        if (dl_heap_arm(&op->e->heap, &op->timer, dl_mono_us() + CLEANUP_RETRY_MS * 1000) == 0)
            return 1;
    }
    dl_aop_finish(op, failed_too ? DLOCK_EIO : DLOCK_OK);
    return 0;
}

/* Whether a clean-up step failed where it matters: on one server, there;
 * on a Redlock set, on a server the token may hold something on (op->maybe:
 * a server that refused the connection when asked, and was never reached,
 * holds nothing of it). Without that knowledge, as any call: a majority. */
static int step_failed(dl_aop *op, const dl_call *call) {
    int rc = dl_call_error(&op->x, call, "clean-up");
    if (op->e->n == 1 || op->maybe == 0)
        return rc != DLOCK_OK;
    for (int i = 0; i < call->n; i++)
        if ((op->maybe >> i & 1u) && call->status[i] != DLOCK_OK)
            return 1;
    return 0;
}

static void cleanup_released(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    op->cleanup_failed |= step_failed(op, &f->call);
    cleanup_end(op);
}

static void cleanup_left(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    cst *k = op->kx;
    op->cleanup_failed |= step_failed(op, &f->call);
    if (op->leave_only) { /* the lock is kept: only its queue entries go */
        cleanup_end(op);
        return;
    }
    if (dl_mono_us() >= op->cap_us) { /* no time left for the release: retry later */
        op->cleanup_failed = 1;
        cleanup_end(op);
        return;
    }
    const char *args[1] = {op->token};
    size_t lens[1] = {DL_TOKEN_HEX};
    if (dl_aop_kscript(op, k->sc->release, &k->ks, 1, args, lens, NULL, cleanup_released) !=
        DLOCK_OK) {
        op->cleanup_failed = 1;
        cleanup_end(op);
    }
}

/* Leave the queue and release by token what `from`'s current token may
 * hold, in a clean-up op of its own (pipelined behind from's requests, so
 * it also undoes a request still on its way). Returns the op (NULL if it
 * could not be started: the queue entry and any lease then end by their
 * own expiry). */
dl_aop *dl_acq_cleanup(dl_engine *e, const dl_aop *from) {
    dl_kreq mutex = {.kind = DL_LK_MUTEX, .n = 1,
                     .names = (const char *const *)&from->name, .lens = &from->name_len};
    const dl_kreq *r = from->req != NULL ? from->req : &mutex;
    dl_aop *op = dl_aop_new(e, DL_AOP_CLEANUP, NULL, NULL);
    cst *k = op != NULL ? calloc(1, sizeof *k) : NULL;
    if (k == NULL) {
        if (op != NULL)
            dl_aop_discard(op);
        return NULL;
    }
    op->kx = k;
    op->on_free = cst_free;
    k->sc = dl_kind_scripts(r->kind);
    if (dl_kreq_keys(&e->c->proto, r, &k->ks) != DLOCK_OK ||
        (op->name = strdup(from->name)) == NULL) {
        dl_aop_discard(op);
        return NULL;
    }
    op->name_len = from->name_len;
    memcpy(op->token, from->token, sizeof op->token);
    /* A request still in flight may reach any server. */
    op->maybe = from->fan != NULL && !from->fan->completed ? ~0u : from->maybe;
    memcpy(op->ttl_s, from->ttl_s, sizeof op->ttl_s);
    op->ttl_len = from->ttl_len;
    return cleanup_start(op) ? op : NULL;
}

/* Send the clean-up's first step. 1 while op lives on, 0 once finished.
 * Both steps share one budget of a connect and a command timeout (the
 * bound dlock.h gives a clean-up by token), not one each. */
static int cleanup_start(dl_aop *op) {
    cst *k = op->kx;
    const dlock_options *o = &op->e->c->opts;
    op->cap_us = dl_mono_us() + ((int64_t)o->connect_timeout_ms + o->command_timeout_ms) * 1000;
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    if (dl_aop_kscript(op, k->sc->cancel, &k->ks, 2, args, lens, NULL, cleanup_left) !=
        DLOCK_OK) {
        op->cleanup_failed = 1;
        return cleanup_end(op);
    }
    return 1;
}

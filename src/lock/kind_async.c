/* kind_async.c - acquiring a semaphore permit, a read-write lock, or the
 * names of one hash slot of a multi-lock, as a state machine driven by the
 * engine. The protocol is the mutex's (acquire_async.c), on the scripts of
 * kinds.lua.h, one server at a time (one server, Sentinel, Cluster):
 *   ATTEMPT   the kind's ACQUIRE (queued as a waiter when the op will wait
 *             and waiting is push);
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
 * (dl_kcleanup, below) leaves the queue and releases by token. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "kinds.h"
#include "resp.h"

enum { PH_SUBWAIT = 1, PH_ATTEMPT, PH_WAIT, PH_NAP, PH_LEAVE, PH_REFRESH, PH_REPLICAS,
       PH_CLEANUP };

#define SLICE_MAX_MS 2000 /* longest wait between attempts while queued */
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
    dl_kcleaned_fn done; /* a clean-up op: whom to tell */
    int woken;           /* a wake-up came while an attempt was in flight */
} kst;

static void attempt(dl_aop *op);
static void finish(dl_aop *op, int rc);

static dlock_client *cli(const dl_aop *op) { return op->e->c; }
static kst *K(const dl_aop *op) { return op->kx; }

static void arm_cap(dl_aop *op) {
    if (op->x.cap_us > 0 && op->fan != NULL && !op->finished)
        dl_aop_timer(op, op->x.cap_us);
}

static int will_wait(const dl_aop *op) {
    if (op->mode == DL_AM_RETRY)
        return op->attempts <= cli(op)->opts.retry_count;
    return op->mode == DL_AM_DEADLINE && dl_mono_us() < op->deadline_us;
}

static int64_t ms_until(int64_t until_us) {
    int64_t d = until_us - dl_mono_us();
    return d <= 0 ? 0 : (d + 999) / 1000;
}

static int64_t backoff(dl_aop *op, int64_t base, int64_t max) {
    dlock_client *c = cli(op);
    return dl_backoff_ms(op->attempts, base, max, c->opts.retry_jitter_pct, &c->rng);
}

/* How long to wait before the next attempt (the mutex's rule). */
static int64_t sleep_ms(dl_aop *op, int64_t hint) {
    dlock_client *c = cli(op);
    int64_t ms = op->push && op->mode != DL_AM_RETRY
                     ? SLICE_MAX_MS
                     : backoff(op, c->opts.retry_delay_ms, c->opts.retry_max_delay_ms);
    if (hint >= 0 && op->push && hint + 1 < ms)
        ms = hint + 1; /* the first lease ends first */
    if (op->push && ms > SLICE_MAX_MS)
        ms = SLICE_MAX_MS;
    if (op->mode == DL_AM_DEADLINE && ms > ms_until(op->deadline_us))
        ms = ms_until(op->deadline_us);
    return ms < 1 ? 1 : ms;
}

/* Send the kind's script `id` with args on the op's keys. */
static int send(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                const size_t *lens, dl_fan_done_fn done) {
    int rc = dl_aop_kscript(op, id, &K(op)->ks, nargs, args, lens, NULL, done);
    if (rc == DLOCK_OK)
        arm_cap(op);
    return rc;
}

/* An ACQUIRE or CANCEL reply: {1, fence...} (1, fences read), {0, hint,
 * waiters} (0, *hint), anything else -1. */
static int read_grant(dl_aop *op, const redisReply *r, int64_t *hint) {
    const redisReply *e0 = dl_elem(r, 0);
    if (e0 == NULL || e0->type != REDIS_REPLY_INTEGER)
        return -1;
    kst *k = K(op);
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
    k->sc = dl_kind_scripts(r->kind);
    k->want_len = dl_kreq_want(r, k->want, sizeof k->want);
    op->name = strdup(k->names[0]);
    op->name_len = k->lens[0];
    if (op->name == NULL)
        return DLOCK_ENOMEM;
    return dl_kreq_keys(&op->e->c->proto, &k->r, &k->ks) == DLOCK_OK ? DLOCK_OK : DLOCK_ENOMEM;
}

/* ---- the clean-up op: leave the queue, then release by token ---- */

static void cleanup_end(dl_aop *op) {
    dl_aop *parent = op->parent;
    int failed_too = op->cleanup_failed;
    dl_kcleaned_fn done = K(op)->done;
    dl_aop_finish(op, failed_too ? DLOCK_EIO : DLOCK_OK); /* unlinks the parent */
    if (parent != NULL && done != NULL)
        done(parent, failed_too);
}

static void cleanup_released(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    op->cleanup_failed |= dl_call_error(&op->x, &f->call, "clean-up") != DLOCK_OK;
    cleanup_end(op);
}

static void cleanup_left(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    op->cleanup_failed |= dl_call_error(&op->x, &f->call, "clean-up") != DLOCK_OK;
    const char *args[1] = {op->token};
    size_t lens[1] = {DL_TOKEN_HEX};
    if (dl_aop_kscript(op, K(op)->sc->release, &K(op)->ks, 1, args, lens, NULL,
                       cleanup_released) != DLOCK_OK) {
        op->cleanup_failed = 1;
        cleanup_end(op);
    }
}

dl_aop *dl_kcleanup(dl_engine *e, const dl_kreq *r, const char *token, int64_t ttl_ms,
                    dl_kcleaned_fn done) {
    dl_aop *op = dl_aop_new(e, DL_AOP_CLEANUP, NULL, NULL);
    if (op == NULL || kst_make(op, r) != DLOCK_OK) {
        if (op != NULL)
            dl_aop_discard(op);
        return NULL;
    }
    K(op)->done = done;
    memcpy(op->token, token, sizeof op->token);
    op->ttl_len = dl_fmt_i64(op->ttl_s, ttl_ms);
    const char *args[2] = {op->token, op->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, op->ttl_len};
    if (dl_aop_kscript(op, K(op)->sc->cancel, &K(op)->ks, 2, args, lens, NULL, cleanup_left) !=
        DLOCK_OK) {
        dl_aop_finish(op, DLOCK_EIO);
        return NULL;
    }
    return op;
}

/* ---- endings ---- */

static void finish(dl_aop *op, int rc) {
    dlock_client *c = cli(op);
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

static void cleaned(dl_aop *op, int failed_too);

static dl_aop *cleanup(dl_aop *op) {
    return dl_kcleanup(op->e, &K(op)->r, op->token, op->ttl_ms, cleaned);
}

/* The awaited clean-up ended: end with the status we were waiting to end
 * with; if the request of unknown outcome could not be undone either, the
 * outcome stays unknown. */
static void cleaned(dl_aop *op, int failed_too) {
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
    finish(op, rc);
}

/* Leave no trace of the current token, and go on with a fresh one (the
 * clean-up runs in the background). */
static int abandon_token(dl_aop *op) {
    cleanup(op);
    op->unknown_open |= op->unknown_now;
    op->enqueued = op->dirty = op->unknown_now = 0;
    if (dl_pool_token(&cli(op)->pool, op->token) != 0)
        return dl_seterr(&op->x, DLOCK_EIO, "getrandom failed");
    return DLOCK_OK;
}

/* End with rc, first undoing what the current token may have left (a
 * queue entry, a grant, a request of unknown outcome): the caller learns
 * of the failure once nothing of it remains, or that it may. The wait for
 * the clean-up is cut at the cap. */
static void end_with(dl_aop *op, int rc) {
    dl_aop *child = op->enqueued || op->dirty || op->unknown_now ? cleanup(op) : NULL;
    if (child == NULL) {
        finish(op, rc);
        return;
    }
    child->parent = op;
    op->child = child;
    op->pending_rc = rc;
    op->phase = PH_CLEANUP;
    if (op->x.cap_us > 0)
        dl_aop_timer(op, op->x.cap_us);
    else
        dl_heap_disarm(&op->e->heap, &op->timer);
}

static void give_up(dl_aop *op) {
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->attempts > 0)
        cleanup(op);
    dl_seterr(&op->x, DLOCK_ECANCELED, "acquire of '%s' cancelled", op->name);
    dl_aop_finish(op, DLOCK_ECANCELED);
}

static void busy_end(dl_aop *op) {
    if (op->is_wait) {
        dl_seterr(&op->x, DLOCK_ETIMEDOUT, "lock '%s' still held after %" PRId64 " ms",
                  op->name, op->timeout_ms);
        end_with(op, DLOCK_ETIMEDOUT);
    } else {
        dl_seterr(&op->x, DLOCK_EBUSY, "lock '%s' is held by other owners", op->name);
        end_with(op, DLOCK_EBUSY);
    }
}

static int transient(int rc, int code) {
    if (rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN)
        return 1;
    return rc == DLOCK_ESERVER && dl_srv_code_transient(code);
}

/* A failed step: retry after a backoff (fresh token) while the caller
 * waits and the failure may pass; else end with it. */
static void failed(dl_aop *op, int rc, int code) {
    if (!transient(rc, code) || !will_wait(op)) {
        end_with(op, rc);
        return;
    }
    if ((op->enqueued || op->dirty || op->unknown_now) && abandon_token(op) != DLOCK_OK) {
        finish(op, DLOCK_EIO);
        return;
    }
    dlock_client *c = cli(op);
    int64_t nap = op->mode == DL_AM_RETRY
                      ? backoff(op, c->opts.retry_delay_ms, c->opts.retry_max_delay_ms)
                      : backoff(op, 50, 1000);
    if (op->mode == DL_AM_DEADLINE && nap > ms_until(op->deadline_us))
        nap = ms_until(op->deadline_us);
    op->phase = PH_NAP;
    dl_aop_timer(op, dl_mono_us() + nap * 1000);
}

/* ---- the lock is ours ---- */

static void make_lock(dl_aop *op) {
    dlock_client *c = cli(op);
    kst *k = K(op);
    dlock_lock *l = dl_klock_new(c, &k->r, op->ttl_ms, op->start_us);
    if (l == NULL) {
        op->dirty = 1;
        end_with(op, dl_seterr(&op->x, DLOCK_ENOMEM, "out of memory"));
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
        give_up(op);
        return;
    }
    int rc = dl_call_error(&op->x, &f->call, "wait for replicas");
    int64_t acked = rc == DLOCK_OK ? dl_reply_int(f->call.replies[0], -1) : 0;
    if (rc == DLOCK_OK && acked < want)
        rc = dl_seterr(&op->x, DLOCK_EBUSY,
                       "only %" PRId64 " of %d replicas acknowledged the lock", acked, want);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        end_with(op, rc);
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
    op->phase = PH_REPLICAS;
    int rc = dl_aop_command(op, 3, argv, lens, deadline, on_replicas);
    if (rc != DLOCK_OK) {
        op->dirty = 1;
        end_with(op, rc);
    } else {
        arm_cap(op);
    }
}

static void on_refresh(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        give_up(op);
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
    } else if (will_wait(op)) {
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
    op->phase = PH_REFRESH;
    int rc = send(op, K(op)->sc->extend, 2, args, lens, on_refresh);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
}

/* ---- waiting ---- */

static void on_left(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    if (op->cancelled) {
        give_up(op);
        return;
    }
    op->enqueued = 0;
    int64_t hint;
    int g = f->call.status[0] == DLOCK_OK ? read_grant(op, f->call.replies[0], &hint) : -1;
    if (g < 0) {
        char why[200];
        dl_call_error(&op->x, &f->call, "leave the wait queue");
        snprintf(why, sizeof why, "%s", op->x.err);
        cleanup(op); /* try once more, in the background */
        finish(op, dl_seterr(&op->x, DLOCK_EUNKNOWN, "%s: a lease may exist for %" PRId64 " ms",
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
    op->phase = PH_LEAVE;
    int rc = send(op, K(op)->sc->cancel, 2, args, lens, on_left);
    if (rc != DLOCK_OK)
        end_with(op, rc);
}

static void busy(dl_aop *op, int64_t hint) {
    if (!op->contended) {
        op->contended = 1;
        dl_emit(&cli(op)->ctx, DLOCK_EV_CONTENDED, op->name, DLOCK_EBUSY, 0, 0, op->attempts);
    }
    if (!will_wait(op)) {
        if (op->enqueued)
            leave(op);
        else
            busy_end(op);
        return;
    }
    if (op->unknown_now && abandon_token(op) != DLOCK_OK) {
        finish(op, DLOCK_EIO);
        return;
    }
    op->busy_us = op->sent_us;
    op->phase = PH_WAIT;
    /* A wake-up that raced the attempt (the grant or hand-over ran after
     * it, its message came before its answer): look again now rather than
     * after a slice. */
    int64_t ms = K(op)->woken ? 0 : sleep_ms(op, hint);
    dl_aop_timer(op, dl_mono_us() + ms * 1000);
}

static void k_woken(dl_aop *op, int64_t fence) {
    if (op->phase == PH_ATTEMPT)
        K(op)->woken = 1; /* its answer may predate the grant: busy() looks again */
    if (op->phase != PH_WAIT || op->cancelled)
        return;
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (K(op)->r.kind == DL_LK_MULTI) {
        attempt(op); /* one name handed over: all of them yet? */
        return;
    }
    /* Admitted after our last attempt found it busy: the lease started no
     * earlier than that attempt was sent. */
    K(op)->fences[0] = fence;
    got(op, op->busy_us);
}

static void k_timer(dl_timer *t) {
    dl_aop *op = (dl_aop *)t;
    if (op->phase == PH_CLEANUP) {
        finish(op, op->pending_rc); /* the cap passed; the clean-up goes on alone */
        return;
    }
    if (op->cancelled) {
        give_up(op);
        return;
    }
    if (op->fan != NULL && !op->fan->completed) {
        /* The cap passed with a request in flight: stop waiting for it. If
         * it went out, the clean-up queued behind it undoes whatever it
         * does. */
        if (!dl_aop_drop_fan(op)) {
            end_with(op, DLOCK_EIO); /* it never went out */
            return;
        }
        abandon_token(op);
        dl_seterr(&op->x, DLOCK_EUNKNOWN,
                  "lock '%s': the deadline passed with no answer to a request in flight (it "
                  "is undone by token in the background): a lease may exist for %" PRId64
                  " ms",
                  op->name, op->ttl_ms);
        dl_aop_finish(op, DLOCK_EUNKNOWN);
        return;
    }
    if (op->phase == PH_WAIT && op->mode == DL_AM_DEADLINE && dl_mono_us() >= op->deadline_us) {
        if (op->enqueued) {
            leave(op);
            return;
        }
        op->mode = DL_AM_TRY; /* one last try at the deadline */
    }
    attempt(op);
}

static void k_subscribed(dl_aop *op) {
    if (op->phase != PH_SUBWAIT)
        return;
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->cancelled)
        give_up(op);
    else
        attempt(op);
}

static void k_cancel(dl_aop *op) {
    op->cancelled = 1;
    if (op->phase == PH_SUBWAIT || op->phase == PH_WAIT || op->phase == PH_NAP)
        give_up(op);
}

/* ---- attempts ---- */

static void on_attempt(dl_fan *f, void *arg) {
    dl_aop *op = arg;
    dl_call *call = &f->call;
    if (op->cancelled) {
        give_up(op);
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
    int enqueue = op->push && will_wait(op);
    char wait_s[24], wall_s[24];
    size_t wl = dl_fmt_i64(wait_s, SLICE_MAX_MS + c->opts.command_timeout_ms + QUEUE_MARGIN_MS);
    size_t al = dl_fmt_i64(wall_s, dl_wall_ms());
    const char *args[9] = {op->token, op->ttl_s, c->meta,     c->opts.fencing ? "1" : "0",
                           enqueue ? "1" : "0",  wait_s,      wall_s, op->e->chan, k->want};
    size_t lens[9] = {DL_TOKEN_HEX, op->ttl_len, c->meta_len, 1, 1, wl, al, op->e->chan_len,
                      k->want_len};
    op->phase = PH_ATTEMPT;
    op->enqueued |= enqueue;
    k->woken = 0;
    int rc = send(op, k->sc->acquire, k->r.kind == DL_LK_MULTI ? 8 : 9, args, lens, on_attempt);
    if (rc != DLOCK_OK)
        failed(op, rc, 0);
}

/* ---- start ---- */

int dl_kacquire_start(dl_engine *e, const dl_kreq *r, int64_t ttl_ms, int mode,
                      int64_t timeout_ms, int is_wait, dlock_done_fn cb, void *ud, uint64_t *id) {
    dlock_client *c = e->c;
    if (e->n > 1)
        return dl_seterr(&c->ctx, DLOCK_ENOTSUP,
                         "semaphores, read-write locks and multi-locks need one server, "
                         "Sentinel or Cluster, not a Redlock set");
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
    if (dl_pool_token(&c->pool, op->token) != 0) {
        dl_aop_discard(op);
        return dl_seterr(&c->ctx, DLOCK_EIO, "getrandom failed");
    }
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
    if (id != NULL)
        *id = op->id;
    if (op->push) {
        dl_engine_subscribe(e, K(op)->ks.k[0], K(op)->ks.len[0]);
        if (e->sub_state == DL_SUB_PENDING) {
            /* Queue once subscribed, so no grant's message is missed; never
             * wait for that longer than a command timeout (or the cap). */
            op->phase = PH_SUBWAIT;
            int64_t at = dl_mono_us() + (int64_t)c->opts.command_timeout_ms * 1000;
            dl_aop_timer(op, op->x.cap_us > 0 && op->x.cap_us < at ? op->x.cap_us : at);
            dl_engine_kick(e);
            return DLOCK_OK;
        }
    }
    attempt(op);
    dl_engine_kick(e);
    return DLOCK_OK;
}

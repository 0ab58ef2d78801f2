/* acquire.c - taking a lock: dlock_acquire, dlock_try_acquire, dlock_wait.
 *
 * Acquiring is one loop (acquire_loop) with three stopping rules: one try,
 * a retry count, or a deadline. Between tries a waiter either sleeps (poll
 * mode, the seed's design) or blocks in BLPOP on its own wake list (push
 * mode): the release script hands the lock straight to the oldest live
 * waiter and pushes the new fence to that list, so a woken waiter holds the
 * lock without another command. No sleep outlasts the holder's lease (the
 * acquire script reports its remaining TTL).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "client.h"
#include "resp.h"

/* Longest single BLPOP of a queued waiter: bounds how long a waiter that
 * died while queued can be handed the lock (and so keep it idle). */
#define DL_SLICE_MAX_MS 2000
/* Extra life of a queue entry beyond the waiter's planned sleep. */
#define DL_QUEUE_MARGIN_MS 100

static int is_redlock(const dlock_client *c) { return c->url.kind == DL_URL_REDLOCK; }

/* A plain command (BLPOP, WAIT) on every target of `key`; on Redlock any
 * majority of answers settles it. */
static int run_argv(dlock_client *c, dl_call *call, const char *key, size_t klen, int argc,
                    const char **argv, const size_t *lens, int64_t deadline_us) {
    dl_req req = {.argc = argc, .argv = argv, .lens = lens, .key = key, .klen = klen};
    return dl_quorum_run(&c->topo, call, &req, deadline_us, dl_decided_majority);
}

/* ---- one acquire attempt over the topology ---- */

typedef struct attempt_ctx {
    dlock_client *c;
    const char *name;
    size_t name_len;
    dl_keys keys;
    char token[DL_TOKEN_HEX + 1];
    char ttl_s[24];
    size_t ttl_len;
    int64_t ttl_ms;
    int enqueued;
    int migrating; /* the last attempt met TRYAGAIN (Cluster) */
} attempt_ctx;

static int64_t ms_until(int64_t until_us) {
    int64_t d = until_us - dl_mono_us();
    return d <= 0 ? 0 : (d + 999) / 1000;
}



/* Release by token on every target, ignoring the outcome (undo). */
static int undo(attempt_ctx *a) {
    dl_call call;
    const char *args[1] = {a->token};
    size_t lens[1] = {DL_TOKEN_HEX};
    if (dl_script_call(&a->c->topo, &a->c->proto, &call, DL_S_RELEASE, &a->keys, 1, args, lens, 0, NULL) != DLOCK_OK)
        return 0;
    int gone = 0;
    for (int i = 0; i < call.n; i++)
        if (call.status[i] == DLOCK_OK)
            gone++;
    return gone == call.n;
}

/* Redlock fencing: write max(counters)+1 to every server that granted the
 * lock; a majority must accept. See docs/REDLOCK.md for the argument. */
static int redlock_fence(attempt_ctx *a, int64_t seen_max, int64_t *fence) {
    dlock_client *c = a->c;
    char cand[24];
    int n = snprintf(cand, sizeof cand, "%" PRId64, seen_max + 1);
    const char *args[2] = {a->token, cand};
    size_t lens[2] = {DL_TOKEN_HEX, (size_t)n};
    dl_call call;
    int rc = dl_script_call(&c->topo, &c->proto, &call, DL_S_FENCE, &a->keys, 2, args, lens, 0,
                            dl_fence_decided);
    if (rc != DLOCK_OK)
        return rc;
    int ok = 0;
    for (int i = 0; i < call.n; i++)
        if (call.status[i] == DLOCK_OK && dl_reply_int(call.replies[i], -1) > seen_max)
            ok++;
    if (ok < call.quorum) {
        dl_call_error(&c->ctx, &call, "fence");
        return dl_seterr(&c->ctx, DLOCK_ENOQUORUM, "fence: only %d of %d servers stored it", ok,
                         call.n);
    }
    *fence = seen_max + 1;
    return DLOCK_OK;
}

/* One attempt. Returns a status; on DLOCK_OK *got says whether the lock is
 * held now (fence, start_us set) or busy (*hint_ms: how long it may stay so). */
static int attempt(attempt_ctx *a, int enqueue, int64_t wait_ms, int *got, int64_t *fence,
                   int64_t *start_us, int64_t *hint_ms) {
    dlock_client *c = a->c;
    char wait_s[24], wall_s[24];
    size_t wl = dl_fmt_i64(wait_s, wait_ms);
    size_t al = dl_fmt_i64(wall_s, dl_wall_ms());
    const char *fencing = !c->opts.fencing ? "0" : is_redlock(c) ? "2" : "1";
    const char *args[7] = {a->token, a->ttl_s, c->meta, fencing, enqueue ? "1" : "0", wait_s,
                           wall_s};
    size_t lens[7] = {DL_TOKEN_HEX, a->ttl_len, c->meta_len, 1, 1, wl, al};
    dl_call call;
    *got = 0;
    *fence = 0;
    *hint_ms = -1;
    a->migrating = 0;
    *start_us = dl_mono_us();
    int rc = dl_script_call(&c->topo, &c->proto, &call, DL_S_ACQUIRE, &a->keys, 7, args, lens, 0,
                              dl_acquire_decided);
    if (rc != DLOCK_OK)
        return rc;

    dl_tally t;
    dl_acquire_tally(&call, &t);
    int granted = t.granted, answered = t.answered, unknown = t.unknown;
    int64_t seen_max = t.seen_max, hint = t.hint;
    int64_t valid_until = dl_valid_until_us(*start_us, a->ttl_ms, c->opts.drift_factor);
    /* Queued only if the script ran (or may have): a script error (e.g.
     * WRONGTYPE) queued nothing, and needs no cancel. */
    if (enqueue && (answered > 0 || unknown))
        a->enqueued = 1;

    if (call.n == 1) {
        if (call.status[0] == DLOCK_ESERVER && call.code[0] == DL_SRV_TRYAGAIN) {
            /* Cluster slot migration in progress: like a busy lock, try
             * again shortly (the script ran nowhere). */
            *hint_ms = 50;
            a->migrating = 1;
            return DLOCK_OK;
        }
        if (call.status[0] != DLOCK_OK) {
            rc = dl_call_error(&c->ctx, &call, "acquire");
            if (call.status[0] == DLOCK_EPROTO)
                rc = DLOCK_EPROTO;
            if (unknown) {
                /* The request may have run: remove any lease by token. */
                char saved[sizeof c->ctx.err];
                memcpy(saved, c->ctx.err, sizeof saved);
                if (!undo(a)) {
                    dl_seterr(&c->ctx, DLOCK_EUNKNOWN,
                              "%s; clean-up by token failed too: a lease may exist for %" PRId64
                              " ms",
                              saved, a->ttl_ms);
                    return DLOCK_EUNKNOWN;
                }
                memcpy(c->ctx.err, saved, sizeof saved);
            }
            return rc;
        }
        if (granted) {
            *got = 1;
            *fence = seen_max;
        } else {
            *hint_ms = hint;
        }
        return DLOCK_OK;
    }

    /* Redlock: a majority within the validity window, else undo everywhere. */
    if (granted >= call.quorum && dl_mono_us() < valid_until) {
        if (c->opts.fencing) {
            rc = redlock_fence(a, seen_max, fence);
            if (rc != DLOCK_OK || dl_mono_us() >= valid_until) {
                undo(a);
                return rc != DLOCK_OK ? rc : (*hint_ms = 0, DLOCK_OK);
            }
        }
        *got = 1;
        return DLOCK_OK;
    }
    /* The error detail reads this call's replies: take it before undo()
     * reuses the connections (and frees those replies). */
    rc = answered < call.quorum ? dl_call_error(&c->ctx, &call, "acquire") : DLOCK_OK;
    if (granted > 0 || unknown) {
        char saved[sizeof c->ctx.err];
        memcpy(saved, c->ctx.err, sizeof saved);
        undo(a);
        memcpy(c->ctx.err, saved, sizeof saved);
    }
    if (answered < call.quorum)
        return rc;
    *hint_ms = hint;
    return DLOCK_OK;
}

/* Push mode: block on our wake list for up to sleep_ms. Returns DLOCK_OK with
 * *got = 1 and the fence when the release handed us the lock. */
static int wait_wake(attempt_ctx *a, int64_t sleep_ms, int *got, int64_t *fence,
                     int64_t *start_us) {
    dlock_client *c = a->c;
    *got = 0;
    size_t wl = a->keys.len[DL_KEY_LOCK] + 3 + DL_TOKEN_HEX;
    char wkey[DLOCK_NAME_MAX + 300 + DL_TOKEN_HEX];
    if (wl >= sizeof wkey)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "key too long");
    memcpy(wkey, a->keys.k[DL_KEY_LOCK], a->keys.len[DL_KEY_LOCK]);
    memcpy(wkey + a->keys.len[DL_KEY_LOCK], ":w:", 3);
    memcpy(wkey + a->keys.len[DL_KEY_LOCK] + 3, a->token, DL_TOKEN_HEX);
    char secs[32];
    int sl = snprintf(secs, sizeof secs, "%" PRId64 ".%03d", sleep_ms / 1000,
                      (int)(sleep_ms % 1000));
    const char *argv[3] = {"BLPOP", wkey, secs};
    size_t lens[3] = {5, wl, (size_t)sl};
    dl_call call;
    *start_us = dl_mono_us();
    int64_t deadline =
        dl_capped(&c->ctx, *start_us + (sleep_ms + c->opts.command_timeout_ms) * 1000);
    int rc = run_argv(c, &call, wkey, wl, 3, argv, lens, deadline);
    if (rc != DLOCK_OK)
        return rc;
    if (call.status[0] != DLOCK_OK)
        return dl_call_error(&c->ctx, &call, "wait");
    const redisReply *r = call.replies[0];
    if (r->type == REDIS_REPLY_NIL)
        return DLOCK_OK;
    const redisReply *v = dl_elem(r, 1);
    if (v == NULL)
        return dl_seterr(&c->ctx, DLOCK_EPROTO, "unexpected reply to BLPOP from %s",
                         call.conns[0]->addr);
    *got = 1;
    *fence = dl_reply_int(v, 0);
    return DLOCK_OK;
}

/* Leave the queue; we may have been handed the lock meanwhile. */
static int cancel(attempt_ctx *a, int *got, int64_t *fence, int64_t *start_us) {
    const char *args[2] = {a->token, a->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, a->ttl_len};
    dl_call call;
    *got = 0;
    *start_us = dl_mono_us();
    int rc = dl_script_call(&a->c->topo, &a->c->proto, &call, DL_S_CANCEL, &a->keys, 2, args, lens, 0, NULL);
    if (rc != DLOCK_OK)
        return rc;
    if (call.status[0] != DLOCK_OK)
        return dl_call_error(&a->c->ctx, &call, "cancel wait");
    if (dl_reply_int(dl_elem(call.replies[0], 0), 0) == 1) {
        *got = 1;
        *fence = dl_reply_int(dl_elem(call.replies[0], 1), 0);
    }
    return DLOCK_OK;
}

/* Re-set the lease after a long wake-up, so local validity is not short. */
static int refresh(attempt_ctx *a, int64_t *start_us) {
    const char *args[2] = {a->token, a->ttl_s};
    size_t lens[2] = {DL_TOKEN_HEX, a->ttl_len};
    dl_call call;
    int64_t t0 = dl_mono_us();
    int rc = dl_script_call(&a->c->topo, &a->c->proto, &call, DL_S_EXTEND, &a->keys, 2, args, lens, 0, NULL);
    if (rc != DLOCK_OK)
        return rc;
    if (call.status[0] != DLOCK_OK)
        return dl_call_error(&a->c->ctx, &call, "extend");
    if (dl_reply_int(call.replies[0], 0) != 1)
        return dl_seterr(&a->c->ctx, DLOCK_ENOTHELD, "lock handed over but gone before use");
    *start_us = t0;
    return DLOCK_OK;
}

static int make_handle(attempt_ctx *a, int64_t fence, int64_t start_us, dlock_lock **out) {
    dlock_lock *l = calloc(1, sizeof *l + a->name_len + 1);
    if (l == NULL) {
        undo(a);
        return dl_seterr(&a->c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    l->client = a->c;
    l->name = (char *)(l + 1);
    memcpy(l->name, a->name, a->name_len);
    l->name[a->name_len] = '\0';
    l->name_len = a->name_len;
    memcpy(l->token, a->token, sizeof l->token);
    l->fence = fence;
    l->ttl_ms = a->ttl_ms;
    l->acquired_wall_ms = dl_wall_ms() - (dl_mono_us() - start_us) / 1000;
    atomic_store(&l->valid_until_us, dl_valid_until_us(start_us, a->ttl_ms,
                                                       a->c->opts.drift_factor));
    *out = l;
    return DLOCK_OK;
}

/* WAIT for replicas after an acquire (opts.replicas > 0). The server-side
 * wait is cut to what the caller's deadline cap leaves, so the gate never
 * stretches a dlock_wait past its promise. */
static int wait_replicas(attempt_ctx *a) {
    dlock_client *c = a->c;
    int64_t now = dl_mono_us();
    int64_t wait_ms = c->opts.replica_timeout_ms;
    if (c->ctx.cap_us > 0) {
        int64_t left = (c->ctx.cap_us - now) / 1000 - c->opts.command_timeout_ms / 2;
        if (left < 1)
            left = 1;
        if (wait_ms == 0 || wait_ms > left)
            wait_ms = left;
    }
    char nrep[16], tmo[24];
    int n1 = snprintf(nrep, sizeof nrep, "%d", c->opts.replicas);
    size_t n2 = dl_fmt_i64(tmo, wait_ms);
    const char *argv[3] = {"WAIT", nrep, tmo};
    size_t lens[3] = {4, (size_t)n1, n2};
    dl_call call;
    int64_t deadline =
        dl_capped(&c->ctx, now + (wait_ms + c->opts.command_timeout_ms) * 1000);
    int rc = run_argv(c, &call, a->keys.k[0], a->keys.len[0], 3, argv, lens, deadline);
    if (rc == DLOCK_OK)
        rc = dl_call_error(&c->ctx, &call, "wait for replicas");
    if (rc != DLOCK_OK)
        return rc;
    for (int i = 0; i < call.n; i++) {
        int64_t acked = dl_reply_int(call.replies[i], -1);
        if (call.status[i] == DLOCK_OK && acked < c->opts.replicas)
            return dl_seterr(&c->ctx, DLOCK_EBUSY,
                             "only %" PRId64 " of %d replicas acknowledged the lock in %" PRId64
                             " ms",
                             acked, c->opts.replicas, wait_ms);
    }
    return DLOCK_OK;
}

/* Errors worth another attempt while the caller is willing to wait: the
 * server unreachable or timing out, an unknown outcome, no quorum, or a
 * server that says it is loading or between masters. */
static int transient(const dlock_client *c, int rc) {
    if (rc == DLOCK_EIO || rc == DLOCK_EUNKNOWN || rc == DLOCK_ENOQUORUM)
        return 1;
    return rc == DLOCK_ESERVER && dl_srv_code_transient(c->ctx.code);
}

enum acquire_mode { MODE_TRY, MODE_RETRY, MODE_DEADLINE };

/* How long the next wait may last: the backoff delay (retry count, or poll
 * mode) or one push slice, never past the deadline. */
static int64_t slice_ms(dlock_client *c, enum acquire_mode mode, int push, int attempts,
                        int64_t deadline) {
    int64_t ms;
    if (mode == MODE_RETRY || !push)
        ms = dl_backoff_ms(attempts, c->opts.retry_delay_ms, c->opts.retry_max_delay_ms,
                           c->opts.retry_jitter_pct, &c->rng);
    else
        ms = DL_SLICE_MAX_MS;
    if (mode == MODE_DEADLINE && ms > ms_until(deadline))
        ms = ms_until(deadline);
    if (push && ms > DL_SLICE_MAX_MS)
        ms = DL_SLICE_MAX_MS;
    return ms;
}

/* After a transient failure: a fresh token for the next attempt, then a
 * backoff nap (never past the deadline). DLOCK_OK or DLOCK_EIO. */
static int fresh_token_nap(attempt_ctx *a, enum acquire_mode mode, int attempts,
                           int64_t deadline) {
    dlock_client *c = a->c;
    if (dl_pool_token(&c->pool, a->token) != 0)
        return dl_seterr(&c->ctx, DLOCK_EIO, "getrandom failed");
    int64_t nap = mode == MODE_RETRY
                      ? dl_backoff_ms(attempts, c->opts.retry_delay_ms,
                                      c->opts.retry_max_delay_ms, c->opts.retry_jitter_pct,
                                      &c->rng)
                      : dl_backoff_ms(attempts, 50, 1000, c->opts.retry_jitter_pct, &c->rng);
    if (mode == MODE_DEADLINE && nap > ms_until(deadline))
        nap = ms_until(deadline);
    dl_sleep_until_us(dl_mono_us() + nap * 1000);
    return DLOCK_OK;
}

/* Push mode: wait to be handed the lock. The hand-over's lease started when
 * the release ran: after busy_us, when the last attempt that found the lock
 * busy was sent (a hand-over before it ran would have granted it), but
 * maybe before the BLPOP was sent (this process was slow in between), so
 * it counts from busy_us. A long wait before the hand-over eats the local
 * validity: the lease is restarted so the caller gets most of its ttl. If
 * it already ran out (this process was paused), keep waiting: the lock
 * went on to the next waiter (*got stays 0). */
static int push_wait(attempt_ctx *a, int64_t sleep_ms, int64_t busy_us, int *got,
                     int64_t *fence, int64_t *start_us) {
    int rc = wait_wake(a, sleep_ms, got, fence, start_us);
    if (rc == DLOCK_OK && *got)
        *start_us = busy_us;
    if (rc == DLOCK_OK && *got && dl_mono_us() - *start_us > a->ttl_ms * 500) {
        rc = refresh(a, start_us);
        if (rc == DLOCK_ENOTHELD) {
            rc = DLOCK_OK;
            *got = 0;
        }
    }
    return rc;
}

/* The caller gives up while queued: leave the queue. A release may have
 * handed us the lock meanwhile (*got then set); if leaving fails we cannot
 * tell, and the outcome is unknown. Returns the call's status. */
static int leave_queue(attempt_ctx *a, int rc, int *got, int64_t *fence, int64_t *start_us) {
    dlock_client *c = a->c;
    int64_t f2, s2;
    int g2 = 0;
    char saved[sizeof c->ctx.err];
    memcpy(saved, c->ctx.err, sizeof saved);
    int crc = cancel(a, &g2, &f2, &s2);
    if (crc != DLOCK_OK) {
        char why[sizeof c->ctx.err];
        memcpy(why, c->ctx.err, sizeof why);
        return dl_seterr(&c->ctx, DLOCK_EUNKNOWN,
                         "%s%sleaving the wait queue failed (%.200s): a lease may exist for "
                         "%" PRId64 " ms",
                         saved, saved[0] ? "; " : "", why, a->ttl_ms);
    }
    memcpy(c->ctx.err, saved, sizeof saved);
    if (!g2)
        return rc;
    *got = 1;
    *fence = f2;
    *start_us = s2;
    return DLOCK_OK;
}

/* The lock is ours: restart a lease that a long hand-over ate into, pass
 * the replica gate, and make the handle. */
static int deliver(attempt_ctx *a, int64_t fence, int64_t start_us, dlock_lock **out) {
    int rc = DLOCK_OK;
    if (dl_mono_us() - start_us > a->ttl_ms * 500)
        rc = refresh(a, &start_us);
    if (rc == DLOCK_OK && a->c->opts.replicas > 0) {
        rc = wait_replicas(a);
        if (rc != DLOCK_OK)
            undo(a);
    }
    if (rc == DLOCK_OK)
        rc = make_handle(a, fence, start_us, out);
    return rc;
}

/* The status and detail when the lock stayed with others. */
static int busy_error(attempt_ctx *a, int is_wait, int64_t timeout_ms) {
    dl_ctx *x = &a->c->ctx;
    if (is_wait)
        return dl_seterr(x, DLOCK_ETIMEDOUT, "lock '%s' still held after %" PRId64 " ms", a->name,
                         timeout_ms);
    if (a->migrating)
        return dl_seterr(x, DLOCK_EBUSY,
                         "lock '%s': its cluster slot is migrating (TRYAGAIN); try again",
                         a->name);
    return dl_seterr(x, DLOCK_EBUSY, "lock '%s' is held by another owner", a->name);
}

static int acquire_loop(dlock_client *c, const char *name, int64_t ttl_ms, enum acquire_mode mode,
                        int64_t timeout_ms, int is_wait, dlock_lock **out) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    *out = NULL;
    attempt_ctx a;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.name = name;
    rc = dl_check_name(c, name, &a.name_len);
    if (rc == DLOCK_OK)
        rc = dl_check_ttl(c, ttl_ms);
    if (rc == DLOCK_OK && mode == MODE_DEADLINE && (timeout_ms < 0 || timeout_ms > DLOCK_TTL_MAX))
        rc = dl_seterr(&c->ctx, DLOCK_EINVAL, "timeout %" PRId64 " ms out of range 0..%" PRId64,
                       timeout_ms, (int64_t)DLOCK_TTL_MAX);
    if (rc != DLOCK_OK)
        return rc;
    if (dl_pool_token(&c->pool, a.token) != 0)
        return dl_seterr(&c->ctx, DLOCK_EIO, "getrandom failed");
    if (dl_keys_make(&c->proto, name, a.name_len, &a.keys) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    a.ttl_ms = ttl_ms;
    a.ttl_len = dl_fmt_i64(a.ttl_s, ttl_ms);

    int push = c->opts.waiting == DLOCK_WAIT_PUSH && !is_redlock(c);
    int64_t t_begin = dl_mono_us();
    int64_t deadline = t_begin + timeout_ms * 1000;
    /* dlock_wait: every call inside, the last try and the clean-up
     * included, ends by the deadline plus one command timeout. */
    if (is_wait)
        c->ctx.cap_us = deadline + (int64_t)c->opts.command_timeout_ms * 1000;
    int got = 0, contended = 0, attempts = 0, unknown_open = 0;
    int64_t fence = 0, start_us = 0;
    for (;;) {
        attempts++;
        int will_wait = mode == MODE_RETRY      ? attempts <= c->opts.retry_count
                        : mode == MODE_DEADLINE ? dl_mono_us() < deadline
                                                : 0;
        int64_t sleep_max = slice_ms(c, mode, push, attempts, deadline);
        int64_t hint;
        rc = attempt(&a, push && will_wait, sleep_max + c->opts.command_timeout_ms +
                                               DL_QUEUE_MARGIN_MS,
                     &got, &fence, &start_us, &hint);
        if (rc != DLOCK_OK && will_wait && transient(c, rc)) {
            /* A server that is down, restarting or failing over for less
             * than the caller's patience costs a retry, not the call. The
             * retry uses a FRESH token: the failed attempt and its clean-up
             * by token may still be queued on the server and run late, and
             * a late clean-up must never delete a lease a retry with the
             * same token re-confirmed (the fault suite caught exactly that
             * overlap). A lease the old token may have left expires by its
             * TTL and keeps the outcome "unknown" unless we get the lock. */
            unknown_open |= rc == DLOCK_EUNKNOWN;
            rc = fresh_token_nap(&a, mode, attempts, deadline);
            if (rc != DLOCK_OK)
                break;
            if (mode == MODE_DEADLINE && dl_mono_us() >= deadline)
                mode = MODE_TRY;
            continue;
        }
        if (rc != DLOCK_OK || got)
            break;
        if (!contended) {
            contended = 1;
            dl_emit(&c->ctx, DLOCK_EV_CONTENDED, name, DLOCK_EBUSY, 0, 0, attempts);
        }
        if (!will_wait)
            break;
        int64_t sleep_ms = sleep_max;
        if (hint >= 0 && (push || is_redlock(c)) && hint + 1 < sleep_ms)
            sleep_ms = hint + 1; /* the holder's lease ends first */
        if (mode == MODE_DEADLINE && sleep_ms > ms_until(deadline))
            sleep_ms = ms_until(deadline);
        if (sleep_ms < 1)
            sleep_ms = 1;
        if (push) {
            rc = push_wait(&a, sleep_ms, start_us, &got, &fence, &start_us);
            if (rc != DLOCK_OK && transient(c, rc)) {
                /* The BLPOP may still run late and take a hand-over meant
                 * for us: the next attempt (same token) finds that lease
                 * ours. Nothing of ours can delete it. */
                rc = DLOCK_OK;
                continue;
            }
            if (rc != DLOCK_OK || got)
                break;
        } else {
            dl_sleep_until_us(dl_mono_us() + sleep_ms * 1000);
        }
        if (mode == MODE_DEADLINE && dl_mono_us() >= deadline) {
            /* One last try at the deadline, without waiting. */
            mode = MODE_TRY;
        }
    }
    if (!got && a.enqueued)
        rc = leave_queue(&a, rc, &got, &fence, &start_us);
    if (got && rc == DLOCK_OK) {
        rc = deliver(&a, fence, start_us, out);
        if (rc == DLOCK_OK) {
            dl_emit(&c->ctx, DLOCK_EV_ACQUIRED, name, DLOCK_OK, fence, dl_mono_us() - t_begin,
                    attempts);
            dl_clearerr(&c->ctx);
        }
    } else if (rc == DLOCK_OK) {
        rc = busy_error(&a, is_wait, timeout_ms);
    }
    if (rc != DLOCK_OK && rc != DLOCK_EUNKNOWN && unknown_open) {
        /* An earlier attempt's outcome stayed open: its token may hold a
         * lease until the TTL (we did not get the lock with a new one). */
        char why[sizeof c->ctx.err];
        memcpy(why, c->ctx.err, sizeof why);
        rc = dl_seterr(&c->ctx, DLOCK_EUNKNOWN,
                       "%.300s; an earlier attempt's outcome is unknown: a lease may exist for "
                       "%" PRId64 " ms",
                       why, ttl_ms);
    }
    if (rc != DLOCK_OK && rc != DLOCK_EBUSY && rc != DLOCK_ETIMEDOUT)
        dl_emit(&c->ctx, DLOCK_EV_ERROR, name, rc, 0, dl_mono_us() - t_begin, attempts);
    dl_keys_free(&a.keys);
    c->ctx.cap_us = 0;
    return rc;
}

int dlock_acquire(dlock_client *c, const char *name, int64_t ttl_ms, dlock_lock **out) {
    return acquire_loop(c, name, ttl_ms, MODE_RETRY, 0, 0, out);
}

int dlock_try_acquire(dlock_client *c, const char *name, int64_t ttl_ms, dlock_lock **out) {
    return acquire_loop(c, name, ttl_ms, MODE_TRY, 0, 0, out);
}

int dlock_wait(dlock_client *c, const char *name, int64_t timeout_ms, int64_t ttl_ms,
               dlock_lock **out) {
    return acquire_loop(c, name, ttl_ms, timeout_ms == 0 ? MODE_TRY : MODE_DEADLINE, timeout_ms,
                        1, out);
}

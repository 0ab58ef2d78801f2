/* replies.c - reading the servers' answers to each lock script: pure
 * functions over a dl_call, shared by the blocking calls and the engine,
 * with the Redlock deciders that say when a call is settled. A reply of
 * the wrong shape makes its target fail (EPROTO); it is never read as a
 * "no". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "resp.h"

/* The mutex's ACQUIRE answers a grant with the fence alone, a bulk string
 * holding a decimal (a string that is not one is the wrong shape). */
static int fence_reply(const redisReply *r) {
    return r != NULL && r->type == REDIS_REPLY_STRING && dl_reply_int(r, -1) >= 0;
}

/* An acquire reply that grants the lock: the mutex's fence, or {1, fence}
 * from the other kinds' scripts. */
static int granted_reply(const redisReply *r) {
    if (fence_reply(r))
        return 1;
    const redisReply *e0 = dl_elem(r, 0);
    return e0 != NULL && e0->type == REDIS_REPLY_INTEGER && e0->integer == 1;
}

/* Count an ACQUIRE call's answers (see dl_tally in client.h). A reply of
 * the wrong shape makes that target fail (EPROTO). On a Redlock set, `agree`
 * says whether the granting servers' fences (each one's own INCR) are all
 * the same value: then that value is the fence, in one round trip. */
void dl_acquire_tally(dl_call *call, dl_tally *t) {
    memset(t, 0, sizeof *t);
    t->hint = -1;
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] != DLOCK_OK) {
            t->unknown |= call->unknown[i];
            t->maybe |= (unsigned)(call->unknown[i] != 0) << i;
            continue;
        }
        const redisReply *r = call->replies[i];
        const redisReply *e0 = dl_elem(r, 0), *e1 = dl_elem(r, 1);
        int str = fence_reply(r);
        if (!str && (e0 == NULL || e0->type != REDIS_REPLY_INTEGER || e1 == NULL)) {
            call->status[i] = DLOCK_EPROTO;
            call->nok--;
            snprintf(call->conns[i]->err, sizeof call->conns[i]->err,
                     "unexpected reply to acquire from %s", call->conns[i]->addr);
            continue;
        }
        t->answered++;
        if (str || e0->integer == 1) {
            int64_t f = dl_reply_int(str ? r : e1, 0);
            t->maybe |= 1u << i;
            t->agree = t->granted == 0 || (t->agree && f == t->seen_max);
            if (t->granted++ == 0 || f > t->seen_max)
                t->seen_max = f;
        } else {
            int64_t h = dl_reply_int(e1, -1);
            if (h > t->hint)
                t->hint = h;
            int64_t cn = dl_reply_int(dl_elem(r, 3), 0);
            if (cn > t->counter)
                t->counter = cn;
        }
    }
}

int dl_acquire_decided(const dl_call *call) { return dl_settled(call, granted_reply); }

/* The FENCE script answers the stored counter (a decimal string >= 0) to
 * the holder, -1 to anyone else. */
static int fence_stored(const redisReply *r) {
    return r != NULL && (r->type == REDIS_REPLY_INTEGER || r->type == REDIS_REPLY_STRING) &&
           dl_reply_int(r, -1) >= 0;
}

int dl_fence_decided(const dl_call *call) { return dl_settled(call, fence_stored); }

/* A reply that is not an integer: that target failed (EPROTO), instead of
 * being read as "not held" (release and extend answer 0, 1 or 2). */
static void bad_reply(dl_call *call, int i, const char *what) {
    call->status[i] = DLOCK_EPROTO;
    call->nok--;
    snprintf(call->conns[i]->err, sizeof call->conns[i]->err, "unexpected reply to %s from %s",
             what, call->conns[i]->addr);
}

/* RELEASE answers 1 or 2 when it released, EXTEND 1 when it extended. */
static int yes_positive(const redisReply *r) {
    return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

static int yes_one(const redisReply *r) {
    return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
}

int dl_release_read(dl_ctx *x, dl_call *call, int *released) {
    *released = 0;
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] != DLOCK_OK)
            continue;
        if (call->replies[i]->type != REDIS_REPLY_INTEGER) {
            bad_reply(call, i, "release");
            continue;
        }
        /* A re-sent release (the first went out on a dead connection) is
         * taken at its word: "token gone" is reported as ENOTHELD even if
         * the first copy ran, so a lost lease is never hidden. */
        if (dl_reply_int(call->replies[i], 0) > 0)
            *released = 1;
    }
    return dl_call_error(x, call, "release");
}

int dl_extend_read(dl_ctx *x, dl_call *call, int *extended) {
    int yes = 0;
    for (int i = 0; i < call->n; i++) {
        if (call->status[i] == DLOCK_OK && call->replies[i]->type != REDIS_REPLY_INTEGER)
            bad_reply(call, i, "extend");
        else if (call->status[i] == DLOCK_OK && call->replies[i]->integer == 1)
            yes++;
    }
    *extended = yes >= call->quorum;
    return dl_call_error(x, call, "extend");
}

/* Redlock deciders: a majority said yes, or can no longer say it. */
int dl_release_decided(const dl_call *call) { return dl_settled(call, yes_positive); }
int dl_extend_decided(const dl_call *call) { return dl_settled(call, yes_one); }

/* Copy a bulk string reply into a fixed buffer (truncating). */
static void copy_str(const redisReply *r, char *out, size_t n) {
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        size_t k = r->len < n - 1 ? r->len : n - 1;
        memcpy(out, r->str, k);
        out[k] = '\0';
    }
}

/* meta is "host\tpid\tlabel". */
void dl_meta_read(const redisReply *r, dlock_holder *h) {
    char meta[600];
    copy_str(r, meta, sizeof meta);
    char *tab1 = strchr(meta, '\t');
    if (tab1 == NULL) {
        snprintf(h->host, sizeof h->host, "%s", meta);
        return;
    }
    *tab1 = '\0';
    snprintf(h->host, sizeof h->host, "%s", meta);
    char *tab2 = strchr(tab1 + 1, '\t');
    if (tab2 != NULL) {
        *tab2 = '\0';
        snprintf(h->label, sizeof h->label, "%s", tab2 + 1);
    }
    h->pid = strtol(tab1 + 1, NULL, 10);
}

/* The INSPECT script answers {int pttl, str token, fence, str meta,
 * int acquired, last_fence, int waiters}, the fences as decimal strings
 * (integers from older scripts): anything else is EPROTO. */
static int inspect_shape_ok(const redisReply *r) {
    static const int want[7] = {REDIS_REPLY_INTEGER, REDIS_REPLY_STRING, REDIS_REPLY_STRING,
                                REDIS_REPLY_STRING,  REDIS_REPLY_INTEGER, REDIS_REPLY_STRING,
                                REDIS_REPLY_INTEGER};
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 7)
        return 0;
    for (int k = 0; k < 7; k++) {
        int t = r->element[k]->type;
        if (t != want[k] && !((k == 2 || k == 5) && t == REDIS_REPLY_INTEGER))
            return 0;
    }
    return 1;
}

/* A server that reports the lock held (PTTL other than -2). */
static int held_reply(const redisReply *r) {
    const redisReply *e0 = dl_elem(r, 0);
    return e0 != NULL && e0->type == REDIS_REPLY_INTEGER && e0->integer != -2;
}

/* Redlock: settled once a majority reports it held, or a majority of
 * "held" is no longer possible; a quick "free" never outvotes a slow
 * holder. */
int dl_inspect_decided(const dl_call *call) { return dl_settled(call, held_reply); }

int dl_inspect_read(dl_ctx *x, const dl_call *call, dlock_holder *out) {
    memset(out, 0, sizeof *out);
    out->pttl_ms = -1;
    int rc = dl_call_error(x, call, "inspect");
    if (rc != DLOCK_OK)
        return rc;
    /* Locked if a majority says so; report the holder seen with the
     * highest fence (all servers of a Redlock set carry one token). The
     * queue is the longest any server reports: a waiter queues on all. */
    int held = 0, best = -1;
    int64_t last_fence = 0, waiters = 0;
    for (int i = 0; i < call->n; i++) {
        const redisReply *r = call->replies[i];
        if (call->status[i] != DLOCK_OK || !inspect_shape_ok(r)) {
            if (call->status[i] == DLOCK_OK)
                return dl_seterr(x, DLOCK_EPROTO, "unexpected reply to inspect from %s",
                                 call->conns[i]->addr);
            continue;
        }
        int64_t pttl = dl_reply_int(r->element[0], -2);
        int64_t lf = dl_reply_int(r->element[5], 0), w = dl_reply_int(r->element[6], 0);
        last_fence = lf > last_fence ? lf : last_fence;
        waiters = w > waiters ? w : waiters;
        if (pttl == -2)
            continue;
        held++;
        if (best < 0 || dl_reply_int(r->element[2], 0) >
                            dl_reply_int(call->replies[best]->element[2], 0))
            best = i;
    }
    out->fence = last_fence;
    out->waiters = waiters > INT32_MAX ? INT32_MAX : (int)waiters;
    if (held < call->quorum || best < 0)
        return DLOCK_OK;
    const redisReply *r = call->replies[best];
    out->locked = 1;
    out->pttl_ms = dl_reply_int(r->element[0], -1);
    if (out->pttl_ms < 0)
        out->pttl_ms = 0; /* a key without expiry: not set by dlock */
    copy_str(r->element[1], out->token, sizeof out->token);
    out->fence = dl_reply_int(r->element[2], 0);
    dl_meta_read(r->element[3], out);
    out->acquired_at = dl_reply_int(r->element[4], 0);
    return DLOCK_OK;
}

/* inspect.c - read-only questions: is a lock held, and by whom. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "resp.h"

int dlock_is_locked(dlock_client *c, const char *name, int *locked, int64_t *pttl_ms) {
    dlock_holder h;
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (locked == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "locked is NULL");
    rc = dlock_inspect(c, name, &h);
    if (rc != DLOCK_OK)
        return rc;
    *locked = h.locked;
    if (pttl_ms != NULL)
        *pttl_ms = h.pttl_ms;
    return DLOCK_OK;
}

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
static void parse_meta(const redisReply *r, dlock_holder *h) {
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

/* The INSPECT script answers {int pttl, str token, int fence, str meta,
 * int acquired, int last_fence, int waiters}: anything else is EPROTO. */
static int inspect_shape_ok(const redisReply *r) {
    static const int want[7] = {REDIS_REPLY_INTEGER, REDIS_REPLY_STRING, REDIS_REPLY_INTEGER,
                                REDIS_REPLY_STRING,  REDIS_REPLY_INTEGER, REDIS_REPLY_INTEGER,
                                REDIS_REPLY_INTEGER};
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 7)
        return 0;
    for (int k = 0; k < 7; k++)
        if (r->element[k]->type != want[k])
            return 0;
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
static int inspect_decided(const dl_call *call) { return dl_settled(call, held_reply); }

int dl_inspect(dlock_client *c, const char *name, size_t len, dlock_holder *out) {
    memset(out, 0, sizeof *out);
    out->pttl_ms = -1;
    dl_call call;
    int rc = dl_script_named(&c->topo, &c->proto, &call, DL_S_INSPECT, name, len, 0, NULL,
                             NULL, 0, inspect_decided);
    if (rc != DLOCK_OK)
        return rc;
    rc = dl_call_error(&c->ctx, &call, "inspect");
    if (rc != DLOCK_OK)
        return rc;
    /* Locked if a majority says so; report the holder seen with the
     * highest fence (all servers of a Redlock set carry one token). The
     * queue is the longest any server reports: a waiter queues on all. */
    int held = 0, best = -1;
    int64_t last_fence = 0, waiters = 0;
    for (int i = 0; i < call.n; i++) {
        const redisReply *r = call.replies[i];
        if (call.status[i] != DLOCK_OK || !inspect_shape_ok(r)) {
            if (call.status[i] == DLOCK_OK)
                return dl_seterr(&c->ctx, DLOCK_EPROTO, "unexpected reply to inspect from %s",
                                 call.conns[i]->addr);
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
                            dl_reply_int(call.replies[best]->element[2], 0))
            best = i;
    }
    out->fence = last_fence;
    out->waiters = waiters > INT32_MAX ? INT32_MAX : (int)waiters;
    if (held < call.quorum || best < 0)
        return DLOCK_OK;
    const redisReply *r = call.replies[best];
    out->locked = 1;
    out->pttl_ms = dl_reply_int(r->element[0], -1);
    if (out->pttl_ms < 0)
        out->pttl_ms = 0; /* a key without expiry: not set by dlock */
    copy_str(r->element[1], out->token, sizeof out->token);
    out->fence = dl_reply_int(r->element[2], 0);
    parse_meta(r->element[3], out);
    out->acquired_at = dl_reply_int(r->element[4], 0);
    return DLOCK_OK;
}

int dlock_inspect(dlock_client *c, const char *name, dlock_holder *out) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    if (out == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "out is NULL");
    memset(out, 0, sizeof *out);
    out->pttl_ms = -1;
    size_t len;
    rc = dl_check_name(c, name, &len);
    if (rc != DLOCK_OK)
        return rc;
    return dl_inspect(c, name, len, out);
}

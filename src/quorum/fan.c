/* fan.c - one request over 1..N pipes, non-blocking (see fan.h). */
#include "fan.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "resp.h"
#include "token.h"

/* The least grace after a settled call: a reply a few scheduler ticks
 * behind on a loaded machine still counts (a busy answer is not taken for
 * a missing one: ENOQUORUM with a majority up). */
#define DL_FAN_MIN_GRACE_US 5000
#define DL_FAN_MAX_TRIES 5 /* sends per target: NOSCRIPT, a reconnect, redirects */

static void fan_free(dl_fan *f) {
    dl_heap_disarm(f->heap, &f->grace);
    dl_heap_disarm(f->heap, &f->again);
    for (int i = 0; i < f->call.n; i++)
        if (f->call.replies[i] != NULL)
            freeReplyObject(f->call.replies[i]);
    free(f->buf);
    free(f);
}

static void count_ok(dl_call *call) {
    call->nok = 0;
    for (int i = 0; i < call->n; i++)
        if (call->done[i] && call->status[i] == DLOCK_OK)
            call->nok++;
}

static int all_done(const dl_call *call) {
    for (int i = 0; i < call->n; i++)
        if (!call->done[i])
            return 0;
    return 1;
}

static void on_reply(void *arg, redisReply *r, int status, int sent);
static int send_one(dl_fan *f, int i);
static void settle(dl_fan *f, int i, redisReply *r, int status, int code);
static void maybe_complete(dl_fan *f);

static void drop_reply(void *arg, redisReply *r, int status, int sent) {
    (void)arg;
    (void)status;
    (void)sent;
    if (r != NULL)
        freeReplyObject(r);
}

/* Ask the router where target i's request goes now (after error reply r,
 * or a failed connection when r is NULL), and re-send it there. Returns
 * 1 (re-sent), 0 (no redirect: the outcome stands) or -1 (redirected, but
 * the request could not be sent there: the new pipe's error says why). */
static int redirected(dl_fan *f, int i, const redisReply *r) {
    if (f->router == NULL || f->tries[i] >= DL_FAN_MAX_TRIES)
        return 0;
    dl_pipe *to = NULL;
    int asking = 0;
    if (!f->router->redirect(f->router->arg, f->key, f->klen, f->pipes[i], r, &to, &asking) ||
        to == NULL)
        return 0;
    f->pipes[i] = to;
    f->call.conns[i] = &to->conn;
    f->ask[i] = asking;
    f->tries[i]++;
    return send_one(f, i) == DLOCK_OK ? 1 : -1;
}

/* TRYAGAIN / CLUSTERDOWN on a routed request: re-send it to the key's
 * server after a pause (a slot migration or a failover settles). */
static int try_again_later(dl_fan *f, int i, int code) {
    if (f->router == NULL || f->tries[i] >= DL_FAN_MAX_TRIES - 1 ||
        (code != DL_SRV_TRYAGAIN && code != DL_SRV_CLUSTERDOWN))
        return 0;
    int64_t at = dl_mono_us() + (int64_t)f->router->pause_ms * 1000;
    if (at >= f->deadline_us || dl_heap_arm(f->heap, &f->again, at) != 0)
        return 0;
    f->waiting[i] = 1;
    f->tries[i]++;
    f->outstanding++; /* the re-send to come */
    return 1;
}

static void again_due(dl_timer *t) {
    dl_fan *f = (dl_fan *)((char *)t - offsetof(dl_fan, again));
    for (int i = 0; i < f->call.n; i++) {
        if (!f->waiting[i])
            continue;
        f->waiting[i] = 0;
        f->outstanding--;
        dl_pipe *to = NULL;
        if (!f->put && f->router->route(f->router->arg, f->key, f->klen, &to) && to != NULL) {
            f->pipes[i] = to;
            f->call.conns[i] = &to->conn;
            f->ask[i] = 0;
        }
        if (f->put || send_one(f, i) != DLOCK_OK) {
            if (!f->put)
                settle(f, i, NULL, DLOCK_EIO, 0);
        }
    }
    if (f->put) {
        if (f->outstanding == 0)
            fan_free(f);
        return;
    }
    maybe_complete(f);
}

/* Queue the request (or its EVAL form) for target i. */
static int send_one(dl_fan *f, int i) {
    const char *argv[DL_REQ_MAX_ARGV];
    size_t lens[DL_REQ_MAX_ARGV];
    memcpy(argv, f->argv, (size_t)f->argc * sizeof *argv);
    memcpy(lens, f->lens, (size_t)f->argc * sizeof *lens);
    if (f->eval[i]) {
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = f->script;
        lens[1] = f->script_len;
    }
    dl_pipe *p = f->pipes[i];
    char floor[24];
    if (f->floor_at > 0) {
        /* The floor of the server it goes to now: a redirect to a new
         * master carries the new master's epoch. */
        int64_t ep = p->conn.epoch;
        argv[f->floor_at] = floor;
        lens[f->floor_at] = ep < 0 ? 0 : dl_fmt_i64(floor, ep << DL_EPOCH_SHIFT);
    }
    f->reused[i] = p->conn.state == DL_CONN_READY;
    if (f->ask[i]) {
        /* ASK: this one request goes to the importing node, after ASKING
         * on the same connection (its reply is dropped). */
        const char *av[1] = {"ASKING"};
        size_t al[1] = {6};
        if (dl_pipe_send(p, 1, av, al, f->deadline_us, drop_reply, NULL) != DLOCK_OK)
            return DLOCK_EIO;
    }
    int rc = dl_pipe_send(p, f->argc, argv, lens, f->deadline_us, on_reply, &f->slot[i]);
    if (rc == DLOCK_OK)
        f->outstanding++;
    return rc;
}

/* Target i has its final outcome. */
static void settle(dl_fan *f, int i, redisReply *r, int status, int code) {
    dl_call *call = &f->call;
    call->replies[i] = r;
    call->status[i] = status;
    call->code[i] = code;
    call->done[i] = 1;
    count_ok(call);
}

static void complete(dl_fan *f) {
    dl_heap_disarm(f->heap, &f->grace);
    /* A target still unanswered after the grace: its request is on its
     * way and may yet run (the layer above undoes it if it must). */
    for (int i = 0; i < f->call.n; i++)
        if (!f->call.done[i])
            f->call.unknown[i] = 1;
    f->completed = 1;
    f->done(f, f->arg);
}

static void grace_over(dl_timer *t) { complete((dl_fan *)t); }

static void maybe_complete(dl_fan *f) {
    if (f->completed)
        return;
    if (all_done(&f->call)) {
        complete(f);
        return;
    }
    if (f->settled || f->decided == NULL || !f->decided(&f->call))
        return;
    f->settled = 1;
    int64_t now = dl_mono_us();
    int64_t grace = now - f->sent_us;
    if (grace < DL_FAN_MIN_GRACE_US)
        grace = DL_FAN_MIN_GRACE_US;
    if (dl_heap_arm(f->heap, &f->grace, now + grace) != 0)
        complete(f);
}

/* A failed target worth another try: a request that failed on a reused
 * connection (found dead) and was not overdue. */
static int retry_failed(dl_fan *f, int i, int status) {
    dl_conn *c = &f->pipes[i]->conn;
    if (status != DLOCK_EIO || c->timed_out || !f->reused[i] || f->tries[i] >= DL_FAN_MAX_TRIES)
        return 0;
    f->tries[i]++;
    return send_one(f, i) == DLOCK_OK;
}

static void on_reply(void *arg, redisReply *r, int status, int sent) {
    struct dl_fan_slot *s = arg;
    dl_fan *f = s->f;
    int i = s->i;
    f->outstanding--;
    if (f->put || f->call.done[i]) {
        if (r != NULL)
            freeReplyObject(r);
        if (f->put && f->outstanding == 0)
            fan_free(f);
        return;
    }
    if (r == NULL) {
        /* Only a lost connection or a timeout after the request went out
         * leaves its outcome open (an AUTH refusal does not). */
        f->call.unknown[i] |= sent && status == DLOCK_EIO;
        int timed_out = f->pipes[i]->conn.timed_out;
        if (!retry_failed(f, i, status) &&
            !(status == DLOCK_EIO && !timed_out && redirected(f, i, NULL) == 1))
            settle(f, i, NULL, status, f->pipes[i]->conn.code);
    } else {
        int code = dl_srv_code(r), rr;
        if (code == DL_SRV_NOSCRIPT && f->script != NULL && !f->eval[i] &&
            f->tries[i] < DL_FAN_MAX_TRIES) {
            freeReplyObject(r);
            f->eval[i] = 1;
            f->tries[i]++;
            if (send_one(f, i) != DLOCK_OK)
                settle(f, i, NULL, DLOCK_EIO, 0);
        } else if (r->type == REDIS_REPLY_ERROR && try_again_later(f, i, code)) {
            freeReplyObject(r);
        } else if (r->type == REDIS_REPLY_ERROR && (rr = redirected(f, i, r)) != 0) {
            freeReplyObject(r); /* re-sent where the redirect said */
            if (rr < 0)
                settle(f, i, NULL, DLOCK_EIO, 0);
        } else {
            f->call.unknown[i] = 0;
            settle(f, i, r, r->type == REDIS_REPLY_ERROR ? DLOCK_ESERVER : DLOCK_OK,
                   r->type == REDIS_REPLY_ERROR ? code : DL_SRV_NONE);
        }
    }
    maybe_complete(f);
}

/* Copy the request's arguments: the caller's buffers are gone by the time
 * a retry is sent. */
static int copy_req(dl_fan *f, const dl_req *req) {
    size_t total = req->klen + 1;
    for (int i = 0; i < req->argc; i++)
        total += req->lens[i] + 1;
    f->buf = malloc(total ? total : 1);
    if (f->buf == NULL)
        return -1;
    char *d = f->buf;
    for (int i = 0; i < req->argc; i++) {
        memcpy(d, req->argv[i], req->lens[i]);
        d[req->lens[i]] = '\0';
        f->argv[i] = d;
        f->lens[i] = req->lens[i];
        d += req->lens[i] + 1;
    }
    if (req->klen > 0)
        memcpy(d, req->key, req->klen);
    d[req->klen] = '\0';
    f->key = d;
    f->klen = req->klen;
    f->argc = req->argc;
    f->floor_at = req->floor_at > 0 && req->floor_at < req->argc ? req->floor_at : 0;
    f->script = req->script; /* static sources */
    f->script_len = req->script_len;
    return 0;
}

dl_fan *dl_fan_start(dl_pipe **pipes, int n, const dl_req *req, int64_t deadline_us,
                     dl_heap *heap, const dl_router *router, dl_decided_fn decided,
                     dl_fan_done_fn done, void *arg, int *rc) {
    dl_fan *f = calloc(1, sizeof *f);
    if (f == NULL || req->argc > DL_REQ_MAX_ARGV || copy_req(f, req) != 0) {
        free(f);
        *rc = DLOCK_ENOMEM;
        return NULL;
    }
    *rc = DLOCK_OK;
    dl_timer_init(&f->grace, grace_over);
    dl_timer_init(&f->again, again_due);
    f->heap = heap;
    f->router = router;
    f->call.n = n;
    f->call.quorum = n / 2 + 1;
    f->deadline_us = deadline_us;
    f->decided = decided;
    f->done = done;
    f->arg = arg;
    f->sent_us = dl_mono_us();
    int queued = 0;
    for (int i = 0; i < n; i++) {
        f->pipes[i] = pipes[i];
        f->call.conns[i] = &pipes[i]->conn;
        f->call.status[i] = DLOCK_EIO;
        f->slot[i].f = f;
        f->slot[i].i = i;
        f->tries[i] = 1;
    }
    for (int i = 0; i < n; i++) {
        int src = send_one(f, i);
        if (src == DLOCK_OK)
            queued++;
        else
            settle(f, i, NULL, src == DLOCK_ENOMEM ? DLOCK_ENOMEM : DLOCK_EIO, 0);
    }
    if (queued == 0)
        f->completed = 1;
    return f;
}

void dl_fan_put(dl_fan *f) {
    if (f == NULL)
        return;
    f->put = 1;
    dl_heap_disarm(f->heap, &f->grace);
    if (dl_timer_armed(&f->again)) {
        /* Re-sends that will not happen now. */
        dl_heap_disarm(f->heap, &f->again);
        for (int i = 0; i < f->call.n; i++)
            if (f->waiting[i]) {
                f->waiting[i] = 0;
                f->outstanding--;
            }
    }
    if (f->outstanding == 0)
        fan_free(f);
}

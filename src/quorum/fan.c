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
#define DL_FAN_MAX_TRIES 5 /* sends per target: NOSCRIPT, a reconnect, redirects,
                              discoveries waited for */

static void unpark(dl_fan *f) {
    dl_topo_unwait(&f->park.w);
    if (f->park.held != NULL)
        freeReplyObject(f->park.held);
    f->park.held = NULL;
}

static void unparked(dl_topo_wait *w, int status);

/* The park for target i, or NULL if another target holds it (never with
 * the topologies there are: one that discovers gives one target). */
static dl_topo_wait *park_for(dl_fan *f, int i) {
    if (f->park.w.list != NULL && f->park.i != i)
        return NULL;
    f->park.i = i;
    f->park.w.fn = unparked;
    return &f->park.w;
}

static void fan_free(dl_fan *f) {
    dl_heap_disarm(f->heap, &f->grace);
    dl_heap_disarm(f->heap, &f->again);
    unpark(f);
    for (int i = 0; i < f->call.n; i++) {
        if (f->call.replies[i] != NULL)
            freeReplyObject(f->call.replies[i]);
    }
    free(f->why);
    free(f); /* and the arguments after it (fan_alloc) */
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
static void maybe_complete(dl_fan *f);

static void drop_reply(void *arg, redisReply *r, int status, int sent) {
    (void)arg;
    (void)status;
    (void)sent;
    if (r != NULL)
        freeReplyObject(r);
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

/* Target i failed with the topology's discovery (no server to send it to). */
static void settle_why(dl_fan *f, int i) {
    const dl_topo *t = f->topo;
    free(f->why);
    f->why = strdup(t->why[0] != '\0' ? t->why : "no server known for the key");
    f->call.why = f->why;
    f->call.why_at = i;
    settle(f, i, NULL, t->why_status != DLOCK_OK ? t->why_status : DLOCK_EIO, t->why_code);
}

/* Route target i anew (after a discovery, a dead reused connection or a
 * TRYAGAIN pause) and send it: 1 sent, 0 waiting for a discovery, -1
 * failed (settled). */
static int route_send(dl_fan *f, int i) {
    dl_targets tg;
    dl_topo_wait *w = park_for(f, i);
    int rc = dl_topo_targets(f->topo, f->key, f->klen, &tg, w);
    if (rc == DL_TOPO_PENDING && w != NULL)
        return 0;
    if (rc != DLOCK_OK || tg.n < 1) {
        settle_why(f, i);
        return -1;
    }
    dl_pipe *p = tg.pipes[i < tg.n ? i : 0];
    f->pipes[i] = p;
    f->call.conns[i] = &p->conn;
    f->ask[i] = 0;
    if (send_one(f, i) != DLOCK_OK) {
        settle(f, i, NULL, DLOCK_EIO, 0);
        return -1;
    }
    return 1;
}

/* The discovery target i waited for ended. */
static void unparked(dl_topo_wait *w, int status) {
    struct dl_fan_park *pk = (struct dl_fan_park *)w;
    dl_fan *f = pk->f;
    int i = pk->i;
    if (status != DLOCK_OK && pk->held != NULL) {
        /* The answer that sent it waiting stands (READONLY...). */
        redisReply *r = pk->held;
        pk->held = NULL;
        settle(f, i, r, DLOCK_ESERVER, dl_srv_code(r));
    } else if (status != DLOCK_OK || f->tries[i] >= DL_FAN_MAX_TRIES) {
        /* Failed, or found again and again but never usable (a master
         * that passes ROLE, then drops every connection): give up. */
        settle_why(f, i);
    } else {
        unpark(f);
        f->tries[i]++;
        /* Sent now: as long for its reply as it had at the start. */
        int64_t d = dl_mono_us() + f->span_us;
        if (d > f->deadline_us)
            f->deadline_us = d;
        if (route_send(f, i) == 0)
            return; /* another discovery: wait on */
    }
    maybe_complete(f);
}

/* Ask the topology where target i's request goes now (after error reply
 * r, or a failed connection when r is NULL), and re-send it there. Returns
 * 1 (re-sent, or waiting for the discovery it started: r is then kept), 0
 * (no redirect: the outcome stands) or -1 (redirected, but the request
 * could not be sent there: the new pipe's error says why). */
static int redirected(dl_fan *f, int i, redisReply *r) {
    if (f->tries[i] >= DL_FAN_MAX_TRIES)
        return 0;
    dl_pipe *to = NULL;
    int asking = 0;
    dl_topo_wait *w = park_for(f, i);
    int rc = dl_topo_redirect(f->topo, f->pipes[i], r, &to, &asking, w);
    if (rc == DL_TOPO_PENDING && w != NULL) {
        f->park.held = r; /* the try is counted when it is sent */
        return 1;
    }
    if (rc != 1 || to == NULL)
        return 0;
    if (r != NULL)
        freeReplyObject(r);
    f->pipes[i] = to;
    f->call.conns[i] = &to->conn;
    f->ask[i] = asking;
    f->tries[i]++;
    return send_one(f, i) == DLOCK_OK ? 1 : -1;
}

/* TRYAGAIN / CLUSTERDOWN: re-send to the key's server after a pause (a
 * slot migration or a failover settles). */
static int try_again_later(dl_fan *f, int i, int code) {
    if (f->tries[i] >= DL_FAN_MAX_TRIES - 1 ||
        (code != DL_SRV_TRYAGAIN && code != DL_SRV_CLUSTERDOWN) || f->topo->pause_ms <= 0)
        return 0;
    int64_t at = dl_mono_us() + (int64_t)f->topo->pause_ms * 1000;
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
        if (!f->put)
            route_send(f, i);
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
    if (rc == DLOCK_OK) {
        f->outstanding++;
        f->sends++;
    }
    return rc;
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
 * connection (found dead) and was not overdue. It is routed anew: a
 * Sentinel master whose connection broke is checked before it is used. */
static int retry_failed(dl_fan *f, int i, int status) {
    dl_conn *c = &f->pipes[i]->conn;
    if (status != DLOCK_EIO || c->timed_out || !f->reused[i] || f->tries[i] >= DL_FAN_MAX_TRIES)
        return 0;
    f->tries[i]++;
    return route_send(f, i) >= 0;
}

/* A failed request (no reply): try it again, elsewhere, or settle. */
static void on_failed(dl_fan *f, int i, int status) {
    /* Only a lost connection or a timeout after the request went out
     * leaves its outcome open (an AUTH refusal does not). */
    dl_conn *c = &f->pipes[i]->conn;
    int timed_out = c->timed_out, code = c->code;
    if (retry_failed(f, i, status) || f->call.done[i])
        return;
    if (status == DLOCK_EIO && !timed_out && redirected(f, i, NULL) == 1)
        return;
    if (!f->call.done[i])
        settle(f, i, NULL, status, code);
}

static void on_error_reply(dl_fan *f, int i, redisReply *r) {
    int code = dl_srv_code(r), rr;
    if (code == DL_SRV_NOSCRIPT && f->script != NULL && !f->eval[i] &&
        f->tries[i] < DL_FAN_MAX_TRIES) {
        freeReplyObject(r);
        f->eval[i] = 1;
        f->tries[i]++;
        if (send_one(f, i) != DLOCK_OK)
            settle(f, i, NULL, DLOCK_EIO, 0);
    } else if (try_again_later(f, i, code)) {
        freeReplyObject(r);
    } else if ((rr = redirected(f, i, r)) != 0) {
        if (rr < 0) /* r was freed: re-sent where the redirect said, or failed there */
            settle(f, i, NULL, DLOCK_EIO, 0);
    } else {
        f->call.unknown[i] = 0;
        settle(f, i, r, DLOCK_ESERVER, code);
    }
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
        f->call.unknown[i] |= sent && status == DLOCK_EIO;
        on_failed(f, i, status);
    } else if (r->type == REDIS_REPLY_ERROR) {
        on_error_reply(f, i, r);
    } else {
        f->call.unknown[i] = 0;
        settle(f, i, r, DLOCK_OK, DL_SRV_NONE);
    }
    maybe_complete(f);
}

/* Copy the request's arguments: the caller's buffers are gone by the time
 * a retry is sent. */
/* A new fan, zeroed, with room after it for req's arguments (their
 * pointers, lengths and bytes, NUL-terminated, and the routing key): one
 * allocation, freed with the fan. Only the fan itself is zeroed; copy_req
 * writes the rest. */
static dl_fan *fan_alloc(const dl_req *req) {
    size_t total = req->klen + 1;
    for (int i = 0; i < req->argc; i++)
        total += req->lens[i] + 1;
    size_t head = (sizeof(dl_fan) + 15) & ~(size_t)15;
    size_t arrays = (size_t)req->argc * (sizeof(const char *) + sizeof(size_t));
    dl_fan *f = malloc(head + arrays + total);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    f->argv = (const char **)(void *)((char *)f + head);
    f->lens = (size_t *)(void *)(f->argv + req->argc);
    f->buf = (char *)(f->lens + req->argc);
    return f;
}

/* Copy req into f (fan_alloc made the room). */
static void copy_req(dl_fan *f, const dl_req *req) {
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
}

/* Set up target i of n. */
static void target_init(dl_fan *f, int i) {
    f->call.status[i] = DLOCK_EIO;
    f->slot[i].f = f;
    f->slot[i].i = i;
    f->tries[i] = 1;
}

/* Send to every target the topology gives now (or park the one target
 * of a topology that is discovering). Returns how many are on their way. */
static int first_send(dl_fan *f) {
    dl_targets tg;
    int rc = dl_topo_targets(f->topo, f->key, f->klen, &tg, park_for(f, 0));
    if (rc == DL_TOPO_PENDING || rc != DLOCK_OK || tg.n < 1) {
        /* A routed topology: one target, with no server yet. */
        f->call.n = 1;
        f->call.quorum = 1;
        target_init(f, 0);
        if (rc == DL_TOPO_PENDING)
            return 1;
        settle_why(f, 0);
        return 0;
    }
    int queued = 0;
    f->call.n = tg.n;
    f->call.quorum = tg.n / 2 + 1;
    for (int i = 0; i < tg.n; i++) {
        target_init(f, i);
        f->pipes[i] = tg.pipes[i];
        f->call.conns[i] = &tg.pipes[i]->conn;
    }
    for (int i = 0; i < tg.n; i++) {
        int src = send_one(f, i);
        if (src == DLOCK_OK)
            queued++;
        else
            settle(f, i, NULL, src == DLOCK_ENOMEM ? DLOCK_ENOMEM : DLOCK_EIO, 0);
    }
    return queued;
}

dl_fan *dl_fan_start(dl_topo *topo, const dl_req *req, int64_t deadline_us, dl_heap *heap,
                     dl_decided_fn decided, dl_fan_done_fn done, void *arg, int *rc) {
    dl_fan *f = req->argc <= DL_REQ_MAX_ARGV ? fan_alloc(req) : NULL;
    if (f == NULL) {
        *rc = DLOCK_ENOMEM;
        return NULL;
    }
    copy_req(f, req);
    *rc = DLOCK_OK;
    dl_timer_init(&f->grace, grace_over);
    dl_timer_init(&f->again, again_due);
    f->heap = heap;
    f->topo = topo;
    f->deadline_us = deadline_us;
    f->decided = decided;
    f->done = done;
    f->arg = arg;
    f->sent_us = dl_mono_us();
    f->span_us = deadline_us > f->sent_us ? deadline_us - f->sent_us : 0;
    f->park.f = f;
    if (first_send(f) == 0)
        f->completed = 1;
    return f;
}

int dl_fan_sent(const dl_fan *f) { return f->sends > 0; }

void dl_fan_put(dl_fan *f) {
    if (f == NULL)
        return;
    f->put = 1;
    dl_heap_disarm(f->heap, &f->grace);
    unpark(f); /* a discovery's end no longer concerns it */
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

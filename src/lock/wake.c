/* wake.c - the engine's wake-up subscription: one pub/sub connection per
 * server a hand-over can come from, on the engine's own channel. A release
 * that hands a lock to a queued waiter PUBLISHes "<token> <fence>" there,
 * which ends that waiter's wait at once (engine.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "resp.h"

/* "<token> <fence>" on our channel: the release handed a lock to the
 * waiter with that token. */
static void on_wake(dl_pipe *p, redisReply *r) {
    dl_engine *e = p->owner;
    const redisReply *msg = r->element[2];
    if (msg->type == REDIS_REPLY_STRING && msg->len > DL_TOKEN_HEX &&
        msg->str[DL_TOKEN_HEX] == ' ') {
        int64_t fence = 0;
        for (size_t i = DL_TOKEN_HEX + 1;
             i < msg->len && msg->str[i] >= '0' && msg->str[i] <= '9'; i++) {
            int d = msg->str[i] - '0';
            if (fence > (INT64_MAX - d) / 10) {
                fence = -1; /* not an int64: not a hand-over of ours */
                break;
            }
            fence = fence * 10 + d;
        }
        for (dl_aop *op = e->ops; fence >= 0 && op != NULL; op = op->next) {
            if (op->on_wake != NULL && op->push &&
                memcmp(op->token, msg->str, DL_TOKEN_HEX) == 0) {
                op->on_wake(op, fence);
                break;
            }
        }
    }
    freeReplyObject(r);
}

/* The ops that waited for the subscription go on, subscribed or not (if
 * not, their timers still catch a hand-over, only later). */
static void restart_subwaiters(dl_engine *e) {
    dl_aop *next;
    for (dl_aop *op = e->ops; op != NULL; op = next) {
        next = op->next;
        if (op->on_subscribed != NULL)
            op->on_subscribed(op);
    }
}

/* The aggregate of the subscriptions: PENDING while one is, else READY
 * if any is (a hand-over from the others is found by the next attempt). */
void dl_engine_sub_aggregate(dl_engine *e) {
    int pending = 0, ready = 0;
    for (int i = 0; i < e->nsubs; i++) {
        pending |= e->sub_st[i] == DL_SUB_PENDING;
        ready |= e->sub_st[i] == DL_SUB_READY;
    }
    e->sub_state = pending ? DL_SUB_PENDING : ready ? DL_SUB_READY : DL_SUB_NONE;
}

static void on_subscribed(void *arg, redisReply *r, int status, int sent) {
    dl_pipe *p = arg;
    dl_engine *e = p->owner;
    (void)sent;
    int ok = status == DLOCK_OK && r != NULL && r->type == REDIS_REPLY_ARRAY;
    if (r != NULL)
        freeReplyObject(r);
    e->sub_st[p - e->subs] = ok ? DL_SUB_READY : DL_SUB_NONE;
    int was = e->sub_state;
    dl_engine_sub_aggregate(e);
    if (e->flushing || was != DL_SUB_PENDING || e->sub_state == DL_SUB_PENDING)
        return;
    restart_subwaiters(e);
}

/* Routed deployments: the subscription lives on the key's server (the
 * master a failover may have moved). Moves it there if the server
 * changed. On Cluster every node hears every PUBLISH: a subscription that
 * stands (or is being made) stays where it is. While the topology
 * discovers that server, the subscription is PENDING (ops wait for it, at
 * most their PH_SUBWAIT timer) and dl_engine_sub_found goes on. 0: not now. */
static int sub_follow(dl_engine *e, const char *key, size_t klen) {
    if (!e->routed)
        return 1;
    if (e->c->url.kind == DL_URL_CLUSTER && e->sub_st[0] != DL_SUB_NONE)
        return 1;
    dl_targets tg;
    int rc = dl_topo_targets(&e->topo, key, klen, &tg, &e->sub_wait);
    if (rc == DL_TOPO_PENDING) {
        char *k = malloc(klen + 1);
        if (k != NULL) {
            memcpy(k, key, klen);
            free(e->sub_key);
            e->sub_key = k;
            e->sub_klen = klen;
            if (e->sub_st[0] == DL_SUB_NONE) {
                e->sub_st[0] = DL_SUB_PENDING;
                e->sub_parked = 1;
            }
        } else {
            dl_topo_unwait(&e->sub_wait);
        }
        dl_engine_sub_aggregate(e);
        return 0;
    }
    if (rc != DLOCK_OK || tg.n < 1)
        return 0; /* no server known: the op's own request will say why */
    const dl_conn *t = &tg.pipes[0]->conn, *s = &e->subs[0].conn;
    if (s->port == t->port && strcmp(s->host, t->host) == 0 && strcmp(s->path, t->path) == 0)
        return 1;
    dl_pipe_close(&e->subs[0], DLOCK_EIO, "the master moved");
    dl_pipe_init(&e->subs[0], t->is_unix ? NULL : t->host, t->port, t->is_unix ? t->path : NULL,
                 &e->c->cfg);
    e->subs[0].owner = e;
    e->sub_st[0] = DL_SUB_NONE;
    dl_engine_sub_aggregate(e);
    return 1;
}

/* The discovery the subscription waited for ended: subscribe where it
 * found the key's server, or (it failed) let the waiting ops go on. */
void dl_engine_sub_found(dl_topo_wait *w, int status) {
    dl_engine *e = (dl_engine *)((char *)w - offsetof(dl_engine, sub_wait));
    if (e->sub_parked && e->sub_st[0] == DL_SUB_PENDING)
        e->sub_st[0] = DL_SUB_NONE;
    e->sub_parked = 0;
    int was = e->sub_state;
    dl_engine_sub_aggregate(e);
    if (status == DLOCK_OK && e->sub_key != NULL)
        dl_engine_subscribe(e, e->sub_key, e->sub_klen);
    if (e->flushing || was != DL_SUB_PENDING || e->sub_state == DL_SUB_PENDING)
        return;
    restart_subwaiters(e);
}

void dl_engine_subscribe(dl_engine *e, const char *key, size_t klen) {
    if (!sub_follow(e, key, klen))
        return;
    const char *argv[2] = {"SUBSCRIBE", e->chan};
    size_t lens[2] = {9, e->chan_len};
    int64_t deadline = dl_mono_us() + ((int64_t)e->c->opts.command_timeout_ms +
                                       e->c->opts.connect_timeout_ms) * 1000;
    for (int i = 0; i < e->nsubs; i++) {
        if (e->sub_st[i] != DL_SUB_NONE)
            continue;
        e->subs[i].on_push = on_wake;
        if (dl_pipe_send(&e->subs[i], 2, argv, lens, deadline, on_subscribed, &e->subs[i]) ==
            DLOCK_OK)
            e->sub_st[i] = DL_SUB_PENDING;
    }
    dl_engine_sub_aggregate(e);
}


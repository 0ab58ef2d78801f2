/* engine.c - the engine's loop: poll set (kept by watch.c), pipes,
 * timers, the wake-up subscription, and the queue of finished operations
 * (see engine.h). */
#include "engine.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "resp.h"

/* ---- creation ---- */

/* The topology's hooks: the engine watches every pipe it makes. */
static int watch_pipe(void *arg, dl_pipe *p) {
    dl_engine *e = arg;
    if (e->nall == e->capall) {
        int ncap = e->capall ? e->capall * 2 : 8;
        dl_pipe **na = realloc(e->all, (size_t)ncap * sizeof *na);
        if (na == NULL)
            return DLOCK_ENOMEM;
        e->all = na;
        e->capall = ncap;
    }
    e->all[e->nall++] = p;
    return DLOCK_OK;
}

static void unwatch_pipe(void *arg, dl_pipe *p) {
    dl_engine *e = arg;
    for (int i = 0; i < e->nall; i++)
        if (e->all[i] == p) {
            e->all[i] = e->all[--e->nall];
            return;
        }
}

int dl_engine_adopt(dl_engine *e, dl_pipe *p) { return watch_pipe(e, p); }

void dl_engine_disown(dl_engine *e, dl_pipe *p) { unwatch_pipe(e, p); }

static int engine_init(dl_engine *e, dlock_client *c) {
    e->c = c;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0)
        return dl_seterr(&c->ctx, DLOCK_EIO, "epoll_create1: %s", strerror(errno));
    const dl_url *u = &c->url;
    e->routed = u->kind == DL_URL_SENTINEL || u->kind == DL_URL_CLUSTER;
    dl_topo *t = &e->topo;
    t->url = u;
    t->cfg = &c->cfg;
    t->connect_timeout_ms = c->opts.connect_timeout_ms;
    t->command_timeout_ms = c->opts.command_timeout_ms;
    t->heap = &e->heap;
    t->watch = watch_pipe;
    t->unwatch = unwatch_pipe;
    t->watch_arg = e;
    if (dl_topo_init(t) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    e->n = e->routed ? 1 : t->n;
    e->sub_wait.fn = dl_engine_sub_found;
    /* Waiters are woken by pub/sub from every server that can hand a lock
     * over: each Redlock master (routed: sub_follow moves subs[0]). */
    e->nsubs = e->n;
    for (int i = 0; i < e->nsubs; i++) {
        int k = e->routed ? 0 : i;
        dl_pipe_init(&e->subs[i], u->unix_socket ? NULL : u->hosts[k].host,
                     u->unix_socket ? 0 : u->hosts[k].port, u->unix_socket ? u->path : NULL,
                     &c->cfg);
        e->subs[i].owner = e;
    }
    char id[DL_TOKEN_HEX + 1];
    if (dl_pool_token(&c->pool, id) != 0)
        return dl_seterr(&c->ctx, DLOCK_EIO, "getrandom failed");
    if (dl_wake_channel(&c->proto, id, e->chan, sizeof e->chan, &e->chan_len) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "key prefix too long for the wake channel");
    e->next_id = 1;
    return DLOCK_OK;
}

static dl_engine *engine_for(dlock_client *c, dl_engine **slot, int blocking, int *rc) {
    *rc = DLOCK_OK;
    if (*slot != NULL)
        return *slot;
    dl_engine *e = calloc(1, sizeof *e);
    if (e == NULL) {
        *rc = dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
        return NULL;
    }
    e->epfd = -1;
    e->blocking = blocking;
    *rc = engine_init(e, c);
    if (*rc != DLOCK_OK) {
        dl_topo_free(&e->topo);
        if (e->epfd >= 0)
            close(e->epfd);
        free(e->all);
        free(e);
        return NULL;
    }
    *slot = e;
    return e;
}

dl_engine *dl_engine_get(dlock_client *c, int *rc) { return engine_for(c, &c->eng, 0, rc); }

dl_engine *dl_engine_blocking(dlock_client *c, int *rc) {
    return engine_for(c, &c->beng, 1, rc);
}


static void op_free(dl_aop *op) {
    /* A wait may sleep on its timer when the client is freed: the heap
     * must not keep pointing into the op. */
    dl_heap_disarm(&op->e->heap, &op->timer);
    if (op->on_free != NULL)
        op->on_free(op);
    dl_fan_put(op->fan);
    if (op->has_keys)
        dl_keys_free(&op->keys);
    free(op->name);
    if (op->kind == DL_AOP_ACQUIRE)
        dl_lock_destroy(op->lock); /* made but never delivered: no keepalive yet */
    free(op);
}

void dl_engine_free(dl_engine *e) {
    if (e == NULL)
        return;
    /* No callback runs from here on. The ops go first: that lets go of
     * their fans, so the requests still in the pipes fail into fans that
     * only free themselves (nothing is re-sent into a closing pipe). */
    e->flushing = 1;
    while (e->kas != NULL)
        dl_eka_stop(e->kas);
    /* The heap marks its timers disarmed: before the ops that embed them
     * are freed (a wait sleeping on its timer is one). */
    dl_heap_free(&e->heap);
    while (e->ops != NULL) {
        dl_aop *op = e->ops;
        e->ops = op->next;
        op_free(op);
    }
    e->ops_tail = NULL;
    while (e->done_head != NULL) {
        dl_aop *op = e->done_head;
        e->done_head = op->done_next;
        op_free(op);
    }
    /* The topology closes and frees its pipes: their requests fail into
     * fans that only free themselves, and into its own discovery steps,
     * which start nothing now. */
    dl_topo_unwait(&e->sub_wait);
    free(e->sub_key);
    dl_topo_free(&e->topo);
    free(e->all);
    for (int i = 0; i < e->nsubs; i++)
        dl_pipe_close(&e->subs[i], DLOCK_ECANCELED, "client freed");
    close(e->epfd);
    free(e);
}

void dl_eka_stop(dl_eka *k) {
    dl_engine *e = k->e;
    dl_heap_disarm(&e->heap, &k->timer);
    dl_fan_put(k->fan);
    dl_fan_put(k->gfan);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        e->kas = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    e->nkas--;
    k->l->eka = NULL;
    dl_keyset_free(&k->keys);
    free(k);
}

/* A lost notice of l still waiting in the done queue is dropped: an
 * earlier callback of the same process call stopped l's keepalive or is
 * freeing l, and nothing may be told about l after that. */
void dl_engine_drop_lost(dl_engine *e, const dlock_lock *l) {
    dl_aop *prev = NULL, *next;
    for (dl_aop *op = e->done_head; op != NULL; op = next) {
        next = op->done_next;
        if (op->kind != DL_AOP_LOST || op->lock != l) {
            prev = op;
            continue;
        }
        if (prev != NULL)
            prev->done_next = next;
        else
            e->done_head = next;
        if (e->done_tail == op)
            e->done_tail = prev;
        op_free(op);
    }
}

/* ---- operations ---- */

dl_aop *dl_aop_new(dl_engine *e, int kind, dlock_done_fn cb, void *ud) {
    return dl_aop_new_with(e, kind, cb, ud, 0);
}

dl_aop *dl_aop_new_with(dl_engine *e, int kind, dlock_done_fn cb, void *ud, size_t extra) {
    size_t head = (sizeof(dl_aop) + 15) & ~(size_t)15;
    dl_aop *op = malloc(head + extra);
    if (op == NULL)
        return NULL;
    memset(op, 0, sizeof *op);
    op->extra = extra > 0 ? (char *)op + head : NULL;
    dl_timer_init(&op->timer, NULL);
    op->e = e;
    op->id = e->next_id++;
    op->kind = kind;
    op->cb = cb;
    op->ud = ud;
    /* Appended: ops waiting together (for the subscription) go on in the
     * order they started, which is the order they queue in (FIFO). */
    op->prev = e->ops_tail;
    if (e->ops_tail != NULL)
        e->ops_tail->next = op;
    else
        e->ops = op;
    e->ops_tail = op;
    e->nops++;
    return op;
}

int dl_aop_name(dl_aop *op, const char *name, size_t name_len) {
    op->name = malloc(name_len + 1);
    if (op->name == NULL)
        return DLOCK_ENOMEM;
    memcpy(op->name, name, name_len);
    op->name[name_len] = '\0';
    op->name_len = name_len;
    if (dl_keys_make(&op->e->c->proto, name, name_len, &op->keys) != DLOCK_OK)
        return DLOCK_ENOMEM;
    op->has_keys = 1;
    return DLOCK_OK;
}

static void unlink_op(dl_aop *op) {
    dl_engine *e = op->e;
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        e->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        e->ops_tail = op->prev;
    op->prev = op->next = NULL;
    e->nops--;
}

void dl_aop_discard(dl_aop *op) {
    unlink_op(op);
    op_free(op);
}

void dl_aop_finish(dl_aop *op, int status) {
    dl_engine *e = op->e;
    if (op->finished)
        return;
    op->finished = 1;
    op->status = status;
    if (op->child != NULL) /* stop awaiting it: it goes on alone */
        op->child->parent = NULL;
    if (op->parent != NULL)
        op->parent->child = NULL;
    op->child = op->parent = NULL;
    dl_heap_disarm(&e->heap, &op->timer);
    dl_fan_put(op->fan);
    op->fan = NULL;
    unlink_op(op);
    if (op->cb == NULL && op->on_lost == NULL) { /* internal op: nobody to tell */
        op_free(op);
        return;
    }
    op->done_next = NULL;
    if (e->done_tail != NULL)
        e->done_tail->done_next = op;
    else
        e->done_head = op;
    e->done_tail = op;
}

int dl_aop_drop_fan(dl_aop *op) {
    int sent = dl_fan_sent(op->fan);
    dl_fan_put(op->fan);
    op->fan = NULL;
    if (!sent)
        dl_seterr(&op->x, DLOCK_EIO, "lock '%s': the deadline passed while looking for its server: %s",
                  op->name, dl_topo_progress(&op->e->topo));
    return sent;
}

void dl_aop_timer(dl_aop *op, int64_t at_us) {
    if (dl_heap_arm(&op->e->heap, &op->timer, at_us) != 0) {
        dl_seterr(&op->x, DLOCK_ENOMEM, "out of memory");
        dl_aop_finish(op, DLOCK_ENOMEM);
    }
}

dl_fan *dl_engine_fan(dl_engine *e, const dl_req *req, int64_t deadline_us,
                      dl_decided_fn decided, dl_fan_done_fn done, void *arg, int *rc) {
    return dl_fan_start(&e->topo, req, deadline_us, &e->heap, decided, done, arg, rc);
}

/* Send req on the key's servers; the fan calls `done` (with op) when
 * settled. */
/* When a script request of op sent now is due: one command timeout, or
 * op's cap when that comes first. */
static int64_t step_deadline(const dl_aop *op) {
    int64_t d = dl_mono_us() + (int64_t)op->e->c->opts.command_timeout_ms * 1000;
    return op->cap_us != 0 && op->cap_us < d ? op->cap_us : d;
}

static int send_req(dl_aop *op, const dl_req *req, int64_t deadline_us, dl_decided_fn decided,
                    dl_fan_done_fn done) {
    dl_engine *e = op->e;
    int rc;
    dl_fan_put(op->fan);
    op->fan = NULL;
    op->sent_us = dl_mono_us();
    op->fan = dl_engine_fan(e, req, deadline_us, decided, done, op, &rc);
    if (op->fan == NULL)
        return dl_seterr(&op->x, rc, "out of memory");
    if (op->fan->completed) {
        /* Nothing could even be queued: report it now, as a send failure. */
        int st = dl_call_error(&op->x, &op->fan->call, "send");
        dl_fan_put(op->fan);
        op->fan = NULL;
        return st != DLOCK_OK ? st : DLOCK_EIO;
    }
    return DLOCK_OK;
}

/* Sentinel and Cluster with fencing: the script's failover floor argument
 * (docs/FAILOVER.md) after args[0..nargs), the ones between padded with
 * "-": "cluster" (the node reads its own epoch), or on Sentinel a
 * placeholder the fan fills per target (*floor_at, argv index). */
static int with_floor(const dl_aop *op, enum dl_script_id id, int nkeys, int nargs,
                      const char **args, size_t *lens, int *floor_at) {
    const dlock_client *c = op->e->c;
    int pos = op->e->routed && c->opts.fencing ? dl_script_floor_arg(id) : 0;
    *floor_at = 0;
    if (pos == 0 || nargs >= pos || pos > DL_REQ_MAX_ARGV - 3 - nkeys)
        return nargs;
    for (int i = nargs; i < pos - 1; i++)
        args[i] = "-", lens[i] = 1;
    int cluster = c->url.kind == DL_URL_CLUSTER;
    args[pos - 1] = cluster ? "cluster" : "";
    lens[pos - 1] = cluster ? 7 : 0;
    *floor_at = cluster ? 0 : 3 + nkeys + pos - 1;
    return pos;
}

/* Copy args into a[] and add the floor argument (with_floor). */
static int args_with_floor(const dl_aop *op, enum dl_script_id id, int nkeys, int nargs,
                           const char **args, const size_t *lens, const char **a, size_t *l,
                           int *floor_at) {
    if (nargs > 0) {
        memcpy(a, args, (size_t)nargs * sizeof *a);
        memcpy(l, lens, (size_t)nargs * sizeof *l);
    }
    return with_floor(op, id, nkeys, nargs, a, l, floor_at);
}

int dl_aop_script(dl_aop *op, enum dl_script_id id, int nargs, const char **args,
                  const size_t *lens, dl_decided_fn decided, dl_fan_done_fn done) {
    const char *argv[DL_REQ_MAX_ARGV], *a[DL_REQ_MAX_ARGV];
    size_t alens[DL_REQ_MAX_ARGV], l[DL_REQ_MAX_ARGV];
    dl_req req;
    int floor_at;
    if (nargs < 0 || nargs > DL_REQ_MAX_ARGV)
        return dl_seterr(&op->x, DLOCK_EINVAL, "too many script arguments");
    nargs = args_with_floor(op, id, DL_NKEYS, nargs, args, lens, a, l, &floor_at);
    if (dl_script_req(&op->e->c->proto, id, &op->keys, nargs, a, l, argv, alens, &req) !=
        DLOCK_OK)
        return dl_seterr(&op->x, DLOCK_EINVAL, "too many script arguments");
    req.floor_at = floor_at;
    return send_req(op, &req, step_deadline(op), decided, done);
}

int dl_aop_kscript(dl_aop *op, enum dl_script_id id, const dl_keyset *ks, int nargs,
                   const char **args, const size_t *lens, dl_decided_fn decided,
                   dl_fan_done_fn done) {
    const char *argv[DL_REQ_MAX_ARGV], *a[DL_REQ_MAX_ARGV];
    size_t alens[DL_REQ_MAX_ARGV], l[DL_REQ_MAX_ARGV];
    dl_req req;
    int floor_at;
    if (nargs < 0 || nargs > DL_REQ_MAX_ARGV)
        return dl_seterr(&op->x, DLOCK_EINVAL, "too many script arguments");
    nargs = args_with_floor(op, id, ks->n, nargs, args, lens, a, l, &floor_at);
    if (dl_keyset_req(&op->e->c->proto, id, ks, nargs, a, l, argv, alens, &req) != DLOCK_OK)
        return dl_seterr(&op->x, DLOCK_EINVAL, "too many script arguments");
    req.floor_at = floor_at;
    return send_req(op, &req, step_deadline(op), decided, done);
}

int dl_aop_command(dl_aop *op, int argc, const char **argv, const size_t *lens,
                   int64_t deadline_us, dl_fan_done_fn done) {
    /* The key routes it: WAIT must go to the connection that wrote the
     * lock (on a Cluster, its slot's master). */
    dl_req req = {.argc = argc, .argv = argv, .lens = lens, .key = op->keys.k[0],
                  .klen = op->keys.len[0]};
    return send_req(op, &req, deadline_us, dl_decided_majority, done);
}

/* Write what the connected pipes have queued. */
static void flush_all(dl_engine *e) {
    for (int i = 0; i < e->nall; i++)
        if (e->all[i]->conn.state == DL_CONN_READY)
            dl_conn_step(&e->all[i]->conn, 0);
}

/* A request was queued: write it now, so a start from the caller's code
 * goes out at once. From a callback (flushing), the requests of every
 * callback in this round are left queued: engine_process writes them
 * together after the last callback, in one write per connection instead
 * of one per request. */
void dl_engine_kick(dl_engine *e) {
    if (e->flushing)
        return;
    flush_all(e);
    dl_engine_watch_all(e);
    if (e->notify != NULL)
        e->notify(e->c, e->notify_ud);
}

/* ---- driving ---- */

static short poll_events(uint32_t ev) {
    return (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0) |
                   (ev & EPOLLERR ? POLLERR : 0) | (ev & EPOLLHUP ? POLLHUP : 0));
}

static void fire_timers(dl_engine *e, int64_t now) {
    dl_timer *t;
    while ((t = dl_heap_top(&e->heap)) != NULL && t->at_us <= now) {
        dl_heap_disarm(&e->heap, t);
        t->fire(t);
    }
}

static void run_callbacks(dl_engine *e) {
    e->flushing = 1;
    while (e->done_head != NULL) {
        dl_aop *op = e->done_head;
        e->done_head = op->done_next;
        if (e->done_head == NULL)
            e->done_tail = NULL;
        dlock_result res = {.op = op->id, .status = op->status, .lock = op->lock,
                            .fence = op->fence, .detail = op->status ? op->x.err : "",
                            .code = op->status ? op->x.code : 0};
        if (op->kind == DL_AOP_INSPECT && op->status == DLOCK_OK)
            res.holder = &op->holder;
        if (op->kind == DL_AOP_LOST) {
            op->on_lost(op->lock, op->status, op->ud);
        } else {
            op->cb(&res, op->ud);
        }
        op->lock = NULL; /* acquire: the callback owns it now */
        op_free(op);
    }
    e->flushing = 0;
}

/* A connection whose server may evict lock keys (maxmemory-policy other
 * than noeviction, asked on connect by conn.c) is reported once per
 * connection. With require_noeviction the acquire fails too
 * (dl_engine_unsafe, which every kind's attempt asks: dl_acq_unsafe). */
static void tell_policy(dl_engine *e, dl_conn *cn) {
    if (cn->policy != DL_POLICY_UNSAFE || cn->policy_told || e->quiet)
        return;
    cn->policy_told = 1;
    char msg[400];
    snprintf(msg, sizeof msg,
             "%s: maxmemory-policy is %s: a full server may evict lock keys and fence "
             "counters, giving one lock to two holders; only noeviction keeps leases safe "
             "(see dlock doctor)",
             cn->addr, cn->policy_name);
    dl_warn(&e->c->ctx, msg);
}

int dl_engine_unsafe(dl_engine *e, dl_ctx *x, const dl_call *call) {
    for (int i = 0; i < call->n; i++) {
        dl_conn *cn = call->conns[i];
        if (cn == NULL) /* no server was found for it */
            continue;
        tell_policy(e, cn);
        if (e->c->opts.require_noeviction && cn->policy == DL_POLICY_UNSAFE) {
            dl_seterr(x, DLOCK_ENOTSUP,
                      "%s: maxmemory-policy is %s, not noeviction: lock keys may be evicted "
                      "(require_noeviction is set)",
                      cn->addr, cn->policy_name);
            x->code = DL_SRV_EVICTION;
            return 1;
        }
    }
    return 0;
}

/* Advance e after epoll reported evs[0..n). */
static int engine_process(dl_engine *e, const struct epoll_event *evs, int n) {
    for (int i = 0; i < n; i++) {
        dl_pipe *p = evs[i].data.ptr;
        dl_conn_step(&p->conn, poll_events(evs[i].events));
    }
    int64_t now = dl_mono_us();
    for (int i = 0; i < e->nall; i++) {
        tell_policy(e, &e->all[i]->conn);
        dl_pipe_check(e->all[i], now);
    }
    for (int i = 0; i < e->nsubs; i++)
        dl_pipe_check(&e->subs[i], now);
    fire_timers(e, now);
    flush_all(e);
    run_callbacks(e);
    flush_all(e);
    dl_engine_watch_all(e);
    return e->nops + e->nkas;
}

static int64_t engine_timeout(const dl_engine *e) {
    if (e->done_head != NULL)
        return 0;
    int64_t at = 0;
    dl_timer *t = dl_heap_top(&e->heap);
    if (t != NULL)
        at = t->at_us;
    for (int i = 0; i < e->nall + e->nsubs; i++) {
        int64_t d = dl_pipe_deadline(i < e->nall ? e->all[i] : &e->subs[i - e->nall]);
        if (d != 0 && (at == 0 || d < at))
            at = d;
    }
    if (at == 0)
        return -1;
    int64_t left = at - dl_mono_us();
    return left <= 0 ? 0 : (left + 999) / 1000;
}

/* Requests queued but not yet written whole (a connect still under way). */
static int unwritten(const dl_engine *e) {
    for (int i = 0; i < e->nall; i++) {
        const dl_conn *c = &e->all[i]->conn;
        if (c->ctx != NULL && e->all[i]->len > 0 &&
            (c->state == DL_CONN_CONNECTING || c->wr_bytes < c->app_bytes))
            return 1;
    }
    return 0;
}

static dl_pipe *pipe_at(dl_engine *e, int i) {
    return i < e->nall ? e->all[i] : &e->subs[i - e->nall];
}

/* How long a blocking engine's read may wait at a time (wait_once). The
 * read waits only while the next deadline is at least two slices away: the
 * kernel rounds the slice up to its tick (at most 10 ms), so a slice ends
 * well before any deadline, and the last stretch before one is waited in
 * epoll_wait, to the millisecond, as before. */
#define READ_SLICE_MS 50

/* The one pipe e waits for, when it waits for exactly one, to read a
 * reply: a blocking call on one server, between its request and the reply.
 * The connections' own state, not the poll set's (dl_engine_watch_all may not have
 * run since the request was queued). A sleep on a timer alone (a backoff)
 * stays in epoll_wait: one wake-up, not one per slice. */
static dl_pipe *sole_reader_now(dl_engine *e) {
    dl_pipe *one = NULL;
    for (int i = 0; i < e->nall + e->nsubs; i++) {
        dl_pipe *p = pipe_at(e, i);
        short ev = dl_conn_events(&p->conn);
        if (ev == 0)
            continue;
        if (one != NULL || ev != POLLIN || p->conn.state != DL_CONN_READY)
            return NULL;
        one = p;
    }
    return one != NULL && one->len > 0 ? one : NULL;
}

/* One wait of a blocking engine, at most t ms (-1: no deadline), then the
 * processing of what it found. With one socket to wait for, to read only, the wait is that
 * socket's read itself (plain transports: dl_conn_read_wait), so a round
 * trip costs a write and a read, as a blocking hiredis call does, instead
 * of a write, an epoll_wait and a read. Otherwise, and with TLS, epoll_wait.
 * Never for the async engine: its caller's loop does the waiting. */
static void wait_once(dl_engine *e, int64_t t) {
    struct epoll_event evs[64];
    if (e->blocking && (t < 0 || t >= 2 * READ_SLICE_MS)) {
        dl_pipe *p = sole_reader_now(e);
        if (p != NULL && dl_conn_read_wait(&p->conn, READ_SLICE_MS) == 0) {
            engine_process(e, evs, 0);
            return;
        }
    }
    int n = epoll_wait(e->epfd, evs, 64, t < 0 || t > 1000 ? 1000 : (int)t);
    engine_process(e, evs, n < 0 ? 0 : n);
}

void dl_engine_run_until(dl_engine *e, const int *done, int64_t until_us) {
    while (!*done) {
        int64_t t = engine_timeout(e);
        if (until_us != 0) {
            int64_t left = until_us - dl_mono_us();
            if (left <= 0)
                break;
            left = (left + 999) / 1000;
            if (t < 0 || t > left)
                t = left;
        }
        wait_once(e, t);
    }
    /* Nothing drives this engine between blocking calls: requests a
     * settled call left behind (a Redlock minority's copy whose connect is
     * still under way) get a few more milliseconds to go out, so they run
     * now rather than at the next call. */
    struct epoll_event evs[64];
    int64_t until = dl_mono_us() + 10000;
    while (unwritten(e) && dl_mono_us() < until) {
        int n = epoll_wait(e->epfd, evs, 64, 1);
        engine_process(e, evs, n < 0 ? 0 : n);
    }
}

/* ---- public ---- */

#define SOLE_NONE (-1) /* no socket is watched */
#define SOLE_MANY (-2) /* more than one, or one that waits to write */

/* Which socket dlock_client_process should read: when the engine watches
 * exactly one, for reading only (a client with one server that has not
 * waited, so no subscriber), it is read directly: its readability is why
 * the loop woke us, and asking the poll set first would cost every round
 * trip one more system call (a read that finds nothing costs the same).
 * Its index (all, then subs), or SOLE_NONE / SOLE_MANY. */
static int sole_reader(dl_engine *e) {
    int one = SOLE_NONE;
    for (int i = 0; i < e->nall + e->nsubs; i++) {
        dl_pipe *p = pipe_at(e, i);
        if (!p->watched)
            continue;
        if (one != SOLE_NONE || p->watched_ev != POLLIN || p->conn.state != DL_CONN_READY)
            return SOLE_MANY;
        one = i;
    }
    return one;
}

int dlock_client_fd(dlock_client *c) {
    if (c == NULL || dl_refuse_forked(c) != DLOCK_OK)
        return -1;
    int rc;
    dl_engine *e = dl_engine_get(c, &rc);
    return e != NULL ? e->epfd : -1;
}

int64_t dlock_client_timeout(dlock_client *c) {
    if (c == NULL || c->eng == NULL || dl_forked(c))
        return -1;
    return engine_timeout(c->eng);
}

int dlock_client_process(dlock_client *c) {
    if (c == NULL || dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    if (c->eng == NULL)
        return 0;
    if (c->eng->flushing)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "dlock_client_process called from a callback");
    dl_engine *e = c->eng;
    struct epoll_event evs[64];
    if (e->sock_fn != NULL) /* the loop watches the sockets: timers only */
        return engine_process(e, evs, 0);
    int one = sole_reader(e);
    if (one >= 0) {
        evs[0] = (struct epoll_event){.events = EPOLLIN, .data.ptr = pipe_at(e, one)};
        return engine_process(e, evs, 1);
    }
    int n = one == SOLE_NONE ? 0 : epoll_wait(e->epfd, evs, 64, 0);
    return engine_process(e, evs, n < 0 ? 0 : n);
}

int dlock_client_process_fd(dlock_client *c, int fd, int revents) {
    if (c == NULL || dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    if (c->eng == NULL)
        return 0;
    dl_engine *e = c->eng;
    if (e->flushing)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "dlock_client_process_fd called from a callback");
    struct epoll_event ev = {
        .events = (revents & DLOCK_READABLE ? EPOLLIN : 0) | (revents & DLOCK_WRITABLE ? EPOLLOUT : 0)};
    for (int i = 0; fd >= 0 && i < e->nall + e->nsubs; i++) {
        dl_pipe *p = pipe_at(e, i);
        if (p->watched && p->watched_gen == p->conn.gen && dl_conn_fd(&p->conn) == fd) {
            ev.data.ptr = p;
            return engine_process(e, &ev, 1);
        }
    }
    return engine_process(e, &ev, 0);
}

int dlock_client_set_socket_fn(dlock_client *c, dlock_socket_fn fn, void *userdata) {
    if (c == NULL || dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    int rc;
    dl_engine *e = dl_engine_get(c, &rc);
    if (e == NULL)
        return rc;
    dl_engine_watch_with(e, fn, userdata);
    return DLOCK_OK;
}

void dlock_client_set_notify(dlock_client *c, dlock_notify_fn fn, void *userdata) {
    if (c == NULL || dl_forked(c))
        return;
    int rc;
    dl_engine *e = dl_engine_get(c, &rc);
    if (e == NULL)
        return;
    e->notify = fn;
    e->notify_ud = userdata;
}

int dlock_op_cancel(dlock_client *c, uint64_t id) {
    if (c == NULL || dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    dl_engine *e = c->eng;
    for (dl_aop *op = e ? e->ops : NULL; op != NULL; op = op->next) {
        if (op->id != id || op->cb == NULL || op->finished)
            continue;
        if (op->on_cancel != NULL) {
            op->on_cancel(op);
        } else {
            /* Release, extend, inspect: their request stays in the pipe (it
             * cannot be taken back); the caller just stops waiting. */
            dl_seterr(&op->x, DLOCK_ECANCELED, "cancelled");
            dl_aop_finish(op, DLOCK_ECANCELED);
        }
        dl_engine_kick(e);
        return DLOCK_OK;
    }
    return dl_seterr(&c->ctx, DLOCK_EINVAL, "no operation %llu in flight", (unsigned long long)id);
}

void dl_client_cluster_stats(const dlock_client *c, dl_cluster_stats *out) {
    memset(out, 0, sizeof *out);
    if (c->eng != NULL)
        dl_cluster_counters(&c->eng->topo, out);
    if (c->beng != NULL)
        dl_cluster_counters(&c->beng->topo, out);
}

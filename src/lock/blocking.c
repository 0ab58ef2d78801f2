/* blocking.c - the blocking calls as a thin loop over the engine: start
 * the operation on the client's blocking engine, then wait in epoll for
 * its sockets and timers (or, for one plain socket's reply, in its read:
 * dl_engine_run_until) until its callback has run (curl's easy interface
 * over its multi). The contract of each call (statuses,
 * deadlines, events, the detail string) is the operation's own; this
 * file only carries the result back into the client's context. */
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "kinds.h"

typedef struct bl_out {
    int done;
    int status;
    int code;
    dlock_lock *lock;
    dlock_holder holder;
    char detail[sizeof(((dl_ctx *)0)->err)];
} bl_out;

static void bl_done(const dlock_result *r, void *ud) {
    bl_out *o = ud;
    o->done = 1;
    o->status = r->status;
    o->code = r->code;
    o->lock = r->status == DLOCK_OK ? r->lock : NULL;
    if (r->holder != NULL)
        o->holder = *r->holder;
    memcpy(o->detail, r->detail, strnlen(r->detail, sizeof o->detail - 1));
}

/* Run the op started with rc on e to its end; the status, with the
 * detail and server code in the client's context. */
static int finish(dl_engine *e, int rc, bl_out *o) {
    dlock_client *c = e->c;
    if (rc != DLOCK_OK)
        return rc; /* refused at the start: the context says why */
    dl_engine_run_until(e, &o->done, 0);
    if (o->status == DLOCK_OK) {
        dl_clearerr(&c->ctx);
        return DLOCK_OK;
    }
    dl_seterr(&c->ctx, o->status, "%s", o->detail);
    c->ctx.code = o->code;
    return o->status;
}

static dl_engine *engine(dlock_client *c, int *rc) { return dl_engine_blocking(c, rc); }

/* Run the acquire started with rc to its end; its lock into *out. */
static int acquired(dl_engine *e, int rc, bl_out *o, dlock_lock **out) {
    rc = finish(e, rc, o);
    *out = o->lock;
    return rc;
}

int dl_block_acquire(dlock_client *c, const char *name, size_t len, int64_t ttl_ms, int mode,
                     int64_t timeout_ms, int is_wait, dlock_lock **out) {
    int rc;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    bl_out o = {0};
    rc = dl_acquire_start(e, name, len, ttl_ms, mode, timeout_ms, is_wait, bl_done, &o, NULL);
    return acquired(e, rc, &o, out);
}

int dl_block_kind(dlock_client *c, const struct dl_kreq *r, int64_t ttl_ms, int mode,
                  int64_t timeout_ms, int is_wait, dlock_lock **out) {
    int rc;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    bl_out o = {0};
    rc = dl_kind_start(e, r, ttl_ms, mode, timeout_ms, is_wait, bl_done, &o, NULL);
    return acquired(e, rc, &o, out);
}

int dl_block_release(dlock_lock *l) {
    int rc;
    dl_engine *e = engine(l->client, &rc);
    if (e == NULL)
        return rc;
    bl_out o = {0};
    rc = finish(e, l->nparts > 0 ? dl_parts_start(e, l, 0, 0, bl_done, &o, NULL)
                                 : dl_release_start(e, l, bl_done, &o, NULL),
                &o);
    if (rc != DLOCK_OK && rc != DLOCK_ENOTHELD)
        atomic_store(&l->valid_until_us, 0); /* it may have run: stop claiming */
    return rc;
}

int dl_block_extend(dlock_lock *l, int64_t ttl_ms) {
    int rc;
    dl_engine *e = engine(l->client, &rc);
    if (e == NULL)
        return rc;
    bl_out o = {0};
    return finish(e, l->nparts > 0 ? dl_parts_start(e, l, 1, ttl_ms, bl_done, &o, NULL)
                                   : dl_extend_start(e, l, ttl_ms, bl_done, &o, NULL),
                  &o);
}

int dl_block_inspect(dlock_client *c, const char *name, size_t len, dlock_holder *out) {
    int rc;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    bl_out o = {0};
    rc = finish(e, dl_inspect_start(e, name, len, bl_done, &o, NULL), &o);
    if (rc == DLOCK_OK)
        *out = o.holder;
    return rc;
}

/* A handle for (name, token) that lives for one call: what the token
 * functions release or extend. Made like an acquired handle, valid now. */
static dlock_lock *token_handle(dlock_client *c, const char *name, size_t len, const char *token,
                                int64_t ttl_ms) {
    dlock_lock *l = dl_lock_new(c, name, len);
    if (l == NULL)
        return NULL;
    memcpy(l->token, token, DL_TOKEN_HEX);
    l->ttl_ms = ttl_ms;
    l->acquired_us = dl_mono_us();
    atomic_store(&l->valid_until_us, INT64_MAX);
    return l;
}

int dl_block_by_token(dlock_client *c, const char *name, size_t len, const char *token,
                      int64_t ttl_ms) {
    dlock_lock *l = token_handle(c, name, len, token, ttl_ms > 0 ? ttl_ms : 1);
    if (l == NULL)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    int rc = ttl_ms > 0 ? dl_block_extend(l, ttl_ms) : dl_block_release(l);
    if ((rc == DLOCK_ESERVER || rc == DLOCK_ENOQUORUM) && c->ctx.code == DL_SRV_WRONGTYPE) {
        /* Not a mutex: a semaphore permit or an rw lock holder, maybe (on
         * a Redlock set every master refuses the mutex script: no
         * majority). */
        l->kind = DL_LK_SEM;
        atomic_store(&l->valid_until_us, INT64_MAX);
        rc = ttl_ms > 0 ? dl_block_extend(l, ttl_ms) : dl_block_release(l);
    }
    dl_lock_destroy(l);
    if (rc == DLOCK_ENOTHELD)
        dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held with that token", name);
    return rc;
}

static void call_done(dl_fan *f, void *arg) {
    (void)f;
    *(int *)arg = 1;
}

int dl_block_call(dlock_client *c, const dl_req *req, dl_decided_fn decided, dl_fan **out) {
    int rc;
    *out = NULL;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    int done = 0;
    int64_t deadline = dl_mono_us() + (int64_t)c->opts.command_timeout_ms * 1000;
    dl_fan *f = dl_engine_fan(e, req, deadline, decided, call_done, &done, &rc);
    if (f == NULL)
        return dl_seterr(&c->ctx, rc, "out of memory");
    if (!f->completed) {
        dl_engine_kick(e);
        dl_engine_run_until(e, &done, 0);
    }
    *out = f;
    return DLOCK_OK;
}

/* A blocking call's wait for the topology to be made current. */
typedef struct bl_refresh {
    dl_topo_wait w; /* first: the callback finds it */
    int done;
} bl_refresh;

static void refreshed(dl_topo_wait *w, int status) {
    (void)status; /* dl_topo_masters says what is known */
    ((bl_refresh *)w)->done = 1;
}

int dl_block_masters(dlock_client *c, int64_t until_us, const dl_conn **out, int cap, int *n) {
    int rc;
    *n = 0;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    bl_refresh b = {.w = {.fn = refreshed}};
    if (dl_topo_refresh(&e->topo, &b.w) == DL_TOPO_PENDING) {
        dl_engine_kick(e);
        dl_engine_run_until(e, &b.done, until_us);
        dl_topo_unwait(&b.w); /* past until_us: what is known now serves */
    }
    rc = dl_topo_masters(&e->topo, out, cap, n);
    if (rc != DLOCK_OK) {
        dl_seterr(&c->ctx, rc, "%s", e->topo.why);
        c->ctx.code = e->topo.why_code;
    }
    return rc;
}

typedef struct bl_reply {
    int done;
    int status;
    redisReply *r;
} bl_reply;

static void pipe_done(void *arg, redisReply *r, int status, int sent) {
    (void)sent;
    bl_reply *b = arg;
    b->done = 1;
    b->status = status;
    b->r = r;
}

int dl_block_pipe_command(dlock_client *c, dl_pipe *p, int argc, const char **argv,
                          const size_t *lens, int64_t deadline_us, redisReply **out) {
    int rc;
    *out = NULL;
    dl_engine *e = engine(c, &rc);
    if (e == NULL)
        return rc;
    if (dl_engine_adopt(e, p) != DLOCK_OK)
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    bl_reply b = {0};
    rc = dl_pipe_send(p, argc, argv, lens, deadline_us, pipe_done, &b);
    if (rc == DLOCK_OK) {
        dl_engine_kick(e);
        dl_engine_run_until(e, &b.done, 0);
        rc = b.status;
    }
    dl_engine_disown(e, p);
    if (rc != DLOCK_OK)
        return dl_seterr(&c->ctx, rc, "%s", p->conn.err);
    *out = b.r;
    return DLOCK_OK;
}

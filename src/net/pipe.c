/* pipe.c - pipelined requests on one connection (see pipe.h). */
#include "pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dlock.h"

static dl_pipe *pipe_of(dl_conn *c) { return (dl_pipe *)c; }

static int is_message(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    return r->element[0]->len == 7 && memcmp(r->element[0]->str, "message", 7) == 0;
}

static void pop(dl_pipe *p, dl_pend *out) {
    *out = p->q[p->head];
    p->head = (p->head + 1) % p->cap;
    p->len--;
}

static void on_reply(dl_conn *c, redisReply *r) {
    dl_pipe *p = pipe_of(c);
    if (p->on_push != NULL && is_message(r)) {
        p->on_push(p, r);
        return;
    }
    if (p->len == 0) {
        freeReplyObject(r);
        dl_conn_fail(c, DLOCK_EPROTO, 0, "bad reply from %s: %s", "a reply to no request");
        return;
    }
    dl_pend e;
    pop(p, &e);
    e.cb(e.arg, r, DLOCK_OK, 1);
}

/* The connection failed and is closed: every request on it fails. The ring
 * is emptied first, so a callback may queue a new request (reconnect). */
static void on_fail(dl_conn *c) {
    dl_pipe *p = pipe_of(c);
    int n = p->len;
    if (n == 0)
        return;
    dl_pend stack[16];
    dl_pend *v = n <= 16 ? stack : malloc((size_t)n * sizeof *v);
    if (v == NULL) {
        /* Cannot copy: call them in place (no callback re-enters this pipe's
         * ring before it is empty, since each pops first). */
        while (p->len > 0) {
            dl_pend e;
            pop(p, &e);
            e.cb(e.arg, NULL, c->status, !c->refused && c->wr_bytes >= e.end);
        }
        return;
    }
    for (int i = 0; i < n; i++)
        pop(p, &v[i]);
    /* A session the peer refused (TLS alert before any reply) ran none. */
    uint64_t written = c->refused ? 0 : c->wr_bytes;
    int status = c->status;
    /* Every request learns the same failure from c->err, but a callback
     * may re-send and so start a new connection, which clears it: put the
     * words back for the next one. */
    char why[sizeof c->err];
    memcpy(why, c->err, sizeof why);
    for (int i = 0; i < n; i++) {
        memcpy(c->err, why, sizeof why);
        v[i].cb(v[i].arg, NULL, status, written >= v[i].end);
    }
    if (c->status == DLOCK_OK && c->ctx != NULL)
        memcpy(c->err, why, sizeof why); /* read by callers settling later */
    if (v != stack)
        free(v);
}

void dl_pipe_init(dl_pipe *p, const char *host, int port, const char *path,
                  const dl_conn_cfg *cfg) {
    memset(p, 0, sizeof *p);
    dl_conn_init(&p->conn, host, port, path, cfg);
    p->conn.on_reply = on_reply;
    p->conn.on_fail = on_fail;
}

static int grow(dl_pipe *p) {
    int ncap = p->cap ? p->cap * 2 : 16;
    dl_pend *nq = malloc((size_t)ncap * sizeof *nq);
    if (nq == NULL)
        return -1;
    for (int i = 0; i < p->len; i++)
        nq[i] = p->q[(p->head + i) % p->cap];
    free(p->q);
    p->q = nq;
    p->head = 0;
    p->cap = ncap;
    return 0;
}

int dl_pipe_send(dl_pipe *p, int argc, const char **argv, const size_t *lens,
                 int64_t deadline_us, dl_pipe_fn cb, void *arg) {
    if (p->len == p->cap && grow(p) != 0) {
        snprintf(p->conn.err, sizeof p->conn.err, "%s: out of memory", p->conn.addr);
        return DLOCK_ENOMEM;
    }
    /* An idle connection the server closed is found before we send on it
     * (with requests in flight, unread replies would look like EOF). */
    if (p->len == 0 && p->on_push == NULL)
        dl_conn_check_idle(&p->conn);
    uint64_t end;
    int rc = dl_conn_put(&p->conn, argc, argv, lens, &end);
    if (rc != DLOCK_OK)
        return rc;
    dl_pend *e = &p->q[(p->head + p->len) % p->cap];
    e->cb = cb;
    e->arg = arg;
    e->end = end;
    e->deadline_us = deadline_us;
    p->len++;
    return DLOCK_OK;
}

int64_t dl_pipe_deadline(const dl_pipe *p) {
    int64_t d = 0;
    if (p->conn.ctx != NULL && p->conn.state == DL_CONN_CONNECTING)
        d = p->conn.connect_deadline_us;
    if (p->len > 0) {
        int64_t h = p->q[p->head].deadline_us;
        if (d == 0 || h < d)
            d = h;
    }
    return d;
}

void dl_pipe_check(dl_pipe *p, int64_t now_us) {
    dl_conn *c = &p->conn;
    if (c->ctx == NULL)
        return;
    int overdue = p->len > 0 && now_us >= p->q[p->head].deadline_us;
    /* Still connecting when the connect or the oldest reply is due: nothing
     * was sent, and the connect (or TLS handshake) is what did not finish
     * (the reply's deadline may be the earlier by microseconds). */
    if (c->state == DL_CONN_CONNECTING && (now_us >= c->connect_deadline_us || overdue))
        dl_conn_fail(c, DLOCK_EIO, 1, "timeout talking to %s: %s",
                     dl_conn_connect_late(c, "connect did not complete in time"));
    else if (overdue)
        dl_conn_fail(c, DLOCK_EIO, 1, "timeout talking to %s: %s", "no reply in time");
}

void dl_pipe_close(dl_pipe *p, int status, const char *why) {
    if (p->conn.ctx != NULL)
        dl_conn_fail(&p->conn, status, 0, "%s: %s", why);
    else if (p->len > 0) {
        snprintf(p->conn.err, sizeof p->conn.err, "%s: %s", p->conn.addr, why);
        p->conn.status = status;
        on_fail(&p->conn);
    }
    dl_conn_close(&p->conn);
    free(p->q);
    p->q = NULL;
    p->head = p->len = p->cap = 0;
}

/* wait.c - what the kinds of topology share: the list of waiters of a
 * discovery, the reason a discovery failed, and the tag that lets a late
 * reply of an abandoned discovery step be dropped (see topo_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo_int.h"

static void link_on(dl_topo_wlist *l, dl_topo_wait *w) {
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    w->list = l;
}

void dl_topo_unwait(dl_topo_wait *w) {
    if (w == NULL || w->list == NULL)
        return;
    dl_topo_wlist *l = w->list;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
    w->list = NULL;
}

void dl_topo_queue(dl_topo *t, dl_topo_wait *w) {
    if (w == NULL)
        return;
    dl_topo_unwait(w);
    link_on(&t->waiters, w);
}

/* Every waiter is moved to the firing list first, then told one at a
 * time, oldest first: a waiter told may queue itself again (for the next
 * discovery) or stop another waiter that is still to be told
 * (dl_topo_unwait finds it on the firing list). */
void dl_topo_fire(dl_topo *t, int status) {
    if (t->freeing)
        return;
    while (t->waiters.head != NULL) {
        dl_topo_wait *w = t->waiters.head;
        dl_topo_unwait(w);
        link_on(&t->firing, w);
    }
    while (t->firing.head != NULL) {
        dl_topo_wait *w = t->firing.head;
        dl_topo_unwait(w);
        w->fn(w, status);
    }
}

int dl_topo_fail(dl_topo *t, int status, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    t->why_status = status;
    t->why_code = code;
    return status;
}

const char *dl_topo_progress(const dl_topo *t) {
    return t->why[0] != '\0' ? t->why : "no server has answered yet";
}

dl_topo_req *dl_topo_req_new(dl_topo *t, unsigned gen, int i, int k) {
    dl_topo_req *q = malloc(sizeof *q);
    if (q == NULL)
        return NULL;
    q->t = t;
    q->gen = gen;
    q->i = i;
    q->k = k;
    return q;
}

int dl_topo_send(dl_pipe *p, int argc, const char **argv, const size_t *lens,
                 int64_t deadline_us, dl_pipe_fn cb, dl_topo_req *q) {
    if (q == NULL) {
        snprintf(p->conn.err, sizeof p->conn.err, "%s: out of memory", p->conn.addr);
        return DLOCK_ENOMEM;
    }
    int rc = dl_pipe_send(p, argc, argv, lens, deadline_us, cb, q);
    if (rc != DLOCK_OK)
        free(q);
    return rc;
}

int64_t dl_topo_step(const dl_topo *t, const dl_conn *cn, int64_t hard_us) {
    int64_t d = dl_mono_us() + (int64_t)t->command_timeout_ms * 1000;
    if (cn->state != DL_CONN_READY)
        d += (int64_t)t->connect_timeout_ms * 1000;
    return d < hard_us ? d : hard_us;
}

dl_pipe *dl_topo_pipe(dl_topo *t, const char *host, int port, const char *path,
                      const dl_conn_cfg *cfg) {
    dl_pipe *p = malloc(sizeof *p);
    if (p == NULL)
        return NULL;
    dl_pipe_init(p, host, port, path, cfg);
    p->owner = t;
    if (t->watch != NULL && t->watch(t->watch_arg, p) != DLOCK_OK) {
        free(p);
        return NULL;
    }
    return p;
}

void dl_topo_pipe_free(dl_topo *t, dl_pipe *p) {
    if (p == NULL)
        return;
    dl_pipe_close(p, DLOCK_ECANCELED, "client freed");
    if (t->unwatch != NULL)
        t->unwatch(t->watch_arg, p);
    free(p);
}

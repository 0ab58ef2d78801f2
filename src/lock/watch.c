/* watch.c - which sockets the engine has watched, and how: in its own
 * epoll set (dlock_client_fd, the blocking loop), or by the caller's event
 * loop, told socket by socket through e->sock_fn
 * (dlock_client_set_socket_fn). Each pipe remembers what it registered
 * (watched, for which socket generation, for which events), so only
 * changes cost a system call or a call into the loop. */
#include "engine.h"

#include <poll.h>
#include <sys/epoll.h>

static int loop_events(short ev) {
    return (ev & POLLIN ? DLOCK_READABLE : 0) | (ev & POLLOUT ? DLOCK_WRITABLE : 0);
}

/* p's socket stops being watched (it is about to close, or waits for
 * nothing, or the engine changes how it watches). */
static void unwatch(dl_engine *e, dl_pipe *p) {
    if (!p->watched)
        return;
    p->watched = 0;
    if (p->watched_gen != p->conn.gen || p->conn.ctx == NULL)
        return; /* that socket is gone (and left the epoll set with it) */
    /* A child after fork: the loop and the epoll set (one instance shared
     * across the fork) are the parent's, which still watches the socket. */
    if (p->conn.cfg != NULL && p->conn.cfg->forked)
        return;
    int fd = dl_conn_fd(&p->conn);
    if (e->sock_fn != NULL)
        e->sock_fn(e->c, fd, 0, e->sock_ud);
    else
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* conn.on_close: the socket closes next, so it leaves the loop now. */
static void pipe_closing(dl_conn *cn) {
    dl_pipe *p = (dl_pipe *)cn; /* conn is a pipe's first member */
    unwatch(p->watcher, p);
}

/* Keep the watch in step with what the pipe's socket waits for. Sockets
 * are told apart by conn.gen: a new one may reuse a descriptor number. */
static void watch(dl_engine *e, dl_pipe *p) {
    short ev = dl_conn_events(&p->conn);
    int same = p->watched && p->watched_gen == p->conn.gen;
    if (same && ev == p->watched_ev)
        return;
    if (p->conn.ctx == NULL || ev == 0) {
        unwatch(e, p);
        return;
    }
    p->watcher = e;
    p->conn.on_close = pipe_closing;
    int fd = dl_conn_fd(&p->conn);
    if (e->sock_fn != NULL) {
        e->sock_fn(e->c, fd, loop_events(ev), e->sock_ud);
    } else {
        struct epoll_event ee = {
            .events = (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0),
            .data.ptr = p};
        if (epoll_ctl(e->epfd, same ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee) != 0)
            epoll_ctl(e->epfd, same ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ee);
    }
    p->watched = 1;
    p->watched_gen = p->conn.gen;
    p->watched_ev = ev;
}

void dl_engine_watch_all(dl_engine *e) {
    for (int i = 0; i < e->nall; i++)
        watch(e, e->all[i]);
    for (int i = 0; i < e->nsubs; i++) {
        if (e->subs[i].conn.ctx == NULL && e->sub_st[i] == DL_SUB_READY)
            e->sub_st[i] = DL_SUB_NONE; /* lost: re-subscribe when next needed */
        watch(e, &e->subs[i]);
    }
    dl_engine_sub_aggregate(e);
}

void dl_engine_watch_with(dl_engine *e, dlock_socket_fn fn, void *ud) {
    for (int i = 0; i < e->nall; i++)
        unwatch(e, e->all[i]);
    for (int i = 0; i < e->nsubs; i++)
        unwatch(e, &e->subs[i]);
    e->sock_fn = fn;
    e->sock_ud = ud;
    dl_engine_watch_all(e);
}

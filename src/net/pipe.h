/* pipe.h - one connection in pipelined mode: many requests in flight, each
 * with its own callback, answered in order.
 *
 * The engine (src/lock/engine.c) keeps one pipe per server and drives it
 * from its own poll set: dl_conn_events/dl_conn_fd say what to watch,
 * dl_conn_step does the I/O, dl_pipe_check fails an overdue request. A
 * reply that is overdue fails the whole connection (the replies behind it
 * cannot be skipped), and every request on it learns whether its bytes had
 * been written whole ("may have run") or not.
 *
 * A subscriber pipe (on_push set) hands pub/sub messages to on_push; the
 * replies to SUBSCRIBE go to their requests like any other reply. */
#ifndef DLOCK_PIPE_H
#define DLOCK_PIPE_H

#include "conn.h"

/* A request's outcome: r is the reply (owned by the callee, which must
 * freeReplyObject it) with status DLOCK_OK, or NULL with the connection's
 * failure status (c->err says why); sent says whether the request was
 * written whole before the failure (it may have run). Called from
 * dl_conn_step, dl_pipe_check, dl_pipe_close or dl_pipe_send's failure. */
typedef void (*dl_pipe_fn)(void *arg, redisReply *r, int status, int sent);

typedef struct dl_pend {
    dl_pipe_fn cb;
    void *arg;
    uint64_t end;        /* the request is written whole once wr_bytes >= end */
    int64_t deadline_us; /* the reply is overdue after this (monotonic) */
} dl_pend;

typedef struct dl_pipe {
    dl_conn conn;
    dl_pend *q; /* ring of requests awaiting replies */
    int head, len, cap;
    void (*on_push)(struct dl_pipe *p, redisReply *r); /* subscriber: owns r */
    void *owner;
    int watched;         /* engine: registered in its poll set (or the
                            caller's event loop)... */
    unsigned watched_gen; /* ...for this socket (conn.gen) */
    short watched_ev;
    void *watcher;        /* the engine watching it (conn.on_close's) */
    int was_up; /* a Sentinel master or Cluster node (topo/): used since it was last checked */
} dl_pipe;

/* Set up a closed pipe (see dl_conn_init). */
DL_INTERNAL void dl_pipe_init(dl_pipe *p, const char *host, int port, const char *path,
                              const dl_conn_cfg *cfg);
/* Queue one request; its reply is due by deadline_us. Connects first when
 * closed. Returns DLOCK_OK (cb will be called exactly once), or the
 * failure to queue it (cb is not called; p->conn.err says why). */
DL_INTERNAL int dl_pipe_send(dl_pipe *p, int argc, const char **argv, const size_t *lens,
                             int64_t deadline_us, dl_pipe_fn cb, void *arg);
/* Fail the connection if a connect or the oldest reply is overdue (while
 * still connecting, either says the connect did not complete). */
DL_INTERNAL void dl_pipe_check(dl_pipe *p, int64_t now_us);
/* The earliest deadline of the pipe (connect or oldest reply), 0 if none. */
DL_INTERNAL int64_t dl_pipe_deadline(const dl_pipe *p);
/* Close: every pending request fails with `status` (callbacks run), and
 * the ring is freed. The pipe may be used again. */
DL_INTERNAL void dl_pipe_close(dl_pipe *p, int status, const char *why);

#endif

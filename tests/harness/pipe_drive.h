/* pipe_drive.h - for tests of the net layer alone: drive one dl_pipe
 * (src/net/pipe.h) with poll(2) the way the engine drives its pipes (the
 * events the connection waits for, one step of I/O, the deadline check)
 * until a request has its outcome. Header-only; needs the library's
 * internal headers (pipe.h, clock.h) on the include path. */
#ifndef DLOCK_PIPE_DRIVE_H
#define DLOCK_PIPE_DRIVE_H

#include <poll.h>
#include <stdint.h>

#include "clock.h"
#include "pipe.h"

/* One request's outcome, as the pipe reports it (dl_pipe_fn). */
typedef struct pd_reply {
    int done;
    int status;    /* DLOCK_OK (r is the reply, owned here) or the failure */
    int sent;      /* written whole before a failure: it may have run */
    redisReply *r;
} pd_reply;

static inline void pd_cb(void *arg, redisReply *r, int status, int sent) {
    pd_reply *o = (pd_reply *)arg;
    o->done = 1;
    o->status = status;
    o->sent = sent;
    o->r = r;
}

/* Drive p until *last has its outcome (replies come in order: the last
 * request queued settles last), or until until_us (dl_mono_us) passes; the
 * requests' own deadlines fail them before that. Returns last->done. */
static inline int pd_run(dl_pipe *p, const pd_reply *last, int64_t until_us) {
    while (!last->done) {
        int64_t now = dl_mono_us();
        dl_pipe_check(p, now);
        int fd = dl_conn_fd(&p->conn);
        if (last->done || now >= until_us || fd < 0)
            break;
        int64_t d = dl_pipe_deadline(p);
        if (d == 0 || d > until_us)
            d = until_us;
        struct pollfd pf = {.fd = fd, .events = dl_conn_events(&p->conn), .revents = 0};
        if (poll(&pf, 1, (int)((d - now + 999) / 1000)) >= 0)
            dl_conn_step(&p->conn, pf.revents);
    }
    return last->done;
}

#endif

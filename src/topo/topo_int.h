/* topo_int.h - helpers the kinds of topology share (wait.c); not for the
 * layers above.
 *
 * A discovery step (a question to a sentinel, ROLE, CLUSTER SLOTS) is a
 * request on one of the topology's pipes whose callback argument is a
 * dl_topo_req, allocated per request and freed by its callback. It
 * carries the generation of the discovery that sent it: a discovery that
 * ends (or starts over) bumps its kind's generation, so a reply that
 * arrives later is recognised and dropped. */
#ifndef DLOCK_TOPO_INT_H
#define DLOCK_TOPO_INT_H

#include "clock.h"
#include "topology.h"

typedef struct dl_topo_req {
    dl_topo *t;
    unsigned gen; /* the kind's generation when sent */
    int i;        /* which sentinel or node */
    int k;        /* which request of a pipeline */
} dl_topo_req;

/* Queue w (no-op when NULL) to be told when the discovery under way ends. */
DL_INTERNAL void dl_topo_queue(dl_topo *t, dl_topo_wait *w);
/* The discovery ended with status: tell every waiter (none while freeing). */
DL_INTERNAL void dl_topo_fire(dl_topo *t, int status);
/* Record why a discovery failed (t->why, why_status, why_code); returns
 * status. */
DL_INTERNAL int dl_topo_fail(dl_topo *t, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A request tag, or NULL when out of memory (dl_topo_send then fails). */
DL_INTERNAL dl_topo_req *dl_topo_req_new(dl_topo *t, unsigned gen, int i, int k);
/* Queue one request tagged q on p (q is freed here on failure, else by
 * cb). DLOCK_OK or the failure to queue it (p->conn.err says why). */
DL_INTERNAL int dl_topo_send(dl_pipe *p, int argc, const char **argv, const size_t *lens,
                             int64_t deadline_us, dl_pipe_fn cb, dl_topo_req *q);
/* Deadline for one step on cn: a command timeout, plus a connect timeout
 * when cn must connect first, never past hard_us. */
DL_INTERNAL int64_t dl_topo_step(const dl_topo *t, const dl_conn *cn, int64_t hard_us);
/* A new pipe to host:port (or path) that the owner watches, or NULL when
 * out of memory. */
DL_INTERNAL dl_pipe *dl_topo_pipe(dl_topo *t, const char *host, int port, const char *path,
                                  const dl_conn_cfg *cfg);
/* Close p (its requests fail), tell the owner to stop watching it, and
 * free it. */
DL_INTERNAL void dl_topo_pipe_free(dl_topo *t, dl_pipe *p);

#endif

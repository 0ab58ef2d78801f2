/* route.c - the engine's targets on Sentinel and Cluster deployments: the
 * client's topology (topo/) says which server holds a key and where a
 * redirect goes; this file keeps one pipe per server it names, so the
 * engine's requests are pipelined like on a single server.
 *
 * The topology answers with its own connections (used for discovery); a
 * pipe is matched to one by address. Discovery itself (SENTINEL
 * get-master-addr-by-name + ROLE, CLUSTER SLOTS) still runs on the
 * topology's blocking connections, bounded by the client context's cap,
 * so only the blocking engine routes (dl_engine_get refuses Sentinel and
 * Cluster for the async API). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "resp.h"

int dl_engine_add_pipe(dl_engine *e, dl_pipe *p) {
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

static int same_server(const dl_conn *a, const dl_conn *b) {
    if (a->is_unix || b->is_unix)
        return a->is_unix && b->is_unix && strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The engine's pipe to the server of topology connection `tc`, made on
 * first use. NULL when out of memory. */
static dl_pipe *pipe_for(dl_engine *e, const dl_conn *tc) {
    for (int i = 0; i < e->nall; i++)
        if (same_server(&e->all[i]->conn, tc)) {
            e->all[i]->conn.epoch = tc->epoch; /* as the topology knows it now */
            return e->all[i];
        }
    dl_pipe *p = malloc(sizeof *p);
    if (p == NULL)
        return NULL;
    dl_pipe_init(p, tc->is_unix ? NULL : tc->host, tc->port, tc->is_unix ? tc->path : NULL,
                 &e->c->topo.cfg);
    p->owner = e;
    p->conn.epoch = tc->epoch;
    if (dl_engine_add_pipe(e, p) != DLOCK_OK) {
        free(p);
        return NULL;
    }
    return p;
}

static int route_once(dl_engine *e, const char *key, size_t klen, dl_pipe **out) {
    dl_targets tg;
    int rc = dl_topo_targets(&e->c->topo, key, klen, &tg);
    if (rc != DLOCK_OK)
        return rc;
    if (tg.n < 1)
        return dl_seterr(&e->c->ctx, DLOCK_EIO, "no server for the key");
    *out = pipe_for(e, tg.conns[0]);
    if (*out == NULL)
        return dl_seterr(&e->c->ctx, DLOCK_ENOMEM, "out of memory");
    return DLOCK_OK;
}

/* A pipe that was connected and must connect again (its server closed it,
 * restarted, or stopped answering) is not trusted as the master by its
 * address alone: the topology checks again first (Sentinel: the sentinels
 * and ROLE; Cluster: the slot map from the other nodes), so nothing, a
 * release included, goes to a restarted or deposed master that the
 * sentinels or the rest of the cluster no longer name. */
int dl_route(dl_engine *e, const char *key, size_t klen, dl_pipe **out) {
    int rc = route_once(e, key, klen, out);
    if (rc == DLOCK_OK && (*out)->len == 0 && (*out)->on_push == NULL)
        dl_conn_check_idle(&(*out)->conn); /* a server gone meanwhile shows now */
    if (rc == DLOCK_OK && (*out)->was_up && (*out)->conn.state == DL_CONN_CLOSED) {
        (*out)->was_up = 0;
        const dl_conn *pc = &(*out)->conn;
        dl_topo_recheck(&e->c->topo, pc->is_unix ? NULL : pc->host, pc->port);
        rc = route_once(e, key, klen, out);
    }
    if (rc == DLOCK_OK)
        (*out)->was_up = 1;
    return rc;
}

/* dl_router.redirect: ask the topology where the key lives now. The
 * topology's redirect wants its own connection to the server that sent
 * the redirect: the key's current target. If the topology has already
 * moved the key elsewhere (another request's redirect or a rediscovery),
 * that is where it goes. */
static int redirect(void *arg, const char *key, size_t klen, dl_pipe *from, const redisReply *r,
                    dl_pipe **to, int *asking) {
    dl_engine *e = arg;
    dl_targets tg;
    *asking = 0;
    /* TRYAGAIN (a slot migrating) left after the fan's own pauses: no
     * redirect; the operation decides (an acquire reads it as busy). */
    if (r != NULL && dl_srv_code(r) == DL_SRV_TRYAGAIN)
        return 0;
    char saved[sizeof e->c->ctx.err];
    memcpy(saved, e->c->ctx.err, sizeof saved);
    int rc = dl_topo_targets(&e->c->topo, key, klen, &tg);
    memcpy(e->c->ctx.err, saved, sizeof saved);
    if (rc != DLOCK_OK || tg.n < 1)
        return 0;
    int same = same_server(tg.conns[0], &from->conn);
    if (r == NULL && e->c->url.kind == DL_URL_CLUSTER) {
        /* Our connection to a node failed. If it is the key's node, tell
         * the topology (its own connection there looks fine), so the next
         * request reloads the slot map (a replica may have taken over).
         * This request ends with the failure, as on the blocking path. */
        if (same) {
            dl_conn_close(tg.conns[0]);
            tg.conns[0]->status = DLOCK_EIO;
        }
        return 0;
    }
    if (!same) {
        *to = pipe_for(e, tg.conns[0]);
        return *to != NULL;
    }
    dl_conn *next = NULL;
    if (!dl_topo_redirect(&e->c->topo, tg.conns[0], r, &next, asking) || next == NULL)
        return 0;
    *to = pipe_for(e, next);
    return *to != NULL;
}

static int route(void *arg, const char *key, size_t klen, dl_pipe **to) {
    dl_engine *e = arg;
    char saved[sizeof e->c->ctx.err];
    memcpy(saved, e->c->ctx.err, sizeof saved);
    int rc = dl_route(e, key, klen, to);
    memcpy(e->c->ctx.err, saved, sizeof saved);
    return rc == DLOCK_OK;
}

void dl_route_init(dl_engine *e) {
    e->router.redirect = redirect;
    e->router.route = route;
    e->router.arg = e;
    /* As the blocking cluster code: 50 ms, at most a quarter of a command
     * timeout. */
    e->router.pause_ms = 50;
    if (e->router.pause_ms > e->c->opts.command_timeout_ms / 4)
        e->router.pause_ms = e->c->opts.command_timeout_ms / 4;
}

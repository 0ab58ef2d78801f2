/* topo.c - the topology layer's entry points and the direct kind: one
 * server, or a Redlock set of independent masters. Sentinel and Cluster
 * are their own tables of functions (sentinel.c, cluster.c). */
#include "topology.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

static int direct_init(dl_topo *t) {
    const dl_url *u = t->url;
    int n = u->unix_socket ? 1 : u->nhosts;
    t->conns = calloc((size_t)n, sizeof *t->conns);
    if (t->conns == NULL)
        return dl_seterr(t->ctx, DLOCK_ENOMEM, "out of memory");
    t->n = n;
    for (int i = 0; i < n; i++) {
        if (u->unix_socket)
            dl_conn_init(&t->conns[i], NULL, 0, u->path, &t->cfg);
        else
            dl_conn_init(&t->conns[i], u->hosts[i].host, u->hosts[i].port, NULL, &t->cfg);
    }
    return DLOCK_OK;
}

static void direct_free(dl_topo *t) {
    if (t->conns != NULL) {
        for (int i = 0; i < t->n; i++)
            dl_conn_close(&t->conns[i]);
        free(t->conns);
        t->conns = NULL;
    }
    t->n = 0;
}

static int direct_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out) {
    (void)key;
    (void)klen;
    out->n = t->n;
    for (int i = 0; i < t->n; i++)
        out->conns[i] = &t->conns[i];
    return DLOCK_OK;
}

static int direct_redirect(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to,
                           int *asking) {
    (void)t;
    (void)from;
    (void)r;
    *to = NULL;
    *asking = 0;
    return 0; /* independent masters: nowhere else to go */
}

static const dl_topo_ops direct_ops = {
    .init = direct_init,
    .free = direct_free,
    .targets = direct_targets,
    .redirect = direct_redirect,
};

int dl_topo_init(dl_topo *t) {
    switch (t->url->kind) {
    case DL_URL_SINGLE:
    case DL_URL_REDLOCK:
        t->ops = &direct_ops;
        break;
    case DL_URL_SENTINEL:
        t->ops = &dl_topo_sentinel_ops;
        break;
    case DL_URL_CLUSTER:
        t->ops = &dl_topo_cluster_ops;
        break;
    default:
        return dl_seterr(t->ctx, DLOCK_EINVAL, "unknown deployment kind");
    }
    return t->ops->init(t);
}

void dl_topo_free(dl_topo *t) {
    if (t->ops != NULL)
        t->ops->free(t);
    t->ops = NULL;
}

int dl_topo_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out) {
    memset(out, 0, sizeof *out);
    return t->ops->targets(t, key, klen, out);
}

int dl_topo_redirect(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to,
                     int *asking) {
    *asking = 0;
    *to = NULL;
    return t->ops->redirect(t, from, r, to, asking);
}

void dl_topo_recheck(dl_topo *t, const char *host, int port) {
    if (t->ops->recheck != NULL)
        t->ops->recheck(t, host, port);
}

int dl_topo_masters(dl_topo *t, const dl_conn **out, int cap, int *n) {
    *n = 0;
    if (t->ops->masters != NULL)
        return t->ops->masters(t, out, cap, n);
    dl_targets tg;
    int rc = dl_topo_targets(t, "", 0, &tg);
    if (rc != DLOCK_OK)
        return rc;
    if (tg.n > cap)
        return dl_seterr(t->ctx, DLOCK_EPROTO, "more than %d servers", cap);
    for (int i = 0; i < tg.n; i++)
        out[i] = tg.conns[i];
    *n = tg.n;
    return DLOCK_OK;
}

/* A deadline for a step that talks to `conn`, never past the context cap. */
static int64_t step_deadline(const dl_topo *t, const dl_conn *conn) {
    int64_t d = dl_mono_us() + (int64_t)t->command_timeout_ms * 1000;
    if (conn != NULL && conn->state != DL_CONN_READY)
        d += (int64_t)t->connect_timeout_ms * 1000;
    return dl_capped(t->ctx, d);
}

int64_t dl_topo_deadline(const dl_topo *t, const dl_targets *tg) {
    for (int i = 0; i < tg->n; i++)
        if (tg->conns[i] != NULL && tg->conns[i]->state != DL_CONN_READY)
            return step_deadline(t, tg->conns[i]);
    return step_deadline(t, NULL);
}

/* topo.c - the topology layer's entry points and the direct kind: one
 * server, or a Redlock set of independent masters, one pipe each. Sentinel
 * and Cluster are their own tables of functions (sentinel.c, cluster.c). */
#include "topology.h"

#include <stdlib.h>
#include <string.h>

#include "topo_int.h"

static int direct_init(dl_topo *t) {
    const dl_url *u = t->url;
    int n = u->unix_socket ? 1 : u->nhosts;
    t->pipes = calloc((size_t)n, sizeof *t->pipes);
    if (t->pipes == NULL)
        return DLOCK_ENOMEM;
    t->n = n;
    for (int i = 0; i < n; i++) {
        if (u->unix_socket)
            dl_pipe_init(&t->pipes[i], NULL, 0, u->path, t->cfg);
        else
            dl_pipe_init(&t->pipes[i], u->hosts[i].host, u->hosts[i].port, NULL, t->cfg);
        t->pipes[i].owner = t;
        if (t->watch != NULL && t->watch(t->watch_arg, &t->pipes[i]) != DLOCK_OK)
            return DLOCK_ENOMEM;
    }
    return DLOCK_OK;
}

static void direct_free(dl_topo *t) {
    if (t->pipes != NULL) {
        for (int i = 0; i < t->n; i++)
            dl_pipe_close(&t->pipes[i], DLOCK_ECANCELED, "client freed");
        free(t->pipes);
        t->pipes = NULL;
    }
    t->n = 0;
}

static int direct_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                          dl_topo_wait *w) {
    (void)key;
    (void)klen;
    (void)w;
    out->n = t->n;
    for (int i = 0; i < t->n; i++)
        out->pipes[i] = &t->pipes[i];
    return DLOCK_OK;
}

static int direct_redirect(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to,
                           int *asking, dl_topo_wait *w) {
    (void)t;
    (void)from;
    (void)r;
    (void)w;
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

int dl_topo_check(const dl_url *u, dl_ctx *x) {
    switch (u->kind) {
    case DL_URL_SINGLE:
    case DL_URL_REDLOCK:
        return DLOCK_OK;
    case DL_URL_SENTINEL:
        if (u->nhosts < 1 || u->nhosts > DL_URL_MAX_HOSTS)
            return dl_seterr(x, DLOCK_EINVAL, "redis-sentinel:// needs 1..%d sentinels",
                             DL_URL_MAX_HOSTS);
        if (u->master_name[0] == '\0')
            return dl_seterr(x, DLOCK_EINVAL, "missing master name in redis-sentinel:// URL");
        return DLOCK_OK;
    case DL_URL_CLUSTER:
        if (u->nhosts < 1 || u->nhosts > DL_URL_MAX_HOSTS)
            return dl_seterr(x, DLOCK_EINVAL, "redis-cluster:// needs 1..%d seed nodes",
                             DL_URL_MAX_HOSTS);
        return DLOCK_OK;
    default:
        return dl_seterr(x, DLOCK_EINVAL, "unknown deployment kind");
    }
}

int dl_topo_init(dl_topo *t) {
    switch (t->url->kind) {
    case DL_URL_SENTINEL:
        t->ops = &dl_topo_sentinel_ops;
        break;
    case DL_URL_CLUSTER:
        t->ops = &dl_topo_cluster_ops;
        break;
    default:
        t->ops = &direct_ops;
        break;
    }
    /* As Redis's own clients: 50 ms, at most a quarter of a command timeout. */
    t->pause_ms = 50;
    if (t->pause_ms > t->command_timeout_ms / 4)
        t->pause_ms = t->command_timeout_ms / 4;
    return t->ops->init(t);
}

void dl_topo_free(dl_topo *t) {
    if (t->ops == NULL)
        return;
    t->freeing = 1; /* the failing requests' callbacks start nothing new */
    t->ops->free(t);
    t->ops = NULL;
    while (t->waiters.head != NULL)
        dl_topo_unwait(t->waiters.head);
}

int dl_topo_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                    dl_topo_wait *w) {
    memset(out, 0, sizeof *out);
    return t->ops->targets(t, key, klen, out, w);
}

int dl_topo_redirect(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to, int *asking,
                     dl_topo_wait *w) {
    *asking = 0;
    *to = NULL;
    return t->ops->redirect(t, from, r, to, asking, w);
}

int dl_topo_refresh(dl_topo *t, dl_topo_wait *w) {
    return t->ops->refresh != NULL ? t->ops->refresh(t, w) : DLOCK_OK;
}

int dl_topo_masters(dl_topo *t, const dl_conn **out, int cap, int *n) {
    *n = 0;
    if (t->ops->masters != NULL)
        return t->ops->masters(t, out, cap, n);
    dl_targets tg;
    int rc = dl_topo_targets(t, "", 0, &tg, NULL);
    if (rc != DLOCK_OK)
        return dl_topo_fail(t, DLOCK_EIO, 0, "no server known");
    if (tg.n > cap)
        return dl_topo_fail(t, DLOCK_EPROTO, 0, "more than %d servers", cap);
    for (int i = 0; i < tg.n; i++)
        out[i] = &tg.pipes[i]->conn;
    *n = tg.n;
    return DLOCK_OK;
}

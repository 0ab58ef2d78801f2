/* topology.c - what the URL names: one server or a Redlock set of masters.
 *
 * Sentinel and Cluster deployments are resolved in sentinel.c and
 * cluster.c; this file dispatches to them. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"
#include "topo_ext.h"

int dl_topo_init(dlock_client *c) {
    dl_topo *t = &c->topo;
    const dl_url *u = &c->url;
    t->kind = u->kind;
    switch (u->kind) {
    case DL_URL_SINGLE:
    case DL_URL_REDLOCK: {
        int n = u->unix_socket ? 1 : u->nhosts;
        t->conns = calloc((size_t)n, sizeof *t->conns);
        if (t->conns == NULL)
            return dl_seterr(c, DLOCK_ENOMEM, "out of memory");
        t->n = n;
        for (int i = 0; i < n; i++) {
            if (u->unix_socket)
                dl_conn_init(&t->conns[i], NULL, 0, u->path, &c->cfg);
            else
                dl_conn_init(&t->conns[i], u->hosts[i].host, u->hosts[i].port, NULL, &c->cfg);
        }
        return DLOCK_OK;
    }
    case DL_URL_SENTINEL:
        return dl_sentinel_init(c);
    case DL_URL_CLUSTER:
        return dl_cluster_init(c);
    }
    return dl_seterr(c, DLOCK_EINVAL, "unknown deployment kind");
}

void dl_topo_free(dl_topo *t) {
    if (t->conns != NULL) {
        for (int i = 0; i < t->n; i++)
            dl_conn_close(&t->conns[i]);
        free(t->conns);
        t->conns = NULL;
    }
    dl_sentinel_free(t);
    dl_cluster_free(t);
    t->n = 0;
}

int dl_topo_targets(dlock_client *c, const char *key, size_t klen, dl_call *call) {
    dl_topo *t = &c->topo;
    memset(call, 0, sizeof *call);
    switch (t->kind) {
    case DL_URL_SINGLE:
    case DL_URL_REDLOCK:
        call->n = t->n;
        for (int i = 0; i < t->n; i++)
            call->conns[i] = &t->conns[i];
        break;
    case DL_URL_SENTINEL: {
        int rc = dl_sentinel_target(c, call);
        if (rc != DLOCK_OK)
            return rc;
        break;
    }
    case DL_URL_CLUSTER: {
        int rc = dl_cluster_target(c, key, klen, call);
        if (rc != DLOCK_OK)
            return rc;
        break;
    }
    }
    call->quorum = call->n / 2 + 1;
    return DLOCK_OK;
}

int dl_topo_redirect(dlock_client *c, dl_conn *from, const redisReply *r, dl_conn **to,
                     int *asking) {
    *asking = 0;
    *to = NULL;
    if (c->topo.kind == DL_URL_SENTINEL)
        return dl_sentinel_redirect(c, from, r, to);
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return 0;
    if (c->topo.kind == DL_URL_CLUSTER)
        return dl_cluster_redirect(c, from, r, to, asking);
    return 0;
}

int64_t dl_call_deadline(const dlock_client *c, const dl_call *call) {
    int64_t d = dl_mono_us() + (int64_t)c->opts.command_timeout_ms * 1000;
    for (int i = 0; i < call->n; i++)
        if (call->conns[i] != NULL && call->conns[i]->state != DL_CONN_READY) {
            d += (int64_t)c->opts.connect_timeout_ms * 1000;
            break;
        }
    if (c->cap_us > 0 && d > c->cap_us)
        d = c->cap_us;
    return d;
}

/* cluster.c - Redis Cluster: slot map, MOVED and ASK.
 *
 * The topology keeps a table of nodes (one pipe each, made on demand and
 * keyed by host:port; the URL's seeds are the first entries) and a map from
 * each of the 16384 hash slots to the node serving it, loaded with
 * `CLUSTER SLOTS` (cluster_map.c) by the first request that needs it.
 *
 * Every key of one lock shares the slot of its {name} (docs/PROTOCOL.md §1), so
 * each request goes to exactly one node:
 *   - MOVED slot host:port: the slot moved for good. The slot's entry is
 *     updated at once, the request is re-sent there, and the whole map is
 *     reloaded before the next request (other slots probably moved too);
 *   - ASK slot host:port: the slot is being migrated and this key is already
 *     on the target. The request is re-sent there once, preceded by ASKING
 *     (quorum/fan.c sends it); the map does not change;
 *   - TRYAGAIN (a multi-key command during a migration, with the keys split
 *     between the two nodes) and CLUSTERDOWN: the fan pauses and tries the
 *     slot's node again; what is left after its tries is the caller's;
 *     CLUSTERDOWN also makes the map stale, and so does READONLY (the node
 *     asked is a replica now: the caller's next try goes by a new map);
 *   - a connection to the slot's node that failed, or was up and must be
 *     made again (the node closed it, or restarted): the map is reloaded
 *     before the next request to that slot, asking that node last, since a
 *     replica may have taken over and a restarted old master may still
 *     believe it serves the slot. The request that met the failure ends
 *     with it.
 * A request that needs a reload waits for it (DL_TOPO_PENDING); one whose
 * slot the current map serves well goes at once, even during a reload.
 * Stale-map reloads are at least DL_CLU_REFRESH_GAP_MS apart; in between,
 * the old map serves. The fan's tries bound the redirects of one request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "crc16.h"
#include "resp.h"

static int cluster_init(dl_topo *t) {
    const dl_url *u = t->url;
    dl_cluster *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DLOCK_ENOMEM;
    t->cluster = s;
    s->topo = t;
    dl_timer_init(&s->tick, NULL);
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        s->slots[i] = DL_CLU_NONE;
    s->cap = 16;
    s->nodes = calloc((size_t)s->cap, sizeof *s->nodes);
    if (s->nodes == NULL)
        return DLOCK_ENOMEM;
    for (int i = 0; i < u->nhosts; i++)
        if (dl_clu_node(t, s, u->hosts[i].host, strlen(u->hosts[i].host), u->hosts[i].port) < 0)
            return DLOCK_ENOMEM;
    s->nseeds = s->nnodes;
    return DLOCK_OK;
}

static void cluster_free(dl_topo *t) {
    dl_cluster *s = t->cluster;
    if (s == NULL)
        return;
    dl_heap_disarm(t->heap, &s->tick);
    for (int i = 0; i < s->nnodes; i++)
        dl_topo_pipe_free(t, s->nodes[i]);
    free(s->nodes);
    free(s);
    t->cluster = NULL;
}

static int cluster_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                           dl_topo_wait *w) {
    dl_cluster *s = t->cluster;
    int slot = dl_key_slot(key, klen);
    if (slot < 0 || slot >= DL_CLU_SLOTS)
        slot = 0;
    int idx = s->slots[slot];
    int doubt = 0;
    if (idx != DL_CLU_NONE) {
        dl_pipe *np = s->nodes[idx];
        if (np->len == 0)
            dl_conn_check_idle(&np->conn); /* a close meanwhile shows now */
        /* A failed connection to the slot's node: a replica may have taken
         * over (reloaded, at the reloads' pace). */
        if (np->conn.state == DL_CONN_CLOSED && np->conn.status != DLOCK_OK)
            s->stale = 1;
        /* A connection that was up and must be made again: a restarted old
         * master may still believe it serves the slot. Once, the map is
         * reloaded before anything goes there, whatever the gap between
         * reloads, asking that node last (its own view is the one in
         * doubt); the reloaded map is then trusted. */
        if (np->conn.state == DL_CONN_CLOSED && np->was_up) {
            doubt = 1;
            s->stale = 1;
            np->was_up = 0;
            if (!s->running)
                s->first = (idx + 1) % s->nnodes;
        }
    }
    int need = !s->loaded || idx == DL_CLU_NONE || s->stale;
    if (need && (doubt || s->running || !s->loaded || dl_mono_us() >= s->next_refresh_us))
        return dl_clu_load(t, w);
    /* Slot not served by any node we know: ask one anyway; it answers with
     * MOVED or CLUSTERDOWN, which says more than we could. */
    if (idx == DL_CLU_NONE)
        idx = 0;
    out->n = 1;
    out->pipes[0] = s->nodes[idx];
    out->pipes[0]->was_up = 1;
    return DLOCK_OK;
}

/* Every node serving slots in the current map (dl_topo_refresh first). */
static int cluster_masters(dl_topo *t, const dl_conn **out, int cap, int *n) {
    dl_cluster *s = t->cluster;
    if (!s->loaded)
        return t->why[0] != '\0' ? t->why_status
                                 : dl_topo_fail(t, DLOCK_EIO, 0, "cluster: no slot map");
    char seen[DL_CLU_MAX_NODES];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < DL_CLU_SLOTS; i++) {
        int idx = s->slots[i];
        if (idx == DL_CLU_NONE || seen[idx])
            continue;
        if (*n == cap)
            return dl_topo_fail(t, DLOCK_EPROTO, 0, "cluster: more than %d masters", cap);
        seen[idx] = 1;
        out[(*n)++] = &s->nodes[idx]->conn;
    }
    return DLOCK_OK;
}

/* Parse "<slot> <host>:<port>" (after "MOVED " / "ASK "). Empty host: the
 * node that sent the redirect. Returns the node index, or -1. */
static int parse_redirect(dl_topo *t, dl_cluster *s, const dl_conn *from, const char *p,
                          size_t len, int *slot) {
    size_t i = 0;
    long sl = 0;
    if (len == 0 || p[0] < '0' || p[0] > '9')
        return -1;
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        sl = sl * 10 + (p[i] - '0');
        if (sl >= DL_CLU_SLOTS)
            return -1;
        i++;
    }
    if (i >= len || p[i] != ' ')
        return -1;
    i++;
    const char *ep = p + i;
    size_t elen = len - i;
    const char *colon = NULL;
    for (size_t k = 0; k < elen; k++)
        if (ep[k] == ':')
            colon = ep + k;
    if (colon == NULL)
        return -1;
    size_t hlen = (size_t)(colon - ep);
    const char *pp = colon + 1;
    size_t plen = elen - hlen - 1;
    long port = 0;
    if (plen == 0 || plen > 5)
        return -1;
    for (size_t k = 0; k < plen; k++) {
        if (pp[k] < '0' || pp[k] > '9')
            return -1;
        port = port * 10 + (pp[k] - '0');
    }
    if (port < 1 || port > 65535)
        return -1;
    const char *host = ep;
    /* IPv6 literals may come bracketed. */
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0) {
        host = from->host;
        hlen = strlen(from->host);
    }
    if (hlen >= DL_URL_HOST_MAX || (hlen == 1 && host[0] == '?') ||
        memchr(host, '\0', hlen) != NULL || memchr(host, ' ', hlen) != NULL)
        return -1;
    *slot = (int)sl;
    return dl_clu_node(t, s, host, hlen, (int)port);
}

static int cluster_redirect(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to,
                            int *asking, dl_topo_wait *w) {
    dl_cluster *s = t->cluster;
    (void)w;
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return 0; /* a failed connection: the next request reloads the map */
    int code = dl_srv_code(r);
    int moved = code == DL_SRV_MOVED, ask = code == DL_SRV_ASK;
    if (moved || code == DL_SRV_CLUSTERDOWN || code == DL_SRV_READONLY)
        s->stale = 1; /* whatever happens next, the map may be out of date */
    if (code == DL_SRV_TRYAGAIN || code == DL_SRV_CLUSTERDOWN) {
        s->tryagain++; /* the fan's own pauses did not see it through */
        return 0;
    }
    if (!moved && !ask)
        return 0;
    size_t skip = moved ? 6 : 4;
    if (r->len <= skip)
        return 0;
    int slot = -1;
    int idx = parse_redirect(t, s, &from->conn, r->str + skip, r->len - skip, &slot);
    if (idx < 0)
        return 0;
    if (moved) {
        s->moved++;
        s->slots[slot] = (uint16_t)idx;
    } else {
        s->asks++;
        *asking = 1;
    }
    *to = s->nodes[idx];
    return 1;
}

void dl_cluster_counters(const dl_topo *t, dl_cluster_stats *out) {
    const dl_cluster *s = t->cluster;
    if (s == NULL)
        return;
    out->moved += s->moved;
    out->asks += s->asks;
    out->tryagain += s->tryagain;
    out->refreshes += s->refreshes;
    out->nodes += s->nnodes;
}

const dl_topo_ops dl_topo_cluster_ops = {
    .init = cluster_init,
    .free = cluster_free,
    .targets = cluster_targets,
    .redirect = cluster_redirect,
    .refresh = dl_clu_load,
    .masters = cluster_masters,
};

/* cluster.c - Redis Cluster: slot map, MOVED and ASK.
 *
 * The client keeps a table of nodes (one dl_conn each, made on demand and
 * keyed by host:port; the URL's seeds are the first entries) and a map from
 * each of the 16384 hash slots to the node serving it, loaded lazily with
 * `CLUSTER SLOTS` from the first node that answers.
 *
 * Every key of one lock shares the slot of its {name} (DESIGN.md "Keys"), so
 * each call goes to exactly one node:
 *   - MOVED slot host:port: the slot moved for good. The slot's entry is
 *     updated at once, the call is re-sent there, and the whole map is
 *     reloaded before the next call (other slots probably moved too).
 *   - ASK slot host:port: the slot is being migrated and this key is already
 *     on the target. The call is re-sent there once, preceded by ASKING
 *     (quorum.c sends it); the map does not change.
 *   - TRYAGAIN (a multi-key command during a migration, with the keys split
 *     between the two nodes) and CLUSTERDOWN: a short pause and one more try
 *     at the slot's node.
 *   - a connection to a node that failed: the map is reloaded before the
 *     next call, since a replica may have taken over.
 * At most DL_CLU_MAX_REDIRECTS redirects are followed per call, fewer than
 * quorum.c's rounds, so the last server error reaches the caller intact.
 *
 * The map is reloaded only at the start of a call (cluster_targets), never
 * in the middle of one (quorum.c still holds replies of the current call),
 * and not while a caller is queueing one pipelined batch over many keys
 * (keepalive.c asks for each key's target between appends).
 *
 * Hostile replies: CLUSTER SLOTS is checked element by element (types,
 * counts, 0 <= start <= end <= 16383, ports 1..65535, host lengths) and a
 * malformed reply is rejected whole; the node table is capped at
 * DL_CLU_MAX_NODES.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crc16.h"
#include "resp.h"
#include "topology.h"

#define DL_CLU_SLOTS 16384
#define DL_CLU_NONE 0xFFFF       /* slot not served by a known node */
#define DL_CLU_MAX_NODES 1024    /* Redis recommends clusters of <= 1000 nodes */
#define DL_CLU_MAX_REDIRECTS 3   /* per call; quorum.c has 4 rounds */
#define DL_CLU_REFRESH_GAP_MS 100 /* at most one stale-map reload per gap */
#define DL_CLU_PAUSE_MS 50       /* before retrying TRYAGAIN / CLUSTERDOWN */

struct dl_cluster {
    int nseeds;             /* nodes[0..nseeds) are the URL's addresses */
    int nnodes, cap;
    dl_conn **nodes;        /* each conn allocated alone: call->conns keep pointers */
    uint16_t slots[DL_CLU_SLOTS];
    uint16_t scratch[DL_CLU_SLOTS]; /* map being parsed */
    int loaded;             /* a map was loaded once */
    int stale;              /* reload before the next call */
    int64_t next_refresh_us;
    int slot;               /* slot of the current call */
    int redirects;          /* redirects followed in the current call */
    long moved, asks, tryagain, refreshes; /* counters, for tests */
    int first;              /* node a refresh asks first (after one that failed) */
    int avoid;              /* node the next refresh asks last (-1: none): one whose
                               own view is in doubt (it failed, or is reconnected) */
};

static int cluster_init(dl_topo *t) {
    const dl_url *u = t->url;
    if (u->nhosts < 1 || u->nhosts > DL_URL_MAX_HOSTS)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "redis-cluster:// needs 1..%d seed nodes",
                         DL_URL_MAX_HOSTS);
    dl_cluster *s = calloc(1, sizeof *s);
    if (s == NULL)
        return dl_seterr(t->ctx, DLOCK_ENOMEM, "out of memory");
    t->cluster = s;
    t->n = 0;
    t->conns = NULL;
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        s->slots[i] = DL_CLU_NONE;
    s->avoid = -1;
    s->cap = 16;
    s->nodes = calloc((size_t)s->cap, sizeof *s->nodes);
    if (s->nodes == NULL)
        return dl_seterr(t->ctx, DLOCK_ENOMEM, "out of memory");
    for (int i = 0; i < u->nhosts; i++) {
        dl_conn *cn = malloc(sizeof *cn);
        if (cn == NULL)
            return dl_seterr(t->ctx, DLOCK_ENOMEM, "out of memory");
        dl_conn_init(cn, u->hosts[i].host, u->hosts[i].port, NULL, &t->cfg);
        s->nodes[s->nnodes++] = cn;
    }
    s->nseeds = s->nnodes;
    return DLOCK_OK;
}

static void cluster_free(dl_topo *t) {
    dl_cluster *s = t->cluster;
    if (s == NULL)
        return;
    for (int i = 0; i < s->nnodes; i++) {
        dl_conn_close(s->nodes[i]);
        free(s->nodes[i]);
    }
    free(s->nodes);
    free(s);
    t->cluster = NULL;
}

/* Index of the node host:port, added if new. -1 when the table is full or
 * out of memory. */
static int node_index(dl_topo *t, dl_cluster *s, const char *host, size_t hlen, int port) {
    for (int i = 0; i < s->nnodes; i++) {
        const dl_conn *cn = s->nodes[i];
        if (cn->port == port && strlen(cn->host) == hlen && memcmp(cn->host, host, hlen) == 0)
            return i;
    }
    if (s->nnodes >= DL_CLU_MAX_NODES)
        return -1;
    if (s->nnodes == s->cap) {
        dl_conn **nn = realloc(s->nodes, (size_t)s->cap * 2 * sizeof *nn);
        if (nn == NULL)
            return -1;
        s->nodes = nn;
        s->cap *= 2;
    }
    dl_conn *cn = malloc(sizeof *cn);
    if (cn == NULL)
        return -1;
    char h[DL_URL_HOST_MAX];
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    dl_conn_init(cn, h, port, NULL, &t->cfg);
    s->nodes[s->nnodes] = cn;
    return s->nnodes++;
}

/* Parse a port of 1..65535 from an integer reply. */
static int reply_port(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 1 || r->integer > 65535)
        return -1;
    return (int)r->integer;
}

/* Parse a CLUSTER SLOTS reply into s->scratch (adding nodes as named). */
static int parse_slots(dl_topo *t, dl_cluster *s, const dl_conn *from, const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY)
        return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: not an array", from->addr);
    if (r->elements == 0)
        return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: no slots assigned",
                         from->addr);
    if (r->elements > DL_CLU_SLOTS)
        return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: %zu ranges", from->addr,
                         r->elements);
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        s->scratch[i] = DL_CLU_NONE;
    for (size_t k = 0; k < r->elements; k++) {
        const redisReply *e = r->element[k];
        const redisReply *lo = dl_elem(e, 0), *hi = dl_elem(e, 1), *m = dl_elem(e, 2);
        if (lo == NULL || hi == NULL || m == NULL || lo->type != REDIS_REPLY_INTEGER ||
            hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 || hi->integer < lo->integer ||
            hi->integer >= DL_CLU_SLOTS)
            return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: bad slot range #%zu",
                             from->addr, k);
        const redisReply *h = dl_elem(m, 0);
        int port = reply_port(dl_elem(m, 1));
        if (h == NULL || port < 0 ||
            (h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_NIL))
            return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: bad master of range #%zu",
                             from->addr, k);
        const char *host = h->type == REDIS_REPLY_STRING ? h->str : "";
        size_t hlen = h->type == REDIS_REPLY_STRING ? h->len : 0;
        if (hlen >= DL_URL_HOST_MAX || memchr(host, '\0', hlen) != NULL)
            return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: bad host in range #%zu",
                             from->addr, k);
        if (hlen == 1 && host[0] == '?')
            continue; /* endpoint unknown to that node: leave the range unmapped */
        if (hlen == 0) {
            /* No endpoint: the same host we asked, with the given port. */
            host = from->host;
            hlen = strlen(from->host);
        }
        int idx = node_index(t, s, host, hlen, port);
        if (idx < 0)
            return dl_seterr(t->ctx, DLOCK_EPROTO, "CLUSTER SLOTS from %s: more than %d nodes",
                             from->addr, DL_CLU_MAX_NODES);
        for (long long sl = lo->integer; sl <= hi->integer; sl++)
            s->scratch[sl] = (uint16_t)idx;
    }
    return DLOCK_OK;
}

/* Drop the nodes that are not seeds and serve no slot in s->slots, and
 * renumber the map. Only between calls: no call holds their connections. */
static void drop_unused(dl_cluster *s) {
    uint16_t remap[DL_CLU_MAX_NODES];
    char used[DL_CLU_MAX_NODES];
    memset(used, 0, sizeof used);
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        if (s->slots[i] != DL_CLU_NONE)
            used[s->slots[i]] = 1;
    int k = 0;
    for (int i = 0; i < s->nnodes; i++) {
        if (i < s->nseeds || used[i]) {
            remap[i] = (uint16_t)k;
            s->nodes[k++] = s->nodes[i];
        } else {
            remap[i] = DL_CLU_NONE;
            dl_conn_close(s->nodes[i]);
            free(s->nodes[i]);
        }
    }
    s->nnodes = k;
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        if (s->slots[i] != DL_CLU_NONE)
            s->slots[i] = remap[s->slots[i]];
}

/* Check a CLUSTER SLOTS reply from node `from` and load it into s->slots.
 * Returns DLOCK_OK or DLOCK_EPROTO (t->ctx->err says why; the map and the node
 * table are as before). */
static int load_slots(dl_topo *t, dl_cluster *s, const dl_conn *from, const redisReply *r) {
    int n0 = s->nnodes;
    int rc = parse_slots(t, s, from, r);
    if (rc != DLOCK_OK) {
        /* Forget the nodes this bad reply named; nothing refers to them. */
        for (int i = n0; i < s->nnodes; i++) {
            dl_conn_close(s->nodes[i]);
            free(s->nodes[i]);
        }
        s->nnodes = n0;
        return rc;
    }
    memcpy(s->slots, s->scratch, sizeof s->slots);
    /* Nodes that left the cluster (or lost all their slots) go away. */
    drop_unused(s);
    return DLOCK_OK;
}

/* Ask node i for the slot map, before `hard`. 1 if its map is loaded;
 * else 0, with what went wrong appended to detail (at *off) and *status
 * set for a server error or a bad map. */
static int ask_node(dl_topo *t, dl_cluster *s, int i, int n, int64_t hard, char *detail,
                    size_t cap, size_t *off, int *status) {
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    dl_conn *cn = s->nodes[i];
    int64_t now = dl_mono_us();
    int64_t d = now + (int64_t)t->command_timeout_ms * 1000;
    if (cn->state != DL_CONN_READY)
        d += (int64_t)t->connect_timeout_ms * 1000;
    redisReply *r = NULL;
    int rc = dl_conn_command(cn, 2, argv, lens, d < hard ? d : hard, &r);
    int w;
    if (rc != DLOCK_OK || r->type == REDIS_REPLY_ERROR)
        s->first = (i + 1) % n;
    if (rc != DLOCK_OK) {
        w = snprintf(detail + *off, cap - *off, "%s%s", *off ? "; " : "", cn->err);
    } else if (r->type == REDIS_REPLY_ERROR) {
        *status = DLOCK_ESERVER;
        w = snprintf(detail + *off, cap - *off, "%s%s: %.*s", *off ? "; " : "", cn->addr,
                     (int)(r->len > 120 ? 120 : r->len), r->str);
    } else {
        rc = load_slots(t, s, cn, r);
        dl_conn_batch_reset(cn);
        if (rc == DLOCK_OK)
            return 1;
        *status = rc;
        w = snprintf(detail + *off, cap - *off, "%s%s", *off ? "; " : "", t->ctx->err);
    }
    if (w > 0 && (size_t)w < cap - *off)
        *off += (size_t)w;
    else
        *off = cap - 1;
    return 0;
}

/* Ask the known nodes (connected ones first, then the rest from the seeds
 * on) for the slot map until one gives a good one. Bounded by one connect
 * plus one command timeout overall, and by the caller's deadline cap. A
 * node that failed is asked last next time (s->first): a paused or dead
 * node, which can use up a whole refresh, does not stall every refresh of
 * a wait that rides out a failover. s->avoid is asked only when no other
 * node answered: a master restarted after a failover still reports the
 * slots it no longer serves until gossip reaches it. */
static int refresh(dl_topo *t, dl_cluster *s) {
    int64_t hard = dl_capped(t->ctx, dl_mono_us() + ((int64_t)t->connect_timeout_ms +
                                                     t->command_timeout_ms) * 1000);
    char detail[sizeof t->ctx->err];
    size_t off = 0;
    int status = DLOCK_EIO;
    detail[0] = '\0';
    s->refreshes++;
    s->next_refresh_us = dl_mono_us() + DL_CLU_REFRESH_GAP_MS * 1000;
    /* Nodes may be added while parsing: remember how many to try. */
    int n = s->nnodes;
    int avoid = s->avoid < n ? s->avoid : -1;
    s->avoid = -1;
    char tried[DL_CLU_MAX_NODES];
    memset(tried, 0, (size_t)n);
    if (avoid >= 0)
        tried[avoid] = 1;
    int first = s->first < n ? s->first : 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int k = 0; k < n; k++) {
            int i = pass == 2 ? avoid : (first + k) % n;
            if (i < 0 || (pass < 2 && tried[i]) ||
                (pass == 0 && s->nodes[i]->state != DL_CONN_READY))
                continue;
            tried[i] = 1;
            if (dl_mono_us() >= hard)
                break;
            if (ask_node(t, s, i, n, hard, detail, sizeof detail, &off, &status)) {
                s->loaded = 1;
                s->stale = 0;
                return DLOCK_OK;
            }
            if (pass == 2)
                break;
        }
    }
    return dl_seterr(t->ctx, status, "cluster: no node gave the slot map: %s",
                     detail[0] ? detail : "timed out");
}

/* Whether some node has commands queued that have not run yet: a caller
 * building one pipelined batch over many keys (keepalive.c) asks for
 * targets between appends, and a reload would reset those batches. */
static int batch_open(const dl_cluster *s) {
    for (int i = 0; i < s->nnodes; i++) {
        const dl_conn *cn = s->nodes[i];
        if (cn->status == DLOCK_OK && cn->got < cn->expect)
            return 1;
    }
    return 0;
}

static int cluster_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out) {
    dl_cluster *s = t->cluster;
    if (s == NULL)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "no cluster state");
    int slot = dl_key_slot(key, klen);
    if (slot < 0 || slot >= DL_CLU_SLOTS)
        slot = 0;
    int idx = s->slots[slot];
    /* A failed connection to the slot's node: a replica may have taken
     * over, and that node (back, or back soon) is the last to ask. */
    if (idx != DL_CLU_NONE && s->nodes[idx]->state == DL_CONN_CLOSED &&
        s->nodes[idx]->status != DLOCK_OK) {
        s->stale = 1;
        s->avoid = idx;
    }
    int64_t now = dl_mono_us();
    if ((!s->loaded || idx == DL_CLU_NONE || (s->stale && now >= s->next_refresh_us)) &&
        !batch_open(s)) {
        if (!s->loaded || now >= s->next_refresh_us) {
            char saved[sizeof t->ctx->err];
            memcpy(saved, t->ctx->err, sizeof saved);
            int rc = refresh(t, s);
            if (rc != DLOCK_OK && !s->loaded)
                return rc;
            memcpy(t->ctx->err, saved, sizeof saved); /* an old map still serves */
        }
        idx = s->slots[slot];
    }
    /* Slot not served by any node we know: ask one anyway; it answers with
     * MOVED or CLUSTERDOWN, which says more than we could. */
    if (idx == DL_CLU_NONE)
        idx = 0;
    s->slot = slot;
    s->redirects = 0;
    out->n = 1;
    out->conns[0] = s->nodes[idx];
    return DLOCK_OK;
}

/* Every node serving slots, after a fresh map (an old one still serves if
 * no node answers). */
static int cluster_masters(dl_topo *t, const dl_conn **out, int cap, int *n) {
    dl_cluster *s = t->cluster;
    if (s == NULL)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "no cluster state");
    if (!batch_open(s)) {
        char saved[sizeof t->ctx->err];
        memcpy(saved, t->ctx->err, sizeof saved);
        int rc = refresh(t, s);
        if (rc != DLOCK_OK && !s->loaded)
            return rc;
        memcpy(t->ctx->err, saved, sizeof saved);
    }
    char seen[DL_CLU_MAX_NODES];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < DL_CLU_SLOTS; i++) {
        int idx = s->slots[i];
        if (idx == DL_CLU_NONE || seen[idx])
            continue;
        if (*n == cap)
            return dl_seterr(t->ctx, DLOCK_EPROTO, "cluster: more than %d masters", cap);
        seen[idx] = 1;
        out[(*n)++] = s->nodes[idx];
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
    return node_index(t, s, host, hlen, (int)port);
}

static int cluster_redirect(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to,
                        int *asking) {
    dl_cluster *s = t->cluster;
    *to = NULL;
    *asking = 0;
    if (s == NULL || r == NULL || r->type != REDIS_REPLY_ERROR)
        return 0;
    int code = dl_srv_code(r);
    int moved = code == DL_SRV_MOVED, ask = code == DL_SRV_ASK;
    int again = code == DL_SRV_TRYAGAIN || code == DL_SRV_CLUSTERDOWN;
    if (!moved && !ask && !again)
        return 0;
    if (moved || code == DL_SRV_CLUSTERDOWN)
        s->stale = 1; /* whatever happens next, the map may be out of date */
    if (s->redirects >= DL_CLU_MAX_REDIRECTS)
        return 0;
    s->redirects++;
    if (again) {
        s->tryagain++;
        int64_t pause = DL_CLU_PAUSE_MS;
        if (pause > t->command_timeout_ms / 4)
            pause = t->command_timeout_ms / 4;
        if (pause > 0)
            dl_sleep_until_us(dl_capped(t->ctx, dl_mono_us() + pause * 1000));
        int idx = s->slots[s->slot];
        *to = idx == DL_CLU_NONE ? from : s->nodes[idx];
        return 1;
    }
    size_t skip = moved ? 6 : 4;
    if (r->len <= skip)
        return 0;
    int slot = -1;
    int idx = parse_redirect(t, s, from, r->str + skip, r->len - skip, &slot);
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

/* The node host:port is about to be connected again (dl_topo_recheck):
 * it may be an old master back after a failover, still claiming its old
 * slots. Reload the map before the next call, from the other nodes. */
static void cluster_recheck(dl_topo *t, const char *host, int port) {
    dl_cluster *s = t->cluster;
    if (s == NULL || host == NULL)
        return;
    s->stale = 1;
    s->next_refresh_us = 0;
    for (int i = 0; i < s->nnodes; i++)
        if (s->nodes[i]->port == port && strcmp(s->nodes[i]->host, host) == 0)
            s->avoid = i;
}

void dl_cluster_counters(const dl_topo *t, dl_cluster_stats *out) {
    memset(out, 0, sizeof *out);
    const dl_cluster *s = t->cluster;
    if (s == NULL)
        return;
    out->moved = s->moved;
    out->asks = s->asks;
    out->tryagain = s->tryagain;
    out->refreshes = s->refreshes;
    out->nodes = s->nnodes;
}

const dl_topo_ops dl_topo_cluster_ops = {
    .init = cluster_init,
    .free = cluster_free,
    .targets = cluster_targets,
    .redirect = cluster_redirect,
    .masters = cluster_masters,
    .recheck = cluster_recheck,
};

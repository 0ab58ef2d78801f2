/* cluster_map.c - loading a Cluster's slot map with CLUSTER SLOTS, without
 * blocking: one node asked at a time on the topology's pipes, driven by
 * the engine.
 *
 * The known nodes are asked in turn (connected ones first, then the rest,
 * from the seeds on) until one gives a good map; the whole load is bounded
 * by one connect plus one command timeout. A node that failed is asked
 * last next time (s->first): a paused or dead node, which can use up a
 * whole load, does not stall every load of a wait that rides out a
 * failover. Nothing ends inside the call that started the load.
 *
 * Hostile replies: CLUSTER SLOTS is checked element by element (types,
 * counts, 0 <= start <= end <= 16383, ports 1..65535, host lengths) and a
 * malformed reply is rejected whole; the node table is capped at
 * DL_CLU_MAX_NODES. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "resp.h"

int dl_clu_node(dl_topo *t, dl_cluster *s, const char *host, size_t hlen, int port) {
    for (int i = 0; i < s->nnodes; i++) {
        const dl_conn *cn = &s->nodes[i]->conn;
        if (cn->port == port && strlen(cn->host) == hlen && memcmp(cn->host, host, hlen) == 0)
            return i;
    }
    if (s->nnodes >= DL_CLU_MAX_NODES)
        return -1;
    if (s->nnodes == s->cap) {
        dl_pipe **nn = realloc(s->nodes, (size_t)s->cap * 2 * sizeof *nn);
        if (nn == NULL)
            return -1;
        s->nodes = nn;
        s->cap *= 2;
    }
    char h[DL_URL_HOST_MAX];
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    dl_pipe *p = dl_topo_pipe(t, h, port, NULL, t->cfg);
    if (p == NULL)
        return -1;
    s->nodes[s->nnodes] = p;
    return s->nnodes++;
}

/* Parse a port of 1..65535 from an integer reply. */
static int reply_port(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 1 || r->integer > 65535)
        return -1;
    return (int)r->integer;
}

/* Check one range of a CLUSTER SLOTS reply and map it into s->scratch
 * (adding its master to the node table). DLOCK_OK, or DLOCK_EPROTO with
 * err saying why. */
static int parse_range(dl_topo *t, dl_cluster *s, const dl_conn *from, const redisReply *e,
                       size_t k, char *err, size_t errlen) {
    const redisReply *lo = dl_elem(e, 0), *hi = dl_elem(e, 1), *m = dl_elem(e, 2);
    if (lo == NULL || hi == NULL || m == NULL || lo->type != REDIS_REPLY_INTEGER ||
        hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 || hi->integer < lo->integer ||
        hi->integer >= DL_CLU_SLOTS) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: bad slot range #%zu", from->addr, k);
        return DLOCK_EPROTO;
    }
    const redisReply *h = dl_elem(m, 0);
    int port = reply_port(dl_elem(m, 1));
    if (h == NULL || port < 0 || (h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_NIL)) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: bad master of range #%zu", from->addr, k);
        return DLOCK_EPROTO;
    }
    const char *host = h->type == REDIS_REPLY_STRING ? h->str : "";
    size_t hlen = h->type == REDIS_REPLY_STRING ? h->len : 0;
    if (hlen >= DL_URL_HOST_MAX || memchr(host, '\0', hlen) != NULL) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: bad host in range #%zu", from->addr, k);
        return DLOCK_EPROTO;
    }
    if (hlen == 1 && host[0] == '?')
        return DLOCK_OK; /* endpoint unknown to that node: leave the range unmapped */
    if (hlen == 0) {
        /* No endpoint: the same host we asked, with the given port. */
        host = from->host;
        hlen = strlen(from->host);
    }
    int idx = dl_clu_node(t, s, host, hlen, port);
    if (idx < 0) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: more than %d nodes", from->addr,
                 DL_CLU_MAX_NODES);
        return DLOCK_EPROTO;
    }
    for (long long sl = lo->integer; sl <= hi->integer; sl++)
        s->scratch[sl] = (uint16_t)idx;
    return DLOCK_OK;
}

/* Parse a CLUSTER SLOTS reply into s->scratch (adding nodes as named). */
static int parse_slots(dl_topo *t, dl_cluster *s, const dl_conn *from, const redisReply *r,
                       char *err, size_t errlen) {
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: not an array", from->addr);
        return DLOCK_EPROTO;
    }
    if (r->elements == 0) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: no slots assigned", from->addr);
        return DLOCK_EPROTO;
    }
    if (r->elements > DL_CLU_SLOTS) {
        snprintf(err, errlen, "CLUSTER SLOTS from %s: %zu ranges", from->addr, r->elements);
        return DLOCK_EPROTO;
    }
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        s->scratch[i] = DL_CLU_NONE;
    for (size_t k = 0; k < r->elements; k++) {
        int rc = parse_range(t, s, from, r->element[k], k, err, errlen);
        if (rc != DLOCK_OK)
            return rc;
    }
    return DLOCK_OK;
}

/* The connections of nodes that are not seeds and serve no slot now (they
 * left the cluster, or lost their slots) are closed when idle. */
static void close_unused(dl_cluster *s) {
    char used[DL_CLU_MAX_NODES];
    memset(used, 0, sizeof used);
    for (int i = 0; i < DL_CLU_SLOTS; i++)
        if (s->slots[i] != DL_CLU_NONE)
            used[s->slots[i]] = 1;
    for (int i = s->nseeds; i < s->nnodes; i++)
        if (!used[i] && s->nodes[i]->len == 0 && s->nodes[i]->conn.ctx != NULL)
            dl_pipe_close(s->nodes[i], DLOCK_EIO, "serves no slot");
}

/* Add one node's reason to the load's detail. */
static void add_detail(dl_cluster *s, const char *fmt, const char *a, const char *b) {
    int w = snprintf(s->detail + s->off, sizeof s->detail - s->off, fmt, s->off ? "; " : "",
                     a, b);
    if (w > 0 && (size_t)w < sizeof s->detail - s->off)
        s->off += (size_t)w;
    else
        s->off = sizeof s->detail - 1;
}

static void load_end(dl_topo *t, dl_cluster *s, int ok) {
    s->running = 0;
    s->gen++;
    s->next_refresh_us = dl_mono_us() + DL_CLU_REFRESH_GAP_MS * 1000;
    dl_heap_disarm(t->heap, &s->tick);
    if (ok) {
        s->loaded = 1;
        s->stale = 0;
        t->why[0] = '\0';
        close_unused(s);
        dl_topo_fire(t, DLOCK_OK);
        return;
    }
    dl_topo_fail(t, s->status, 0, "cluster: no node gave the slot map: %s",
                 s->detail[0] ? s->detail : "timed out");
    /* An old map still serves. */
    dl_topo_fire(t, s->loaded ? DLOCK_OK : s->status);
}

static void ask_next(dl_topo *t, dl_cluster *s);

/* A reply (or a failure) from the node asked. */
static void on_slots(void *arg, redisReply *r, int status, int sent) {
    dl_topo_req *q = arg;
    dl_topo *t = q->t;
    dl_cluster *s = t->cluster;
    int i = q->i;
    (void)sent;
    (void)status;
    int live = !t->freeing && q->gen == s->gen && s->running;
    free(q);
    if (!live) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    const dl_conn *cn = &s->nodes[i]->conn;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        s->first = (i + 1) % s->n0;
    if (r == NULL) {
        add_detail(s, "%s%s%s", cn->err, "");
    } else if (r->type == REDIS_REPLY_ERROR) {
        char snip[130];
        snprintf(snip, sizeof snip, ": %.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
        s->status = DLOCK_ESERVER;
        add_detail(s, "%s%s%s", cn->addr, snip);
    } else {
        char err[300];
        int n0 = s->nnodes;
        int rc = parse_slots(t, s, cn, r, err, sizeof err);
        if (rc == DLOCK_OK) {
            memcpy(s->slots, s->scratch, sizeof s->slots);
            freeReplyObject(r);
            load_end(t, s, 1);
            return;
        }
        /* Forget the nodes this bad reply named (nothing refers to them). */
        for (int k = n0; k < s->nnodes; k++)
            dl_topo_pipe_free(t, s->nodes[k]);
        s->nnodes = n0;
        s->status = rc;
        add_detail(s, "%s%s%s", err, "");
    }
    if (r != NULL)
        freeReplyObject(r);
    ask_next(t, s);
}

/* Ask the next node not yet tried (connected ones first), until the
 * load's bound; past it, or with every node tried, the load failed. */
static void ask_next(dl_topo *t, dl_cluster *s) {
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    for (; s->pass < 2; s->pass++, s->k = 0) {
        while (s->k < s->n0) {
            int i = (s->first + s->k) % s->n0;
            dl_pipe *p = s->nodes[i];
            s->k++;
            if (s->tried[i] || (s->pass == 0 && p->conn.state != DL_CONN_READY))
                continue;
            if (dl_mono_us() >= s->hard_us) {
                load_end(t, s, 0);
                return;
            }
            s->tried[i] = 1;
            int rc = dl_topo_send(p, 2, argv, lens, dl_topo_step(t, &p->conn, s->hard_us),
                                  on_slots, dl_topo_req_new(t, s->gen, i, 0));
            if (rc == DLOCK_OK)
                return;
            add_detail(s, "%s%s%s", p->conn.err, "");
        }
    }
    load_end(t, s, 0);
}

static void tick(dl_timer *tm) {
    dl_cluster *s = (dl_cluster *)((char *)tm - offsetof(dl_cluster, tick));
    if (!s->topo->freeing && s->running)
        ask_next(s->topo, s);
}

static void load_start(dl_topo *t, dl_cluster *s) {
    int64_t now = dl_mono_us();
    s->running = 1;
    s->gen++;
    s->refreshes++;
    s->hard_us = now + ((int64_t)t->connect_timeout_ms + t->command_timeout_ms) * 1000;
    s->n0 = s->nnodes;
    if (s->first >= s->n0)
        s->first = 0;
    s->pass = s->k = 0;
    memset(s->tried, 0, sizeof s->tried);
    s->status = DLOCK_EIO;
    s->off = 0;
    s->detail[0] = '\0';
    /* The first question goes out from the timer, at the next processing:
     * whatever happens, nothing ends inside the caller's call. */
    s->tick.fire = tick;
    if (dl_heap_arm(t->heap, &s->tick, now) != 0)
        ask_next(t, s);
}

int dl_clu_load(dl_topo *t, dl_topo_wait *w) {
    dl_cluster *s = t->cluster;
    if (s->running && dl_mono_us() >= s->hard_us)
        s->running = 0; /* left undriven past its bound: start over */
    if (!s->running)
        load_start(t, s);
    dl_topo_queue(t, w);
    return DL_TOPO_PENDING;
}

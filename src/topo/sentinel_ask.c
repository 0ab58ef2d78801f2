/* sentinel_ask.c - finding the master through the sentinels, without
 * blocking: requests on the topology's pipes, driven by the engine.
 *
 * A discovery is a series of passes:
 *   1. every sentinel is asked at once, in one pipeline each,
 *      `SENTINEL MASTER NAME`, `SENTINEL get-master-addr-by-name NAME`,
 *      `SENTINEL MASTER NAME`: the address between two readings of the
 *      master's config-epoch, which must agree. A sentinel switches both at
 *      once (at a failover's promotion), so equal epochs pair the address
 *      with its own epoch: the master's failover epoch goes in the high
 *      bits of its fences (docs/FAILOVER.md);
 *   2. each address given (once per pass, in the order the answers come)
 *      is checked with `ROLE` on the pipe to that address (with the
 *      client's AUTH/SELECT): a sentinel may still name the old master for
 *      a while after it died, and a promoted replica may not have switched
 *      role yet. The first that says "master" ends the discovery;
 *   3. if no sentinel names a working master, and the failures are of the
 *      kind a failover cures (unreachable, not a master yet), another pass
 *      follows DL_SENT_POLL_MS later, until a bounded time has passed
 *      (failover takes the sentinels' down-after time plus an election).
 *      Errors, malformed replies and AUTH failures end the discovery at
 *      the end of the pass.
 * A failed discovery's reason (dl_topo.why) lists why each sentinel (and
 * each candidate master) of its last pass failed, cut to fit the detail
 * string; its code is the first server error among them
 * (DL_SRV_NOMASTER when a sentinel knew no master by that name).
 *
 * Bounds: one discovery polls for at most command_timeout_ms (one pass
 * only when the last one failed less than that long ago), and every
 * request in it is due by poll end + connect + command timeout (its
 * `hard` bound). Nothing ends inside the call that started it: results
 * come from replies, failed connections and the `tick` timer.
 *
 * Sentinels are asked without AUTH and in db 0: the URL's credentials and
 * db are the data nodes'. With rediss-sentinel:// every connection, to the
 * sentinels and to the master, is TLS with the same settings. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "sentinel_int.h"

static void pass_check(dl_topo *t);

/* ---- why a pass failed ---- */

/* Forget the reasons of the previous pass: the message describes the last. */
static void why_reset(dl_sent_why *w) {
    memset(w, 0, sizeof *w);
    w->status = DLOCK_OK;
}

/* Keep one reason (fmt with a and b, as "sentinel %s: %s"), cut to 160 bytes. */
static void note(dl_sent_why *w, int status, int code, const char *fmt, const char *a,
                 const char *b) {
    if (status == DLOCK_EIO)
        w->soft = 1;
    /* An AUTH failure or a server error says more than "connection refused". */
    if (w->status == DLOCK_OK || w->status == DLOCK_EIO)
        w->status = status;
    if (w->code == DL_SRV_NONE)
        w->code = code;
    char one[161];
    snprintf(one, sizeof one, fmt, a, b);
    /* Room for "; " + one, and for the "; ... (N more)" of later reasons. */
    if (w->more > 0 || w->len + 2 + strlen(one) + 24 > sizeof w->msg) {
        w->more++;
        return;
    }
    int n = snprintf(w->msg + w->len, sizeof w->msg - w->len, "%s%s", w->len ? "; " : "", one);
    if (n > 0)
        w->len += (size_t)n;
}

/* The pass's reasons for the final message, "; ... (N more)" included. */
static const char *why_text(dl_sent_why *w) {
    if (w->len == 0)
        return "no sentinel answered";
    if (w->more > 0)
        snprintf(w->msg + w->len, sizeof w->msg - w->len, "; ... (%d more)", w->more);
    return w->msg;
}

/* Text of a string/status/error reply for messages (at most 120 bytes). */
static void reply_snip(const redisReply *r, char *out, size_t n) {
    if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                      r->type == REDIS_REPLY_ERROR))
        snprintf(out, n, "%.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
    else
        snprintf(out, n, "unexpected reply type %d", r ? r->type : -1);
}

/* ---- the sentinels' answers ---- */

/* The config-epoch field of a SENTINEL MASTER reply (field/value pairs),
 * or -1 if there is none (an error reply: no such master). */
static int64_t config_epoch(const redisReply *r) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == 12 && memcmp(k->str, "config-epoch", 12) == 0)
            return dl_reply_int(r->element[i + 1], -1);
    }
    return -1;
}

static void drop_replies(dl_sentinel *s, int i) {
    for (int k = 0; k < 3; k++) {
        if (s->rep[i][k] != NULL)
            freeReplyObject(s->rep[i][k]);
        s->rep[i][k] = NULL;
    }
}

/* The address sentinel i gave, as a candidate (0 and a reason in s->w if
 * it gave none). */
static int read_answer(dl_topo *t, dl_sentinel *s, int i, dl_sent_cand *c) {
    const char *addr = s->sp[i]->conn.addr;
    const redisReply *r = s->rep[i][1];
    c->epoch = config_epoch(s->rep[i][0]);
    c->from = i;
    if (c->epoch != config_epoch(s->rep[i][2])) {
        note(&s->w, DLOCK_EIO, DL_SRV_NONE, "sentinel %s: %s", addr,
             "a failover switched the master while asked (asking again)");
        return 0;
    }
    if (c->epoch > DL_EPOCH_MAX) {
        note(&s->w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", addr,
             "config-epoch too large for a fence's high bits");
        return 0;
    }
    char snip[128];
    if (r->type == REDIS_REPLY_NIL) {
        note(&s->w, DLOCK_EIO, DL_SRV_NOMASTER, "sentinel %s does not know a master named '%s'",
             addr, t->url->master_name);
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        reply_snip(r, snip, sizeof snip);
        note(&s->w, DLOCK_ESERVER, dl_srv_code(r), "sentinel %s: %s", addr, snip);
        return 0;
    }
    const redisReply *h = dl_elem(r, 0), *p = dl_elem(r, 1);
    if (r->elements != 2 || h == NULL || p == NULL || h->type != REDIS_REPLY_STRING ||
        h->len == 0 || h->len >= sizeof c->host || memchr(h->str, '\0', h->len) != NULL ||
        (p->type != REDIS_REPLY_STRING && p->type != REDIS_REPLY_INTEGER)) {
        note(&s->w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", addr,
             "unexpected reply to SENTINEL get-master-addr-by-name");
        return 0;
    }
    int64_t pv = dl_reply_int(p, -1);
    if (pv < 1 || pv > 65535) {
        note(&s->w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", addr,
             "bad master port in reply");
        return 0;
    }
    memcpy(c->host, h->str, h->len);
    c->host[h->len] = '\0';
    c->port = (int)pv;
    return 1;
}

/* Sentinel i answered (all three replies in s->rep[i]): its address joins
 * the candidates of this pass, unless one of them has it already. */
static void answered(dl_topo *t, dl_sentinel *s, int i) {
    dl_sent_cand c;
    int ok = read_answer(t, s, i, &c);
    drop_replies(s, i);
    for (int k = 0; ok && k < s->ncand; k++)
        ok = !(s->cand[k].port == c.port && strcmp(s->cand[k].host, c.host) == 0);
    if (ok)
        s->cand[s->ncand++] = c;
}

static void on_sentinel(void *arg, redisReply *r, int status, int sent) {
    dl_topo_req *q = arg;
    dl_topo *t = q->t;
    dl_sentinel *s = t->sentinel;
    int i = q->i, k = q->k;
    (void)sent;
    int live = !t->freeing && q->gen == s->gen && s->asked[i] == 1;
    free(q);
    if (!live) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    if (r == NULL) {
        dl_conn *sc = &s->sp[i]->conn;
        note(&s->w, status, sc->code, "sentinel %s%s", "", sc->err);
        drop_replies(s, i);
        s->asked[i] = 2;
    } else {
        s->rep[i][k] = r;
        if (k < 2)
            return;
        s->asked[i] = 2;
        answered(t, s, i);
    }
    pass_check(t);
}

/* Send sentinel i its three questions; 0 if they could not be sent. */
static int ask(dl_topo *t, dl_sentinel *s, int i) {
    const char *name = t->url->master_name;
    const char *m[3] = {"SENTINEL", "MASTER", name};
    const char *g[3] = {"SENTINEL", "get-master-addr-by-name", name};
    size_t ml[3] = {8, 6, strlen(name)}, gl[3] = {8, 23, strlen(name)};
    dl_pipe *p = s->sp[i];
    int64_t d = dl_topo_step(t, &p->conn, s->hard_us);
    s->asked[i] = 1;
    for (int k = 0; k < 3; k++) {
        int rc = dl_topo_send(p, 3, k == 1 ? g : m, k == 1 ? gl : ml, d, on_sentinel,
                              dl_topo_req_new(t, s->gen, i, k));
        if (rc != DLOCK_OK) {
            note(&s->w, rc, p->conn.code, "sentinel %s%s", "", p->conn.err);
            drop_replies(s, i);
            s->asked[i] = 2; /* replies of the ones sent are dropped */
            return 0;
        }
    }
    return 1;
}

/* ---- checking a candidate ---- */

/* The pipe to a master at host:port: the one met before, or a new one (an
 * idle one re-used when DL_SENT_MAX_MASTERS were met). NULL if none. */
static dl_pipe *master_pipe(dl_topo *t, dl_sentinel *s, const char *host, int port) {
    for (int i = 0; i < s->nm; i++)
        if (s->mp[i]->conn.port == port && strcmp(s->mp[i]->conn.host, host) == 0)
            return s->mp[i];
    if (s->nm < DL_SENT_MAX_MASTERS) {
        dl_pipe *p = dl_topo_pipe(t, host, port, NULL, t->cfg);
        if (p != NULL)
            s->mp[s->nm++] = p;
        return p;
    }
    for (int i = 0; i < s->nm; i++) {
        dl_pipe *p = s->mp[i];
        if (p != s->master && p->len == 0) {
            dl_pipe_close(p, DLOCK_EIO, "re-used for another master");
            dl_pipe_init(p, host, port, NULL, t->cfg);
            p->owner = t;
            return p;
        }
    }
    return NULL;
}

/* The master is found: it serves from now on. */
static void found(dl_topo *t, dl_sentinel *s, dl_pipe *p, const dl_sent_cand *c) {
    p->conn.epoch = c->epoch;
    p->was_up = 1; /* checked now: a reconnect later must check again */
    s->master = p;
    s->next = c->from;
    s->fail_us = 0;
    s->running = s->in_pass = 0;
    s->gen++; /* the other sentinels' answers no longer matter */
    dl_heap_disarm(t->heap, &s->tick);
    for (int i = 0; i < s->n; i++)
        drop_replies(s, i);
    t->why[0] = '\0';
    dl_topo_fire(t, DLOCK_OK);
}

static void on_role(void *arg, redisReply *r, int status, int sent) {
    dl_topo_req *q = arg;
    dl_topo *t = q->t;
    dl_sentinel *s = t->sentinel;
    int k = q->k;
    (void)sent;
    int live = !t->freeing && q->gen == s->gen && s->checking;
    free(q);
    if (!live) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    s->checking = 0;
    const dl_sent_cand *c = &s->cand[k];
    dl_pipe *p = s->cpipe;
    const redisReply *role = r != NULL ? dl_elem(r, 0) : NULL;
    if (role != NULL &&
        (role->type == REDIS_REPLY_STRING || role->type == REDIS_REPLY_STATUS) &&
        role->len == 6 && memcmp(role->str, "master", 6) == 0) {
        freeReplyObject(r);
        found(t, s, p, c);
        return;
    }
    char snip[128];
    if (r == NULL) {
        note(&s->w, status, p->conn.code, "master %s%s", "", p->conn.err);
    } else {
        if (r->type == REDIS_REPLY_ERROR)
            reply_snip(r, snip, sizeof snip);
        else if (role != NULL)
            reply_snip(role, snip, sizeof snip);
        else
            snprintf(snip, sizeof snip, "unexpected reply to ROLE");
        char addr[DL_URL_HOST_MAX + 8];
        snprintf(addr, sizeof addr, "%s:%d", c->host, c->port);
        note(&s->w, DLOCK_EIO, DL_SRV_NONE, "%s (named by the sentinels) is not a master: role %s",
             addr, snip);
        freeReplyObject(r);
    }
    pass_check(t);
}

/* Send ROLE to the next candidate; 0 if it could not be sent (reason
 * noted). */
static int check_next(dl_topo *t, dl_sentinel *s) {
    int k = s->nchecked++;
    const dl_sent_cand *c = &s->cand[k];
    dl_pipe *p = master_pipe(t, s, c->host, c->port);
    if (p == NULL) {
        note(&s->w, DLOCK_ENOMEM, 0, "master %s%s", c->host, ": out of memory");
        return 0;
    }
    const char *argv[1] = {"ROLE"};
    size_t lens[1] = {4};
    int rc = dl_topo_send(p, 1, argv, lens, dl_topo_step(t, &p->conn, s->hard_us), on_role,
                          dl_topo_req_new(t, s->gen, c->from, k));
    if (rc != DLOCK_OK) {
        note(&s->w, rc, p->conn.code, "master %s%s", "", p->conn.err);
        return 0;
    }
    s->checking = 1;
    s->cpipe = p;
    return 1;
}

/* ---- passes ---- */

static void pass_start(dl_topo *t, dl_sentinel *s) {
    s->gen++;
    s->in_pass = 1;
    s->ncand = s->nchecked = s->checking = 0;
    why_reset(&s->w);
    int waiting = 0;
    for (int k = 0; k < s->n; k++) {
        int i = (s->next + k) % s->n;
        drop_replies(s, i);
        s->asked[i] = 0;
        waiting += ask(t, s, i);
    }
    if (!waiting) /* every send failed at once: end the pass from the timer */
        dl_heap_arm(t->heap, &s->tick, dl_mono_us());
}

/* The discovery failed: nothing is known, and every waiter is told. */
static void discovery_failed(dl_topo *t, dl_sentinel *s) {
    s->master = NULL;
    s->running = s->in_pass = 0;
    s->gen++;
    s->fail_us = dl_mono_us();
    if (s->fail_us == 0)
        s->fail_us = 1;
    int st = s->w.status == DLOCK_OK ? DLOCK_EIO : s->w.status;
    dl_topo_fail(t, st, s->w.code, "sentinel: no master '%s' found: %s", t->url->master_name,
                 why_text(&s->w));
    dl_topo_fire(t, st);
}

/* After each answer: check the next candidate, or end the pass once every
 * sentinel has answered and no candidate is left. */
static void pass_check(dl_topo *t) {
    dl_sentinel *s = t->sentinel;
    if (!s->running || !s->in_pass || s->checking)
        return;
    while (s->nchecked < s->ncand)
        if (check_next(t, s))
            return;
    for (int i = 0; i < s->n; i++)
        if (s->asked[i] == 1)
            return;
    s->in_pass = 0;
    int64_t now = dl_mono_us();
    /* Only unreachable servers (a failover in progress) are worth waiting
     * for; errors, bad replies and AUTH failures are not. */
    if (now >= s->poll_until_us || now >= s->hard_us || !s->w.soft) {
        discovery_failed(t, s);
        return;
    }
    /* Keep the reasons so far for a caller whose deadline comes first. */
    dl_topo_fail(t, DLOCK_EIO, s->w.code, "sentinel: no master '%s' found yet: %s",
                 t->url->master_name, why_text(&s->w));
    int64_t at = now + DL_SENT_POLL_MS * 1000;
    if (dl_heap_arm(t->heap, &s->tick, at < s->poll_until_us ? at : s->poll_until_us) != 0)
        discovery_failed(t, s);
}

static void tick(dl_timer *tm) {
    dl_sentinel *s = (dl_sentinel *)((char *)tm - offsetof(dl_sentinel, tick));
    dl_topo *t = s->topo;
    if (t->freeing || !s->running)
        return;
    if (s->in_pass)
        pass_check(t); /* a pass whose sends all failed at once */
    else
        pass_start(t, s);
}

int dl_sent_discover(dl_topo *t, dl_topo_wait *w) {
    dl_sentinel *s = t->sentinel;
    int64_t now = dl_mono_us();
    if (s->running && now >= s->hard_us)
        s->running = 0; /* left undriven past its bound: start over */
    if (!s->running) {
        /* How long it may poll: command_timeout_ms, or one pass if one
         * failed less than that long ago. */
        int64_t span = (int64_t)t->command_timeout_ms * 1000;
        s->poll_until_us = s->fail_us != 0 && now - s->fail_us < span ? now : now + span;
        s->hard_us = s->poll_until_us +
                     ((int64_t)t->connect_timeout_ms + t->command_timeout_ms) * 1000;
        s->running = 1;
        s->tick.fire = tick;
        dl_heap_disarm(t->heap, &s->tick);
        pass_start(t, s);
    }
    dl_topo_queue(t, w);
    return DL_TOPO_PENDING;
}

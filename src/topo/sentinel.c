/* sentinel.c - Redis Sentinel: find the master through the sentinels.
 *
 * A redis-sentinel:// URL names sentinels and a master name. The master is
 * found lazily, by the first call that needs it:
 *   1. ask the sentinels in turn `SENTINEL get-master-addr-by-name NAME`
 *      (starting with the one that answered last time), pipelined between
 *      two `SENTINEL MASTER NAME` whose config-epoch must agree: the
 *      master's failover epoch, paired with its address, goes in the high
 *      bits of its fences (docs/FAILOVER.md);
 *   2. connect to the address given (with the client's AUTH/SELECT) and
 *      check with `ROLE` that it really is a master: a sentinel may still
 *      report the old master for a while after it died, and a promoted
 *      replica may not have switched role yet;
 *   3. if no sentinel names a working master, and the failures are of the
 *      kind a failover cures (unreachable, not a master yet), poll again
 *      every DL_SENT_POLL_MS until a bounded time has passed (failover takes
 *      the sentinels' down-after time plus an election). Errors, malformed
 *      replies and AUTH failures end the discovery at once.
 * A failed discovery's detail lists why each sentinel (and each candidate
 * master) of its last pass failed, cut to fit the detail string, and the
 * context's code is the first server error among them (DL_SRV_NOMASTER when
 * a sentinel knew no master by that name).
 * When the master's connection fails (I/O error, not a timeout) or it
 * answers READONLY / MASTERDOWN / UNBLOCKED (it was demoted to a replica),
 * quorum.c asks for a redirect (sentinel_redirect), which rediscovers and
 * lets the call be re-sent to the new master.
 *
 * The candidate is verified on a second connection slot, so the current
 * master's connection (and the error reply quorum.c still holds from it) is
 * dropped only once a new master has been found.
 *
 * Bounds: one discovery polls for at most command_timeout_ms, and every
 * network step in it is cut at poll end + connect + command timeout, and
 * never later than the caller's deadline cap (the context's cap_us). After a
 * discovery failed, the next ones within command_timeout_ms make one pass
 * only, so a call that meets a dead master several times (quorum.c retries
 * a dead connection once) does not poll twice.
 *
 * Sentinels are contacted without AUTH and in db 0: the URL's credentials
 * and db are the data nodes'. With rediss-sentinel:// every connection,
 * to the sentinels and to the master, is TLS with the same settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "resp.h"
#include "topology.h"

#define DL_SENT_POLL_MS 100 /* pause between discovery passes */

struct dl_sentinel {
    dl_conn_cfg scfg; /* for the sentinels: no AUTH, db 0 */
    int n;            /* sentinels */
    dl_conn sconns[DL_URL_MAX_HOSTS];
    dl_conn m[2];    /* the master, and a candidate being verified */
    int cur;         /* index in m of the master's connection */
    int known;       /* m[cur] is the verified master */
    int next;        /* sentinel to ask first */
    int64_t fail_us; /* when the last discovery failed; 0 after a success */
};

static int sentinel_init(dl_topo *t) {
    const dl_url *u = t->url;
    if (u->nhosts < 1 || u->nhosts > DL_URL_MAX_HOSTS)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "redis-sentinel:// needs 1..%d sentinels",
                         DL_URL_MAX_HOSTS);
    if (u->master_name[0] == '\0')
        return dl_seterr(t->ctx, DLOCK_EINVAL, "missing master name in redis-sentinel:// URL");
    dl_sentinel *s = calloc(1, sizeof *s);
    if (s == NULL)
        return dl_seterr(t->ctx, DLOCK_ENOMEM, "out of memory");
    s->scfg.connect_timeout_ms = t->connect_timeout_ms;
    s->scfg.tls = t->cfg.tls; /* rediss-sentinel://: the sentinels too */
    s->n = u->nhosts;
    for (int i = 0; i < s->n; i++)
        dl_conn_init(&s->sconns[i], u->hosts[i].host, u->hosts[i].port, NULL, &s->scfg);
    /* Unknown address until discovered; the conns are only placeholders. */
    dl_conn_init(&s->m[0], "", 0, NULL, &t->cfg);
    dl_conn_init(&s->m[1], "", 0, NULL, &t->cfg);
    t->sentinel = s;
    t->n = 0;
    t->conns = NULL;
    return DLOCK_OK;
}

static void sentinel_free(dl_topo *t) {
    dl_sentinel *s = t->sentinel;
    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++)
        dl_conn_close(&s->sconns[i]);
    dl_conn_close(&s->m[0]);
    dl_conn_close(&s->m[1]);
    free(s);
    t->sentinel = NULL;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Deadline for one step on `cn`: a command timeout, plus a connect timeout
 * if it must connect first, never past `hard`. */
static int64_t step_deadline(const dl_topo *t, const dl_conn *cn, int64_t hard) {
    int64_t d = dl_mono_us() + (int64_t)t->command_timeout_ms * 1000;
    if (cn->state != DL_CONN_READY)
        d += (int64_t)t->connect_timeout_ms * 1000;
    return min64(d, hard);
}

/* Text of a string/status/error reply for messages (at most 120 bytes). */
static void reply_snip(const redisReply *r, char *out, size_t n) {
    if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                      r->type == REDIS_REPLY_ERROR))
        snprintf(out, n, "%.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
    else
        snprintf(out, n, "unexpected reply type %d", r ? r->type : -1);
}

/* Why the steps of one discovery pass failed: every sentinel's (and every
 * candidate master's) reason, "; "-joined, for the final message. */
typedef struct why {
    int status; /* the most telling status of the pass */
    int code;   /* the first server error code (dl_srv_code) of the pass */
    int soft;   /* a failure in this pass that waiting may cure (EIO) */
    int more;   /* reasons left out: msg was full */
    size_t len;
    char msg[400]; /* with the client's prefix, fits the 512-byte detail */
} why;

/* Forget the reasons of the previous pass: the message describes the last. */
static void why_reset(why *w) {
    w->status = DLOCK_OK;
    w->code = DL_SRV_NONE;
    w->soft = 0;
    w->more = 0;
    w->len = 0;
    w->msg[0] = '\0';
}

/* Keep one reason (fmt with a and b, as "sentinel %s: %s"), cut to 160 bytes. */
static void note(why *w, int status, int code, const char *fmt, const char *a, const char *b) {
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
static const char *why_text(why *w) {
    if (w->len == 0)
        return "no sentinel answered";
    if (w->more > 0)
        snprintf(w->msg + w->len, sizeof w->msg - w->len, "; ... (%d more)", w->more);
    return w->msg;
}

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

/* SENTINEL MASTER, get-master-addr-by-name, SENTINEL MASTER, in one
 * pipeline on sentinel i: the address, between two readings of the
 * master's config-epoch. A sentinel switches both at once (at a failover's
 * promotion), so equal epochs pair the address with its own epoch. 0 if
 * the sentinel did not answer (reason in *w). */
static int ask_three(dl_topo *t, dl_conn *sc, int64_t hard, why *w) {
    const char *name = t->url->master_name;
    const char *m[3] = {"SENTINEL", "MASTER", name};
    const char *g[3] = {"SENTINEL", "get-master-addr-by-name", name};
    size_t ml[3] = {8, 6, strlen(name)}, gl[3] = {8, 23, strlen(name)};
    dl_conn_batch_reset(sc);
    int rc = dl_conn_append(sc, 3, m, ml);
    if (rc == DLOCK_OK)
        rc = dl_conn_append(sc, 3, g, gl);
    if (rc == DLOCK_OK)
        rc = dl_conn_append(sc, 3, m, ml);
    if (rc == DLOCK_OK) {
        dl_conn *one = sc;
        dl_conn_run(&one, 1, step_deadline(t, sc, hard));
        rc = sc->status;
    }
    if (rc != DLOCK_OK) {
        note(w, rc, sc->code, "sentinel %s%s", "", sc->err);
        dl_conn_close(sc);
        return 0;
    }
    return 1;
}

/* Ask sentinel i for the master's address and its failover epoch (-1 if
 * the sentinel gives none). Returns 1 and fills host/port/epoch, or 0
 * (reason in *w). */
static int ask_sentinel(dl_topo *t, dl_sentinel *s, int i, int64_t hard, char *host,
                        size_t hostlen, int *port, int64_t *epoch, why *w) {
    dl_conn *sc = &s->sconns[i];
    if (!ask_three(t, sc, hard, w))
        return 0;
    const redisReply *r = sc->replies[1];
    *epoch = config_epoch(sc->replies[0]);
    if (*epoch != config_epoch(sc->replies[2])) {
        note(w, DLOCK_EIO, DL_SRV_NONE, "sentinel %s: %s", sc->addr,
             "a failover switched the master while asked (asking again)");
        return 0;
    }
    if (*epoch > DL_EPOCH_MAX) {
        note(w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", sc->addr,
             "config-epoch too large for a fence's high bits");
        return 0;
    }
    char snip[128];
    if (r->type == REDIS_REPLY_NIL) {
        note(w, DLOCK_EIO, DL_SRV_NOMASTER, "sentinel %s does not know a master named '%s'",
             sc->addr, t->url->master_name);
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        reply_snip(r, snip, sizeof snip);
        note(w, DLOCK_ESERVER, dl_srv_code(r), "sentinel %s: %s", sc->addr, snip);
        return 0;
    }
    const redisReply *h = dl_elem(r, 0), *p = dl_elem(r, 1);
    if (r->elements != 2 || h == NULL || p == NULL || h->type != REDIS_REPLY_STRING ||
        h->len == 0 || h->len >= hostlen || memchr(h->str, '\0', h->len) != NULL ||
        (p->type != REDIS_REPLY_STRING && p->type != REDIS_REPLY_INTEGER)) {
        note(w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", sc->addr,
             "unexpected reply to SENTINEL get-master-addr-by-name");
        return 0;
    }
    int64_t pv = dl_reply_int(p, -1);
    if (pv < 1 || pv > 65535) {
        note(w, DLOCK_EPROTO, DL_SRV_NONE, "sentinel %s: %s", sc->addr,
             "bad master port in reply");
        return 0;
    }
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = (int)pv;
    return 1;
}

/* Connect the candidate slot to host:port and check with ROLE that it is a
 * master. Returns 1 if so (the slot is then ready for commands, and carries
 * the epoch the sentinel gave with the address). */
static int verify_master(dl_topo *t, dl_sentinel *s, const char *host, int port,
                         int64_t epoch, int64_t hard, why *w) {
    dl_conn *m = &s->m[1 - s->cur];
    dl_conn_close(m);
    dl_conn_init(m, host, port, NULL, &t->cfg);
    m->epoch = epoch;
    const char *argv[1] = {"ROLE"};
    size_t lens[1] = {4};
    redisReply *r = NULL;
    int rc = dl_conn_command(m, 1, argv, lens, step_deadline(t, m, hard), &r);
    if (rc != DLOCK_OK) {
        note(w, rc, m->code, "master %s%s", "", m->err);
        dl_conn_close(m);
        return 0;
    }
    const redisReply *role = dl_elem(r, 0);
    if (role != NULL && (role->type == REDIS_REPLY_STRING || role->type == REDIS_REPLY_STATUS) &&
        role->len == 6 && memcmp(role->str, "master", 6) == 0) {
        dl_conn_batch_reset(m);
        return 1;
    }
    char snip[128];
    if (r->type == REDIS_REPLY_ERROR)
        reply_snip(r, snip, sizeof snip);
    else if (role != NULL)
        reply_snip(role, snip, sizeof snip);
    else
        snprintf(snip, sizeof snip, "unexpected reply to ROLE");
    note(w, DLOCK_EIO, DL_SRV_NONE, "%s (named by the sentinels) is not a master: role %s",
         m->addr, snip);
    dl_conn_close(m);
    return 0;
}

/* Find and verify the master. Polls until poll_until_us (at least one pass).
 * On success the verified connection becomes the master's (the old one is
 * closed) and DLOCK_OK is returned; otherwise the client's error is set and
 * the old connection is left untouched. */
static int discover(dl_topo *t, dl_sentinel *s, int64_t poll_until_us) {
    /* The caller's deadline (dlock_wait's cap) bounds the whole discovery. */
    int64_t hard = dl_capped(t->ctx, poll_until_us + ((int64_t)t->connect_timeout_ms +
                                                      t->command_timeout_ms) * 1000);
    why w;
    for (;;) {
        /* Addresses already found wanting in this pass. */
        char tried[DL_URL_MAX_HOSTS][DL_URL_HOST_MAX + 8];
        int ntried = 0;
        why_reset(&w);
        for (int k = 0; k < s->n && dl_mono_us() < hard; k++) {
            int i = (s->next + k) % s->n;
            char host[DL_URL_HOST_MAX];
            int port = 0;
            int64_t epoch = -1;
            if (!ask_sentinel(t, s, i, hard, host, sizeof host, &port, &epoch, &w))
                continue;
            char key[DL_URL_HOST_MAX + 8];
            snprintf(key, sizeof key, "%s:%d", host, port);
            int seen = 0;
            for (int j = 0; j < ntried; j++)
                seen |= strcmp(tried[j], key) == 0;
            if (seen)
                continue;
            if (verify_master(t, s, host, port, epoch, hard, &w)) {
                dl_conn_close(&s->m[s->cur]);
                s->cur = 1 - s->cur;
                s->known = 1;
                s->next = i;
                s->fail_us = 0;
                return DLOCK_OK;
            }
            memcpy(tried[ntried++], key, sizeof key);
        }
        int64_t now = dl_mono_us();
        /* Only unreachable servers (a failover in progress) are worth
         * waiting for; errors, bad replies and AUTH failures are not. */
        if (now >= poll_until_us || now >= hard || !w.soft)
            break;
        dl_sleep_until_us(min64(now + DL_SENT_POLL_MS * 1000, poll_until_us));
    }
    s->known = 0;
    s->fail_us = dl_mono_us();
    if (s->fail_us == 0)
        s->fail_us = 1;
    int rc = dl_seterr(t->ctx, w.status == DLOCK_OK ? DLOCK_EIO : w.status,
                       "sentinel: no master '%s' found: %s", t->url->master_name, why_text(&w));
    t->ctx->code = w.code;
    return rc;
}

/* How long a discovery may poll: command_timeout_ms, or one pass if one
 * failed less than that long ago. */
static int64_t poll_until(const dl_topo *t, const dl_sentinel *s) {
    int64_t now = dl_mono_us();
    int64_t span = (int64_t)t->command_timeout_ms * 1000;
    if (s->fail_us != 0 && now - s->fail_us < span)
        return now;
    return dl_capped(t->ctx, now + span);
}

static int sentinel_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out) {
    (void)key;
    (void)klen;
    dl_sentinel *s = t->sentinel;
    if (s == NULL)
        return dl_seterr(t->ctx, DLOCK_EINVAL, "no sentinel state");
    const dl_conn *m = &s->m[s->cur];
    /* The last call on the master failed in a way quorum.c does not report
     * (a timeout: the master may be partitioned away while the sentinels
     * fail over): ask the sentinels again before reconnecting. */
    if (s->known && m->state == DL_CONN_CLOSED && m->status != DLOCK_OK)
        s->known = 0;
    if (!s->known) {
        int rc = discover(t, s, poll_until(t, s));
        if (rc != DLOCK_OK)
            return rc;
    }
    out->n = 1;
    out->conns[0] = &s->m[s->cur];
    return DLOCK_OK;
}

static int sentinel_redirect(dl_topo *t, dl_conn *from, const redisReply *r, dl_conn **to,
                             int *asking) {
    dl_sentinel *s = t->sentinel;
    *to = NULL;
    *asking = 0;
    if (s == NULL || from != &s->m[s->cur])
        return 0;
    if (r != NULL) {
        /* Only errors that mean "this server is no longer the master". */
        int code = dl_srv_code(r);
        if (code != DL_SRV_READONLY && code != DL_SRV_MASTERDOWN && code != DL_SRV_UNBLOCKED)
            return 0;
    }
    /* The error text of the failed call must survive a failed discovery. */
    char saved[sizeof t->ctx->err];
    memcpy(saved, t->ctx->err, sizeof saved);
    if (discover(t, s, poll_until(t, s)) != DLOCK_OK) {
        /* Keep the discovery's reason next to the original failure. */
        char detail[sizeof t->ctx->err];
        memcpy(detail, t->ctx->err, sizeof detail);
        memcpy(t->ctx->err, saved, sizeof saved);
        if (r == NULL) {
            char *e = from->err;
            size_t used = strlen(e);
            if (used + 3 < sizeof from->err)
                snprintf(e + used, sizeof from->err - used, " (%s)", detail);
        }
        return 0;
    }
    memcpy(t->ctx->err, saved, sizeof saved);
    *to = &s->m[s->cur];
    return 1;
}

static void sentinel_recheck(dl_topo *t, const char *host, int port) {
    (void)host; /* whatever it was: the sentinels say which master is */
    (void)port;
    if (t->sentinel != NULL)
        t->sentinel->known = 0;
}

const dl_topo_ops dl_topo_sentinel_ops = {
    .recheck = sentinel_recheck,
    .init = sentinel_init,
    .free = sentinel_free,
    .targets = sentinel_targets,
    .redirect = sentinel_redirect,
};

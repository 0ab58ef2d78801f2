/* sentinel.c - Redis Sentinel: requests go to the master the sentinels
 * name, found (sentinel_ask.c) by the first request that needs it, and
 * found again when it is in doubt:
 *   - its connection failed, or was up and must be made again (the server
 *     closed it, restarted, or stopped answering): nothing, a release
 *     included, goes to a restarted or deposed master that the sentinels
 *     no longer name, so the sentinels and ROLE are asked first;
 *   - it answered READONLY, MASTERDOWN or UNBLOCKED (it was demoted to a
 *     replica): the request waits for the new master and is sent there;
 *   - a sentinel announced a switch of this master (+switch-master, on a
 *     subscription kept on one sentinel while a master is known, unless
 *     the URL says sentinel_watch=off: what has arrived is read before a
 *     request is routed, at most once a millisecond, so a blocking caller
 *     that was idle meanwhile learns of it too).
 * While a discovery runs, every request waits for it (the old master may
 * be a replica by now). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "resp.h"
#include "sentinel_int.h"

#define SUB_RETRY_MS 1000 /* pause before subscribing again after a failure */
#define SUB_DRAIN_US 1000 /* at most one read of the subscription per ms (sub_drain) */

static int sentinel_init(dl_topo *t) {
    const dl_url *u = t->url;
    dl_sentinel *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DLOCK_ENOMEM;
    t->sentinel = s;
    s->topo = t;
    dl_timer_init(&s->tick, NULL);
    s->scfg.connect_timeout_ms = t->connect_timeout_ms;
    s->scfg.tls = t->cfg->tls; /* rediss-sentinel://: the sentinels too */
    for (int i = 0; i < u->nhosts && i < DL_URL_MAX_HOSTS; i++) {
        s->sp[i] = dl_topo_pipe(t, u->hosts[i].host, u->hosts[i].port, NULL, &s->scfg);
        if (s->sp[i] == NULL)
            return DLOCK_ENOMEM;
        s->n++;
    }
    return DLOCK_OK;
}

static void sentinel_free(dl_topo *t) {
    dl_sentinel *s = t->sentinel;
    if (s == NULL)
        return;
    dl_heap_disarm(t->heap, &s->tick);
    s->scfg.forked = t->cfg->forked; /* in a child: close without a word */
    dl_topo_pipe_free(t, s->sub);
    for (int i = 0; i < s->n; i++)
        dl_topo_pipe_free(t, s->sp[i]);
    for (int i = 0; i < s->nm; i++)
        dl_topo_pipe_free(t, s->mp[i]);
    for (int i = 0; i < DL_URL_MAX_HOSTS; i++)
        for (int k = 0; k < 3; k++)
            if (s->rep[i][k] != NULL)
                freeReplyObject(s->rep[i][k]);
    free(s);
    t->sentinel = NULL;
}

/* Whether the master must be checked again before use: its connection
 * failed (not a clean close), or was up and is to be made again. An idle
 * connection the server closed meanwhile shows now. */
static int in_doubt(dl_pipe *m) {
    if (m->len == 0)
        dl_conn_check_idle(&m->conn);
    return m->conn.state == DL_CONN_CLOSED && (m->was_up || m->conn.status != DLOCK_OK);
}

/* ---- the +switch-master subscription ---- */

/* A message on +switch-master: "<name> <old ip> <old port> <new ip> <new
 * port>". A switch of our master puts it in doubt: the next request finds
 * the master anew (the sentinels, then ROLE) before it is sent. */
static void on_switch(dl_pipe *p, redisReply *r) {
    dl_topo *t = p->owner;
    dl_sentinel *s = t->sentinel;
    const redisReply *msg = r->elements == 3 ? r->element[2] : NULL;
    size_t nl = strlen(t->url->master_name);
    if (msg != NULL && msg->type == REDIS_REPLY_STRING && msg->len > nl &&
        memcmp(msg->str, t->url->master_name, nl) == 0 && msg->str[nl] == ' ' && !s->running)
        s->master = NULL;
    freeReplyObject(r);
}

/* SUBSCRIBE's own answer: nothing to do (a failure closes the pipe, and
 * sub_keep subscribes again later). */
static void on_subscribed(void *arg, redisReply *r, int status, int sent) {
    (void)arg;
    (void)status;
    (void)sent;
    freeReplyObject(r);
}

/* Keep the subscription up while a master is known: after a failure, on
 * the next sentinel, at most once per SUB_RETRY_MS. */
static void sub_keep(dl_topo *t) {
    dl_sentinel *s = t->sentinel;
    if (s->sub != NULL && s->sub->conn.state != DL_CONN_CLOSED)
        return;
    int64_t now = dl_mono_us();
    if (now < s->sub_retry_us)
        return;
    s->sub_retry_us = now + (int64_t)SUB_RETRY_MS * 1000;
    if (s->sub != NULL) { /* it failed: try the next sentinel */
        dl_topo_pipe_free(t, s->sub);
        s->sub = NULL;
        s->sub_from = (s->sub_from + 1) % s->n;
    } else {
        s->sub_from = s->next % s->n;
    }
    const dl_host *h = &t->url->hosts[s->sub_from];
    s->sub = dl_topo_pipe(t, h->host, h->port, NULL, &s->scfg);
    if (s->sub == NULL)
        return;
    s->sub->on_push = on_switch;
    const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
    size_t lens[2] = {9, 14};
    int64_t due = now + ((int64_t)t->connect_timeout_ms + t->command_timeout_ms) * 1000;
    dl_pipe_send(s->sub, 2, argv, lens, due, on_subscribed, NULL);
}

/* Read what the subscription has received (a blocking engine polls it
 * only during calls, and a loop may not have run since): a switch found
 * here stops this request going to the old master. SUBSCRIBE's own answer
 * may still be unread ahead of it. One non-blocking read, skipped when the
 * last was under SUB_DRAIN_US ago: a hot loop pays no system call per
 * request, and a switch is seconds in the making. */
static void sub_drain(dl_sentinel *s) {
    if (s->sub == NULL || s->sub->conn.state != DL_CONN_READY)
        return;
    int64_t now = dl_mono_us();
    if (now - s->sub_drained_us < SUB_DRAIN_US)
        return;
    s->sub_drained_us = now;
    dl_conn_step(&s->sub->conn, POLLIN);
}

static int sentinel_targets(dl_topo *t, const char *key, size_t klen, dl_targets *out,
                            dl_topo_wait *w) {
    (void)key;
    (void)klen;
    dl_sentinel *s = t->sentinel;
    if (s->master != NULL && t->url->sentinel_watch) {
        sub_drain(s);
        sub_keep(t);
    }
    if (!s->running && s->master != NULL && in_doubt(s->master))
        s->master = NULL;
    if (s->running || s->master == NULL)
        return dl_sent_discover(t, w);
    out->n = 1;
    out->pipes[0] = s->master;
    s->master->was_up = 1;
    return DLOCK_OK;
}

static int sentinel_redirect(dl_topo *t, dl_pipe *from, const redisReply *r, dl_pipe **to,
                             int *asking, dl_topo_wait *w) {
    dl_sentinel *s = t->sentinel;
    (void)to;
    (void)asking;
    /* A request to a server that is no longer the master (or a discovery
     * already under way) has nowhere else to go until one is found. */
    if (from != s->master && !s->running)
        return 0;
    if (r != NULL) {
        /* Only errors that mean "this server is no longer the master". */
        int code = dl_srv_code(r);
        if (code != DL_SRV_READONLY && code != DL_SRV_MASTERDOWN && code != DL_SRV_UNBLOCKED)
            return 0;
    }
    if (from == s->master)
        s->master = NULL;
    return dl_sent_discover(t, w);
}

static int sentinel_refresh(dl_topo *t, dl_topo_wait *w) {
    dl_targets tg;
    return sentinel_targets(t, "", 0, &tg, w);
}

static int sentinel_masters(dl_topo *t, const dl_conn **out, int cap, int *n) {
    dl_sentinel *s = t->sentinel;
    if (s->master == NULL)
        return t->why[0] != '\0' ? t->why_status
                                 : dl_topo_fail(t, DLOCK_EIO, 0, "sentinel: no master known");
    if (cap < 1)
        return dl_topo_fail(t, DLOCK_EPROTO, 0, "more than %d servers", cap);
    out[0] = &s->master->conn;
    *n = 1;
    return DLOCK_OK;
}

const dl_topo_ops dl_topo_sentinel_ops = {
    .init = sentinel_init,
    .free = sentinel_free,
    .targets = sentinel_targets,
    .redirect = sentinel_redirect,
    .refresh = sentinel_refresh,
    .masters = sentinel_masters,
};

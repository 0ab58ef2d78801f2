/* keepalive.c - automatic lease extension with lost-lock detection.
 *
 * One thread per client, started by the first dlock_keepalive_start, with
 * its own connections (a clone of the client), so the caller's client stays
 * single-threaded. Each round extends every lock that is due, pipelined:
 * all EVALSHA extends for one server go out in one write and come back in
 * one read. A lock whose extension fails is retried sooner; when its token
 * is gone, or its validity runs out before an extension succeeds, it is
 * marked not held and its on_lost callback runs once. The thread wakes no
 * later than each lock's validity end, so a loss is reported within the
 * validity window, never after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "clock.h"
#include "internal.h"

typedef struct ka_entry {
    dlock_lock *l;
    char *key; /* P{name} */
    size_t key_len;
    int64_t ttl_ms;
    int64_t interval_us;
    int64_t next_us;
    int64_t start_us; /* when this round's extension was sent */
    int dead; /* stopped from inside a round: freed by the thread */
    /* per round */
    int ntargets;
    dl_conn *targets[DL_URL_MAX_HOSTS];
    int idx[DL_URL_MAX_HOSTS];
    int yes, no, fallback;
} ka_entry;

struct dl_keepalive {
    dlock_client *kc; /* the thread's own client */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* work changed / stop */
    pthread_cond_t round_done;
    int stop;
    int busy;            /* a round is using the in-flight entries */
    ka_entry **entries;  /* registered locks */
    int n, cap;
};

static int64_t mono_to_abs(int64_t mono_us, struct timespec *ts) {
    ts->tv_sec = (time_t)(mono_us / 1000000);
    ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
    return 0;
}

static void entry_free(ka_entry *e) {
    if (e == NULL)
        return;
    free(e->key);
    free(e);
}

static void lose(struct dl_keepalive *ka, ka_entry *e, int status) {
    dlock_lock *l = e->l;
    if (atomic_exchange(&l->lost, 1))
        return;
    atomic_store(&l->valid_until_us, 0);
    dl_emit(ka->kc, DLOCK_EV_LOST, l->name, status, l->fence, 0, 0);
    if (l->on_lost != NULL)
        l->on_lost(l, status, l->lost_ud);
}

/* Send one pipelined round of extensions for entries due[0..n). */
static void extend_round(struct dl_keepalive *ka, ka_entry **due, int n) {
    dlock_client *kc = ka->kc;
    dl_conn *conns[64];
    int nconns = 0;
    int64_t start = dl_mono_us();
    for (int i = 0; i < n; i++) {
        ka_entry *e = due[i];
        dl_call call;
        e->ntargets = 0;
        e->yes = e->no = e->fallback = 0;
        if (dl_topo_targets(kc, e->key, e->key_len, &call) != DLOCK_OK) {
            e->fallback = 1;
            continue;
        }
        char ttl_s[24];
        int tl = snprintf(ttl_s, sizeof ttl_s, "%" PRId64, e->ttl_ms);
        const char *argv[6] = {"EVALSHA", kc->sha[DL_S_EXTEND], "1", e->key, e->l->token, ttl_s};
        size_t lens[6] = {7, 40, 1, e->key_len, DL_TOKEN_HEX, (size_t)tl};
        for (int t = 0; t < call.n; t++) {
            dl_conn *cn = call.conns[t];
            int seen = 0;
            for (int k = 0; k < nconns; k++)
                seen |= conns[k] == cn;
            if (!seen) {
                if (nconns == 64) {
                    e->fallback = 1;
                    break;
                }
                dl_conn_batch_reset(cn);
                conns[nconns++] = cn;
            }
            e->idx[t] = cn->expect;
            if (dl_conn_append(cn, 6, argv, lens) != DLOCK_OK) {
                e->fallback = 1;
                break;
            }
            e->targets[e->ntargets++] = cn;
        }
    }
    /* Never wait past the first validity end among these locks: a loss
     * must be reported within the window, not after a slow round. */
    int64_t deadline = start + ((int64_t)kc->opts.command_timeout_ms +
                                kc->opts.connect_timeout_ms) * 1000;
    for (int i = 0; i < n; i++) {
        int64_t vu = atomic_load(&due[i]->l->valid_until_us);
        if (vu < deadline)
            deadline = vu;
    }
    dl_conn_run(conns, nconns, deadline);

    /* Pass 1: tally the pipelined replies (before any slow-path call can
     * reset a connection that still holds replies of later entries). */
    for (int i = 0; i < n; i++) {
        ka_entry *e = due[i];
        e->start_us = start;
        for (int t = 0; t < e->ntargets && !e->fallback; t++) {
            dl_conn *cn = e->targets[t];
            if (cn->status != DLOCK_OK || e->idx[t] >= cn->got)
                continue; /* that server failed: counts as no answer */
            const redisReply *r = cn->replies[e->idx[t]];
            if (r->type == REDIS_REPLY_INTEGER)
                r->integer == 1 ? e->yes++ : e->no++;
            else
                e->fallback = 1; /* NOSCRIPT, MOVED, ...: the slow path copes */
        }
    }
    /* Pass 2: one call through the quorum layer for each entry that needs
     * it (re-send with EVAL, redirects, reconnects), timed on its own. */
    for (int i = 0; i < n; i++) {
        ka_entry *e = due[i];
        if (!e->fallback)
            continue;
        e->yes = e->no = 0;
        char ttl_s[24];
        int tl = snprintf(ttl_s, sizeof ttl_s, "%" PRId64, e->ttl_ms);
        const char *args[2] = {e->l->token, ttl_s};
        size_t lens[2] = {DL_TOKEN_HEX, (size_t)tl};
        dl_call call;
        e->start_us = dl_mono_us();
        int64_t fb_deadline =
            e->start_us + ((int64_t)kc->opts.command_timeout_ms + kc->opts.connect_timeout_ms) * 1000;
        int64_t vu = atomic_load(&e->l->valid_until_us);
        if (vu < fb_deadline)
            fb_deadline = vu;
        if (dl_call_named(kc, &call, DL_S_EXTEND, e->l->name, e->l->name_len, 2, args, lens,
                          fb_deadline, NULL) == DLOCK_OK) {
            e->ntargets = call.n;
            for (int t = 0; t < call.n; t++) {
                if (call.status[t] != DLOCK_OK || call.replies[t]->type != REDIS_REPLY_INTEGER)
                    continue;
                call.replies[t]->integer == 1 ? e->yes++ : e->no++;
            }
        }
    }
    /* Pass 3: apply. Validity restarts from when each request was sent. */
    for (int i = 0; i < n; i++) {
        ka_entry *e = due[i];
        dlock_lock *l = e->l;
        int quorum = e->ntargets / 2 + 1;
        if (e->ntargets > 0 && e->yes >= quorum) {
            int64_t vu = dl_valid_until_us(e->start_us, e->ttl_ms, kc->opts.drift_factor);
            /* The lease is now e->ttl_ms from this round's start: follow it
             * down too (a dlock_extend to a longer ttl meanwhile is cut back
             * to e->ttl_ms on the server by this very extension). */
            if (!atomic_load(&l->lost))
                atomic_store(&l->valid_until_us, vu);
            e->next_us = dl_mono_us() + e->interval_us;
            dl_emit(kc, DLOCK_EV_EXTENDED, l->name, DLOCK_OK, l->fence, 0, 0);
        } else if (e->ntargets > 0 && e->no >= quorum) {
            lose(ka, e, DLOCK_ENOTHELD);
        } else {
            /* No answer: try again soon, until the validity runs out. */
            int64_t retry = e->interval_us / 4;
            if (retry < 50000)
                retry = 50000;
            e->next_us = dl_mono_us() + retry;
        }
    }
}

static int grow(ka_entry ***list, int *cap, int n) {
    if (n < *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 16;
    ka_entry **nl = realloc(*list, (size_t)nc * sizeof *nl);
    if (nl == NULL)
        return -1;
    *list = nl;
    *cap = nc;
    return 0;
}

static void *ka_main(void *arg) {
    struct dl_keepalive *ka = arg;
    ka_entry **due = NULL, **expired = NULL;
    int due_cap = 0, exp_cap = 0;
    pthread_mutex_lock(&ka->mu);
    while (!ka->stop) {
        for (int i = 0; i < ka->n;) {
            if (ka->entries[i]->dead) {
                entry_free(ka->entries[i]);
                ka->entries[i] = ka->entries[--ka->n];
            } else {
                i++;
            }
        }
        int64_t now = dl_mono_us();
        int64_t wake = now + 3600 * (int64_t)1000000;
        int ndue = 0, nexp = 0;
        for (int i = 0; i < ka->n; i++) {
            ka_entry *e = ka->entries[i];
            if (atomic_load(&e->l->lost))
                continue;
            int64_t vu = atomic_load(&e->l->valid_until_us);
            if (vu <= now) {
                if (grow(&expired, &exp_cap, nexp) == 0)
                    expired[nexp++] = e;
                continue;
            }
            /* Take locks due within 1/8 of their interval along: extending
             * a little early costs nothing, and batching many locks into one
             * pipelined round (and one scan) keeps the thread's CPU low. */
            if (e->next_us <= now + e->interval_us / 8) {
                if (grow(&due, &due_cap, ndue) == 0)
                    due[ndue++] = e;
            } else if (e->next_us < wake) {
                wake = e->next_us;
            }
            if (vu < wake)
                wake = vu;
        }
        if (ndue > 0 || nexp > 0) {
            /* Work without the mutex; stop() from other threads waits for
             * busy to clear, so these entries stay valid. */
            ka->busy = 1;
            pthread_mutex_unlock(&ka->mu);
            for (int i = 0; i < nexp; i++)
                lose(ka, expired[i], DLOCK_ETIMEDOUT);
            if (ndue > 0)
                extend_round(ka, due, ndue);
            pthread_mutex_lock(&ka->mu);
            ka->busy = 0;
            pthread_cond_broadcast(&ka->round_done);
            continue;
        }
        struct timespec ts;
        mono_to_abs(wake, &ts);
        pthread_cond_timedwait(&ka->cond, &ka->mu, &ts);
    }
    pthread_mutex_unlock(&ka->mu);
    free(due);
    free(expired);
    return NULL;
}

static int ka_create(dlock_client *c, struct dl_keepalive **out) {
    struct dl_keepalive *ka = calloc(1, sizeof *ka);
    if (ka == NULL)
        return DLOCK_ENOMEM;
    int rc = dl_client_clone(c, &ka->kc);
    if (rc != DLOCK_OK) {
        free(ka);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ka->cond, &ca);
    pthread_cond_init(&ka->round_done, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ka->mu, NULL);
    if (pthread_create(&ka->thread, NULL, ka_main, ka) != 0) {
        pthread_cond_destroy(&ka->cond);
        pthread_cond_destroy(&ka->round_done);
        pthread_mutex_destroy(&ka->mu);
        dlock_client_free(ka->kc);
        free(ka);
        return DLOCK_EIO;
    }
    *out = ka;
    return DLOCK_OK;
}

int dlock_keepalive_start(dlock_lock *l, int64_t interval_ms, dlock_lost_fn on_lost,
                          void *userdata) {
    if (l == NULL)
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    dl_clearerr(c);
    if (interval_ms == 0)
        interval_ms = l->ttl_ms / 3;
    if (interval_ms < 1 || interval_ms >= l->ttl_ms)
        return dl_seterr(c, DLOCK_EINVAL, "keepalive interval %" PRId64
                                          " ms must be 1..ttl-1 (ttl %" PRId64 " ms)",
                         interval_ms, l->ttl_ms);
    if (!dlock_held(l))
        return dl_seterr(c, DLOCK_ENOTHELD, "lock '%s' is not held", l->name);
    dlock_keepalive_stop(l);

    pthread_mutex_lock(&c->ka_mu);
    if (c->ka == NULL) {
        int rc = ka_create(c, &c->ka);
        if (rc != DLOCK_OK) {
            pthread_mutex_unlock(&c->ka_mu);
            return dl_seterr(c, rc, "cannot start the keepalive thread");
        }
    }
    struct dl_keepalive *ka = c->ka;
    pthread_mutex_unlock(&c->ka_mu);

    ka_entry *e = calloc(1, sizeof *e);
    size_t klen = c->prefix_len + l->name_len + 2;
    if (e != NULL)
        e->key = malloc(klen + 1);
    if (e == NULL || e->key == NULL) {
        entry_free(e);
        return dl_seterr(c, DLOCK_ENOMEM, "out of memory");
    }
    snprintf(e->key, klen + 1, "%s{%s}", c->prefix, l->name);
    e->key_len = klen;
    e->l = l;
    e->ttl_ms = l->ttl_ms;
    e->interval_us = interval_ms * 1000;
    e->next_us = dl_mono_us() + e->interval_us;
    l->on_lost = on_lost;
    l->lost_ud = userdata;

    pthread_mutex_lock(&ka->mu);
    if (ka->n == ka->cap) {
        int nc = ka->cap ? ka->cap * 2 : 16;
        ka_entry **ne = realloc(ka->entries, (size_t)nc * sizeof *ne);
        if (ne == NULL) {
            pthread_mutex_unlock(&ka->mu);
            entry_free(e);
            return dl_seterr(c, DLOCK_ENOMEM, "out of memory");
        }
        ka->entries = ne;
        ka->cap = nc;
    }
    ka->entries[ka->n++] = e;
    pthread_cond_signal(&ka->cond);
    pthread_mutex_unlock(&ka->mu);
    return DLOCK_OK;
}

void dlock_keepalive_stop(dlock_lock *l) {
    if (l == NULL || l->client == NULL)
        return;
    struct dl_keepalive *ka = l->client->ka;
    if (ka == NULL)
        return;
    pthread_mutex_lock(&ka->mu);
    /* Wait out a round that may be extending this lock, unless we are that
     * round (a stop from inside on_lost): then the thread frees the entry. */
    int self = pthread_equal(pthread_self(), ka->thread);
    while (ka->busy && !self)
        pthread_cond_wait(&ka->round_done, &ka->mu);
    for (int i = 0; i < ka->n; i++) {
        ka_entry *e = ka->entries[i];
        if (e->l == l && !e->dead) {
            if (self) {
                e->dead = 1;
            } else {
                entry_free(e);
                ka->entries[i] = ka->entries[--ka->n];
            }
            break;
        }
    }
    pthread_mutex_unlock(&ka->mu);
}

void dl_keepalive_client_free(dlock_client *c) {
    struct dl_keepalive *ka = c->ka;
    if (ka == NULL)
        return;
    pthread_mutex_lock(&ka->mu);
    ka->stop = 1;
    pthread_cond_signal(&ka->cond);
    pthread_mutex_unlock(&ka->mu);
    pthread_join(ka->thread, NULL);
    for (int i = 0; i < ka->n; i++)
        entry_free(ka->entries[i]);
    free(ka->entries);
    pthread_cond_destroy(&ka->cond);
    pthread_cond_destroy(&ka->round_done);
    pthread_mutex_destroy(&ka->mu);
    dlock_client_free(ka->kc);
    free(ka);
    c->ka = NULL;
}

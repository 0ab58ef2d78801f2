/* keepalive.c - automatic lease extension with lost-lock detection, for
 * locks acquired through the blocking calls (the engine's own locks keep
 * alive with its timers: keepalive_async.c).
 *
 * One thread per client, started by the first dlock_keepalive_start, with
 * its own connections: a clone of the client, whose blocking engine the
 * thread alone drives, so the caller's client stays single-threaded. Each
 * round starts the EXTEND of every lock that is due on that engine and
 * runs it until every one has its answer (or the round's deadline): the
 * extensions for one server go out pipelined in one write, and Sentinel
 * discovery, the Cluster slot map, redirects and NOSCRIPT are the
 * engine's, as for any request. A lock whose extension fails is retried
 * sooner; when its token
 * is gone, or its validity runs out before an extension succeeds, it is
 * marked not held and its on_lost callback runs once. The thread wakes no
 * later than each lock's validity end, so a loss is reported within the
 * validity window, never after it. A lock held for the client's
 * max_hold_ms is no longer extended: it is reported lost with
 * DLOCK_EMAXHOLD at that moment, and its lease runs out by itself.
 *
 * Concurrency rules:
 *   - An entry is "in flight" (e->io) while the thread extends it without
 *     the mutex. dlock_keepalive_stop(l) waits only for l's own entry,
 *     never for other locks of the round.
 *   - Callbacks (on_event, on_lost) run after the round, with no mutex
 *     held and no other entry in flight. A stop meanwhile cancels a
 *     callback that has not started, and waits only for l's own callback
 *     that is running.
 *   - A user's dlock_extend and a keepalive extension of the same lock are
 *     never in flight together (dl_keepalive_quiesce / user_ext): the
 *     server's order of the two could not be known, and the local validity
 *     must never say more than the server's lease.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "backoff.h"
#include "clock.h"
#include "client.h"
#include "kinds.h"
#include "resp.h"

enum { CB_NONE, CB_EXTENDED, CB_LOST };

typedef struct ka_entry {
    dlock_lock *l;
    dl_keyset keys;          /* what l's extension touches (any kind) */
    const dl_kscripts *sc;
    int64_t ttl_ms;   /* the lease each round renews: the ttl at start */
    int64_t interval_us;
    int64_t next_us;
    int64_t start_us; /* when this round's extension was sent */
    int64_t hold_end_us; /* max_hold_ms after the acquisition, or 0: no limit */
    int hold_over;    /* taken as expired because hold_end_us passed */
    int dead;         /* stopped: the thread frees it, touches nothing else */
    int io;           /* being extended without the mutex */
    int cb;           /* CB_*: a callback due after the round */
    int cb_status;
    int cb_running;
    /* per round */
    struct dl_fan *fan;       /* its extension */
    struct dl_fan *gfan;      /* its replica gate's WAIT (gate.c), or NULL */
    int gating;               /* the extension counts only if the gate passes */
    int gate_short;           /* ...and it did not */
    struct ka_round *round;
    int ntargets;
    int yes, no;
} ka_entry;

/* One round's extensions in flight on the thread's engine. */
typedef struct ka_round {
    int pending; /* extensions not yet answered */
    int done;    /* pending reached 0 */
} ka_round;

struct dl_keepalive {
    dlock_client *kc; /* the thread's own client */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* work changed / stop */
    pthread_cond_t round_done; /* an entry left io or cb_running */
    int stop;
    ka_entry **entries; /* registered locks */
    int n, cap;
};

static void mono_to_abs(int64_t mono_us, struct timespec *ts) {
    ts->tv_sec = (time_t)(mono_us / 1000000);
    ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

static void entry_free(ka_entry *e) {
    if (e == NULL)
        return;
    dl_keyset_free(&e->keys);
    free(e);
}

/* Mark the lock lost (once) and schedule its callbacks. At the hold limit
 * the lease is still there until it runs out: its end stays known (for
 * dlock_info's expires_at). */
static void lose(ka_entry *e, int status) {
    dlock_lock *l = e->l;
    if (atomic_exchange(&l->lost, 1))
        return;
    if (status != DLOCK_EMAXHOLD)
        atomic_store(&l->valid_until_us, 0);
    e->cb = CB_LOST;
    e->cb_status = status;
}

static void ka_answered(dl_fan *f, void *arg) {
    ka_entry *e = arg;
    (void)f;
    if (--e->round->pending == 0)
        e->round->done = 1;
}

/* Start one entry's extension on the thread's engine (pipelined with the
 * others); replies due by deadline. */
static void send_extend(dlock_client *kc, dl_engine *eng, ka_entry *e, int64_t deadline) {
    char ttl_s[24];
    size_t tl = dl_fmt_i64(ttl_s, e->ttl_ms);
    const char *args[2] = {e->l->token, ttl_s};
    size_t alens[2] = {DL_TOKEN_HEX, tl};
    const char *argv[DL_REQ_MAX_ARGV];
    size_t lens[DL_REQ_MAX_ARGV];
    dl_req req;
    int rc;
    if (dl_keyset_req(&kc->proto, e->sc->extend, &e->keys, 2, args, alens, argv, lens, &req) !=
        DLOCK_OK)
        return;
    e->fan = dl_engine_fan(eng, &req, deadline, dl_extend_decided, ka_answered, e, &rc);
    if (e->fan == NULL || e->fan->completed)
        return;
    e->round->pending++;
    e->gating = dl_gate_extension_on(eng);
    if (e->gating) { /* right behind the EXTEND on its connection */
        e->gfan = dl_gate_extension(eng, &e->keys, ka_answered, e);
        if (e->gfan != NULL && !e->gfan->completed)
            e->round->pending++;
    }
}

/* Count the entry's answers (none if its extension did not end in time),
 * and whether its replica gate, if any, passed. */
static void tally(dl_engine *eng, ka_entry *e) {
    e->gate_short = e->gating && (eng == NULL || !dl_gate_extension_ok(eng, e->gfan));
    dl_fan_put(e->gfan);
    e->gfan = NULL;
    e->gating = 0;
    dl_fan *f = e->fan;
    e->fan = NULL;
    if (f == NULL)
        return;
    if (f->completed) {
        e->ntargets = f->call.n;
        for (int t = 0; t < f->call.n; t++) {
            const redisReply *r = f->call.replies[t];
            if (f->call.status[t] != DLOCK_OK || r->type != REDIS_REPLY_INTEGER)
                continue; /* that server failed: counts as no answer */
            r->integer == 1 ? e->yes++ : e->no++;
        }
    }
    dl_fan_put(f);
}

/* Apply one entry's outcome. Validity restarts from when it was sent. */
static void apply(dlock_client *kc, ka_entry *e) {
    dlock_lock *l = e->l;
    int quorum = e->ntargets / 2 + 1;
    if (e->ntargets > 0 && e->yes >= quorum && !e->gate_short) {
        if (!atomic_load(&l->lost))
            atomic_store(&l->valid_until_us,
                         dl_valid_until_us(e->start_us, e->ttl_ms, kc->opts.drift_factor));
        e->next_us = dl_mono_us() + e->interval_us;
        /* An event only for a listener: each callback costs a mutex
         * hand-off after the round. */
        if (kc->ctx.on_event != NULL)
            e->cb = CB_EXTENDED;
    } else if (e->ntargets > 0 && e->no >= quorum) {
        lose(e, DLOCK_ENOTHELD);
    } else {
        /* No answer (or the master's alone: the replica gate did not
         * pass): try again soon, until the validity runs out. */
        int64_t retry = e->interval_us / 4;
        if (retry < 50000)
            retry = 50000;
        e->next_us = dl_mono_us() + retry;
    }
}

/* Extend entries due[0..n) in one pipelined round. */
static void extend_round(struct dl_keepalive *ka, ka_entry **due, int n) {
    dlock_client *kc = ka->kc;
    int rc;
    dl_engine *eng = dl_engine_blocking(kc, &rc);
    if (eng != NULL)
        eng->quiet = 1; /* the caller's own connections warn of eviction */
    int64_t start = dl_mono_us();
    /* Never wait past the first validity end among these locks: a loss
     * must be reported within the window, not after a slow round. */
    int64_t deadline = start + ((int64_t)kc->opts.command_timeout_ms +
                                kc->opts.connect_timeout_ms) * 1000;
    for (int i = 0; i < n; i++) {
        int64_t vu = atomic_load(&due[i]->l->valid_until_us);
        if (vu < deadline)
            deadline = vu;
    }
    ka_round round = {0};
    for (int i = 0; i < n; i++) {
        ka_entry *e = due[i];
        e->start_us = start;
        e->ntargets = e->yes = e->no = 0;
        e->round = &round;
        if (eng != NULL)
            send_extend(kc, eng, e, deadline);
    }
    if (round.pending > 0) {
        dl_engine_kick(eng);
        dl_engine_run_until(eng, &round.done, deadline);
    }
    for (int i = 0; i < n; i++)
        tally(eng, due[i]);
    for (int i = 0; i < n; i++)
        apply(kc, due[i]);
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

/* Under the mutex: free stopped entries; pick the entries due now (marked
 * in flight) into *due and the expired ones into *exp. Returns the time
 * to wake up next. */
static int64_t select_work(struct dl_keepalive *ka, ka_entry ***due, int *due_cap, int *ndue,
                           ka_entry ***exp, int *exp_cap, int *nexp) {
    for (int i = 0; i < ka->n;) {
        if (ka->entries[i]->dead && !ka->entries[i]->io && !ka->entries[i]->cb_running) {
            entry_free(ka->entries[i]);
            ka->entries[i] = ka->entries[--ka->n];
        } else {
            i++;
        }
    }
    int64_t now = dl_mono_us();
    int64_t wake = now + 3600 * (int64_t)1000000;
    *ndue = *nexp = 0;
    for (int i = 0; i < ka->n; i++) {
        ka_entry *e = ka->entries[i];
        if (e->dead || atomic_load(&e->l->lost))
            continue;
        int64_t vu = atomic_load(&e->l->valid_until_us);
        e->hold_over = vu > now && e->hold_end_us > 0 && now >= e->hold_end_us;
        if (vu <= now || e->hold_over) {
            if (grow(exp, exp_cap, *nexp) == 0) {
                e->io = 1;
                (*exp)[(*nexp)++] = e;
            }
            continue;
        }
        /* A user's extend of this lock is in flight: keep out of its way
         * (it never waits long: one round trip). */
        int busy_user = atomic_load(&e->l->user_ext);
        /* Take locks due within 1/8 of their interval along: extending a
         * little early costs nothing, and batching many locks into one
         * pipelined round keeps the thread's CPU low. */
        if (!busy_user && e->next_us <= now + e->interval_us / 8) {
            if (grow(due, due_cap, *ndue) == 0) {
                e->io = 1;
                (*due)[(*ndue)++] = e;
            }
        } else if (busy_user && now + 1000 < wake) {
            wake = now + 1000;
        } else if (e->next_us < wake) {
            wake = e->next_us;
        }
        if (vu < wake)
            wake = vu;
        if (e->hold_end_us > 0 && e->hold_end_us < wake)
            wake = e->hold_end_us;
    }
    return wake;
}

/* Under the mutex: run the callbacks the round left, each with the mutex
 * released and no other entry in flight. A stopped entry's callback is
 * dropped. */
static void run_callbacks(struct dl_keepalive *ka, ka_entry **list, int n) {
    for (int i = 0; i < n; i++) {
        ka_entry *e = list[i];
        int cb = e->cb;
        e->cb = CB_NONE;
        if (cb == CB_NONE || e->dead)
            continue;
        dlock_lock *l = e->l;
        e->cb_running = 1;
        pthread_mutex_unlock(&ka->mu);
        if (cb == CB_EXTENDED) {
            dl_emit(&ka->kc->ctx, DLOCK_EV_EXTENDED, l->name, DLOCK_OK, l->fence, 0, 0);
        } else {
            dl_emit(&ka->kc->ctx, DLOCK_EV_LOST, l->name, e->cb_status, l->fence, 0, 0);
            if (l->on_lost != NULL)
                l->on_lost(l, e->cb_status, l->lost_ud);
        }
        pthread_mutex_lock(&ka->mu);
        e->cb_running = 0;
        pthread_cond_broadcast(&ka->round_done);
    }
}

static void *ka_main(void *arg) {
    struct dl_keepalive *ka = arg;
    ka_entry **due = NULL, **expired = NULL;
    int due_cap = 0, exp_cap = 0, ndue = 0, nexp = 0;
    pthread_mutex_lock(&ka->mu);
    while (!ka->stop) {
        int64_t wake = select_work(ka, &due, &due_cap, &ndue, &expired, &exp_cap, &nexp);
        if (ndue > 0 || nexp > 0) {
            /* Work without the mutex on in-flight entries only. */
            pthread_mutex_unlock(&ka->mu);
            for (int i = 0; i < nexp; i++)
                lose(expired[i], expired[i]->hold_over ? DLOCK_EMAXHOLD : DLOCK_ETIMEDOUT);
            if (ndue > 0)
                extend_round(ka, due, ndue);
            pthread_mutex_lock(&ka->mu);
            for (int i = 0; i < nexp; i++)
                expired[i]->io = 0;
            for (int i = 0; i < ndue; i++)
                due[i]->io = 0;
            pthread_cond_broadcast(&ka->round_done);
            run_callbacks(ka, expired, nexp);
            run_callbacks(ka, due, ndue);
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

/* Free what ka_create made, once the thread is gone (or never started). */
static void ka_destroy(struct dl_keepalive *ka) {
    pthread_cond_destroy(&ka->cond);
    pthread_cond_destroy(&ka->round_done);
    pthread_mutex_destroy(&ka->mu);
    dl_engine_free(ka->kc->beng);
    dl_client_teardown(ka->kc);
    free(ka->kc);
    free(ka);
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
        ka_destroy(ka);
        return DLOCK_EIO;
    }
    *out = ka;
    return DLOCK_OK;
}

/* The client's keepalive thread, started on first use. */
static int ka_get(dlock_client *c, struct dl_keepalive **out) {
    pthread_mutex_lock(&c->ka_mu);
    int rc = DLOCK_OK;
    if (c->ka == NULL)
        rc = ka_create(c, &c->ka);
    *out = c->ka;
    pthread_mutex_unlock(&c->ka_mu);
    return rc;
}

static int ka_add(struct dl_keepalive *ka, ka_entry *e) {
    pthread_mutex_lock(&ka->mu);
    if (ka->n == ka->cap) {
        int nc = ka->cap ? ka->cap * 2 : 16;
        ka_entry **ne = realloc(ka->entries, (size_t)nc * sizeof *ne);
        if (ne == NULL) {
            pthread_mutex_unlock(&ka->mu);
            return DLOCK_ENOMEM;
        }
        ka->entries = ne;
        ka->cap = nc;
    }
    ka->entries[ka->n++] = e;
    pthread_cond_signal(&ka->cond);
    pthread_mutex_unlock(&ka->mu);
    return DLOCK_OK;
}

/* A part of a multi-lock over several hash slots was lost: so is the
 * whole, and its owner is told once. */
static void part_lost(dlock_lock *p, int status, void *ud) {
    dlock_lock *l = p->whole;
    (void)ud;
    if (atomic_exchange(&l->lost, 1))
        return;
    if (l->on_lost != NULL)
        l->on_lost(l, status, l->lost_ud);
}

/* Keep every part of such a multi-lock alive. */
static int parts_keepalive(dlock_lock *l, int64_t interval_ms, dlock_lost_fn on_lost,
                           void *userdata) {
    dlock_keepalive_stop(l);
    l->on_lost = on_lost;
    l->lost_ud = userdata;
    for (int i = 0; i < l->nparts; i++) {
        int rc = dlock_keepalive_start(l->parts[i], interval_ms, part_lost, NULL);
        if (rc != DLOCK_OK) {
            dlock_keepalive_stop(l);
            return rc;
        }
    }
    return DLOCK_OK;
}

int dlock_keepalive_start(dlock_lock *l, int64_t interval_ms, dlock_lost_fn on_lost,
                          void *userdata) {
    if (l == NULL || atomic_load(&l->orphaned))
        return DLOCK_EINVAL;
    dlock_client *c = l->client;
    if (dl_refuse_forked(c) != DLOCK_OK)
        return DLOCK_EINVAL;
    dl_clearerr(&c->ctx);
    if (l->nparts > 0)
        return parts_keepalive(l, interval_ms, on_lost, userdata);
    int64_t ttl = atomic_load(&l->ttl_ms);
    if (interval_ms == 0)
        interval_ms = ttl / 3;
    if (interval_ms < 1 || interval_ms >= ttl)
        return dl_seterr(&c->ctx, DLOCK_EINVAL,
                         "keepalive interval %" PRId64 " ms must be 1..ttl-1 (ttl %" PRId64
                         " ms)",
                         interval_ms, ttl);
    if (!dl_lock_valid(l, dl_mono_us()))
        return dl_seterr(&c->ctx, DLOCK_ENOTHELD, "lock '%s' is not held", l->name);
    if (dl_hold_over(l, dl_mono_us()))
        return dl_seterr(&c->ctx, DLOCK_EMAXHOLD, "lock '%s' has been held for max_hold_ms",
                         l->name);
    dlock_keepalive_stop(l);
    if (l->eng != NULL) { /* acquired through the engine: a timer there */
        int erc = dl_eka_start(l->eng, l, interval_ms, on_lost, userdata);
        return erc == DLOCK_OK ? DLOCK_OK : dl_seterr(&c->ctx, erc, "out of memory");
    }
    struct dl_keepalive *ka;
    int rc = ka_get(c, &ka);
    if (rc != DLOCK_OK)
        return dl_seterr(&c->ctx, rc, "cannot start the keepalive thread");
    ka_entry *e = calloc(1, sizeof *e);
    if (e == NULL || dl_lock_keys(l, &e->keys, &e->sc) != DLOCK_OK) {
        entry_free(e);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    e->l = l;
    e->ttl_ms = ttl;
    e->interval_us = interval_ms * 1000;
    e->next_us = dl_mono_us() + e->interval_us;
    if (c->opts.max_hold_ms > 0)
        e->hold_end_us = l->acquired_us + c->opts.max_hold_ms * 1000;
    l->on_lost = on_lost;
    l->lost_ud = userdata;
    if (ka_add(ka, e) != DLOCK_OK) {
        entry_free(e);
        return dl_seterr(&c->ctx, DLOCK_ENOMEM, "out of memory");
    }
    return DLOCK_OK;
}

/* Under the mutex: the live entry of l, or NULL. */
static ka_entry *find(struct dl_keepalive *ka, const dlock_lock *l) {
    for (int i = 0; i < ka->n; i++)
        if (ka->entries[i]->l == l && !ka->entries[i]->dead)
            return ka->entries[i];
    return NULL;
}

void dlock_keepalive_stop(dlock_lock *l) {
    if (l == NULL || l->client == NULL)
        return;
    for (int i = 0; i < l->nparts; i++)
        dlock_keepalive_stop(l->parts[i]);
    if (l->eka != NULL)
        dl_eka_stop(l->eka);
    if (l->eng != NULL) /* lost in this process call, not yet told: no more */
        dl_engine_drop_lost(l->eng, l);
    struct dl_keepalive *ka = l->client->ka;
    if (ka == NULL || dl_forked(l->client)) /* a child has no keepalive thread */
        return;
    pthread_mutex_lock(&ka->mu);
    ka_entry *e = find(ka, l);
    if (e != NULL) {
        /* Wait out this lock's own extension or running callback, unless
         * we are that callback (a stop from inside on_lost). */
        int self = pthread_equal(pthread_self(), ka->thread);
        while (!self && (e->io || e->cb_running))
            pthread_cond_wait(&ka->round_done, &ka->mu);
        e->dead = 1; /* freed by the thread; never touched again */
        pthread_cond_signal(&ka->cond);
    }
    pthread_mutex_unlock(&ka->mu);
}

void dl_keepalive_quiesce(dlock_lock *l) {
    struct dl_keepalive *ka = l->client->ka;
    if (ka == NULL || pthread_equal(pthread_self(), ka->thread))
        return;
    pthread_mutex_lock(&ka->mu);
    ka_entry *e = find(ka, l);
    while (e != NULL && e->io)
        pthread_cond_wait(&ka->round_done, &ka->mu);
    pthread_mutex_unlock(&ka->mu);
}

/* dl_keepalive_client_free in a child after fork(): the thread is not in
 * this process, so it is not joined, and its mutex may have been held by
 * it at the fork. Everything is freed (and the thread's sockets closed,
 * sending nothing) only when the thread was idle then: mutex free, no
 * extension or callback in flight. Otherwise the child's copy may be
 * mid-update and is left alone: a leak in the child, never a hang or a
 * double free. The condition variables are not destroyed: glibc would
 * wait for the parent's waiter. */
static void ka_free_in_child(struct dl_keepalive *ka) {
    if (pthread_mutex_trylock(&ka->mu) != 0)
        return;
    for (int i = 0; i < ka->n; i++)
        if (ka->entries[i]->io || ka->entries[i]->cb_running)
            return;
    for (int i = 0; i < ka->n; i++)
        entry_free(ka->entries[i]);
    free(ka->entries);
    pthread_mutex_unlock(&ka->mu);
    ka->kc->cfg.forked = 1;
    dl_engine_free(ka->kc->beng);
    dl_client_teardown(ka->kc);
    free(ka->kc);
    free(ka);
}

void dl_keepalive_client_free(dlock_client *c) {
    struct dl_keepalive *ka = c->ka;
    if (ka == NULL)
        return;
    if (dl_forked(c)) {
        c->ka = NULL;
        ka_free_in_child(ka);
        return;
    }
    pthread_mutex_lock(&ka->mu);
    ka->stop = 1;
    pthread_cond_signal(&ka->cond);
    pthread_mutex_unlock(&ka->mu);
    pthread_join(ka->thread, NULL);
    for (int i = 0; i < ka->n; i++)
        entry_free(ka->entries[i]);
    free(ka->entries);
    ka_destroy(ka);
    c->ka = NULL;
}

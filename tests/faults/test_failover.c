/* test_failover.c - issue 10 §4, "Failover under the history checker": 8
 * worker processes contend on a lock through the library (two locks, 8
 * workers each) while the master that holds it fails over, and every
 * holder writes under the lock into a fence-checking store (faults.c: a
 * write is accepted only with a fence above every fence accepted before).
 *
 *   test_failover sentinel   a Sentinel group (master + replica, 3
 *                            sentinels, down-after 1 s): the master is
 *                            SIGKILLed; Sentinel promotes the replica; the
 *                            old master is restarted (with its last RDB)
 *                            and made a replica of the new one (by
 *                            Sentinel; with ?replicas=1 by the test, 1 s
 *                            after the restart: sentinel_kill_with)
 *   test_failover cluster    a Cluster of 3 masters + 3 replicas (node
 *                            timeout 2 s): the lock's master is SIGKILLed
 *                            and restarted (it comes back as a replica);
 *                            then a manual failover (CLUSTER FAILOVER on
 *                            the replica)
 * each without and with `?replicas=1`. A round is a few seconds of
 * contention around one failover. $DLOCK_FAILOVER_ROUNDS (default 1)
 * repeats the whole set: the soak runs more (make soak).
 *
 * Two locks of one hash slot, 8 workers each, in every round:
 *   short  1000 ms leases, extended every 250 ms: shorter than the time a
 *          failover takes to be detected (down-after 1 s, node timeout
 *          2 s), so a holder cut off from a dead master sees its lease end
 *          before any new master can grant it again, replicated or not;
 *   long   4000 ms leases, extended every 1000 ms: longer than a failover,
 *          so a replicated lease outlives it (the holder's extensions
 *          reach the new master), and one that was not replicated is the
 *          new master's to grant again while its old holder still believes
 *          it holds it (without ?replicas=1).
 * A worker: dlock_wait (20 s, as `dlock run -w 20`) for a lease, hold it
 * 20..1000 ms, extending it at its lock's pace and looking at dlock_held
 * every 10 ms, then commit its fence to the store if still held, then
 * release. Each lease is recorded (history.h for the checker, and here
 * with its commit's outcome and times).
 *
 * What is checked, per round:
 *   - the history checker: no fence regression (a lease that began after
 *     another ended has a higher fence: fences rise across the failover);
 *   - stale writes accepted: 0. A write is stale when a lease that began
 *     after the writer's own had already committed: the store must refuse
 *     it (it does only if the newer lease's fence is higher);
 *   - legitimate writes refused: 0 (refused with no newer lease committed
 *     before: fences went back, issue 10's 221 -> 226 twice);
 *   - overlaps the store accepted: 0 (two leases whose believed-held
 *     intervals overlap, both writes accepted) for the short leases, and
 *     for the long ones with ?replicas=1; the long ones without it are
 *     only counted (asynchronous replication may lose a fresh lease);
 *   - workers that gave up (an acquire that failed after its 20 s): 0,
 *     unless a second failover followed the first in that round (Sentinel
 *     with down-after 1 s on a loaded machine: while a replica resyncs, or
 *     seconds after the first settled, when the sentinels' config-epoch
 *     rises again): two outages may outlast one wait, so those are
 *     printed, not judged;
 *   - progress: leases are granted after the failover.
 * Measured and printed: the lost-lease rate, leases whose holder lost
 * them to the failover (dlock_held turned false before the commit, an
 * extension or the release said ENOTHELD, or the store refused the
 * write) over all leases; releases that failed (the master was gone). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "faults.h"
#include "keywatch.h"
#include "topo.h"

#define NLOCKS 2
#define PER_LOCK 8
#define WORKERS (NLOCKS * PER_LOCK)
#define STEP_MS 10
#define HOLD_MIN_MS 20
#define HOLD_MAX_MS 1000
#define WAIT_MS 20000

/* The round's fault turned into two failovers (sentinel_settle, or a
 * failover after it had settled: scenario.failed_again): set by the main
 * process only, read by verdict_of. */
static int g_refailed;

/* The data servers whose lock keys are sampled during a round (keywatch.h,
 * printed for a round where a worker gave up): set for Sentinel. */
static int g_kw_ports[2], g_kw_n;
static kw *g_kw;
#define MAX_LEASES 20000

/* The two locks (one hash slot: "{fo" is the tag of both keys). */
static const struct profile {
    const char *name, *label;
    int ttl_ms, extend_ms;
} prof[NLOCKS] = {{"{fo}short", "1000 ms leases", 1000, 250},
                  {"{fo}long", "4000 ms leases", 4000, 1000}};

enum { LOST_NO, LOST_HELD, LOST_EXTEND, LOST_REFUSED, LOST_RELEASE };

typedef struct lease {
    int worker, lock;
    int lost;    /* LOST_* */
    int commit;  /* -1 none, 0 refused, 1 accepted, 2 store error */
    int release; /* dlock_release's status */
    int64_t fence, t_ok, last, tc0, tc1;
} lease;

/* What a worker saw, for the report of one that gave up: its waits'
 * starts and ends and the library's events, the last TRACE_N of them. */
#define TRACE_N 32
enum { TR_WAIT = -1, TR_WAITED = -2 };
typedef struct trace_ent {
    int64_t t;    /* th_now_us() */
    int what;     /* a dlock_event_type, or TR_WAIT / TR_WAITED */
    int status;   /* the event's status, or dlock_wait's */
    int attempts; /* the event's attempts */
} trace_ent;

typedef struct run {
    char url[1024];
    int store_port;
    _Atomic int go;
    _Atomic int64_t end_us;
    _Atomic int64_t n;
    _Atomic int64_t gave_up[WORKERS];
    char gave_up_detail[WORKERS][200];
    char last_warning[WORKERS][200]; /* the worker's last DLOCK_EV_WARNING */
    trace_ent trace[WORKERS][TRACE_N];  /* each worker's last events (trace_add) */
    int ntrace[WORKERS];
    hist *h[NLOCKS];
    lease rec[MAX_LEASES];
} run;

static int g_idx;

/* ---- the worker ---- */

/* Hold l for hold_ms from t_ok, extending it every pf->extend_ms: returns
 * the last instant held was seen true (0 if never) and sets *lost. */
static int64_t hold(const struct profile *pf, dlock_lock *l, int64_t t_ok, int hold_ms,
                    int *lost) {
    int64_t last = 0, next_ext = t_ok + pf->extend_ms * 1000;
    int64_t t = th_now_us();
    if (dlock_held(l))
        last = t;
    while (last && th_now_us() < t_ok + (int64_t)hold_ms * 1000) {
        th_sleep_ms(STEP_MS);
        if (th_now_us() >= next_ext) {
            next_ext += pf->extend_ms * 1000;
            if (dlock_extend(l, pf->ttl_ms) == DLOCK_ENOTHELD) {
                *lost = LOST_EXTEND;
                return last;
            }
        }
        t = th_now_us();
        if (!dlock_held(l)) {
            *lost = LOST_HELD;
            return last;
        }
        last = t;
    }
    if (!last)
        *lost = LOST_HELD;
    return last;
}

static void one_lease(run *x, redisContext *store, int idx, dlock_lock *l, int64_t t_ok) {
    const struct profile *pf = &prof[idx / PER_LOCK];
    lease r = {.worker = idx, .lock = idx / PER_LOCK, .commit = -1, .t_ok = t_ok};
    dlock_info info;
    dlock_info_get(l, &info);
    r.fence = info.fence;
    r.last = hold(pf, l, t_ok, ft_rand(HOLD_MIN_MS, HOLD_MAX_MS), &r.lost);
    if (r.lost == LOST_NO) {
        /* Check, then write: the fence covers what happens in between. */
        int64_t t = th_now_us();
        if (dlock_held(l)) {
            r.last = t;
            r.tc0 = th_now_us();
            int cr = ft_store_commit(store, pf->name, r.fence);
            r.tc1 = th_now_us();
            r.commit = cr == 1 ? 1 : cr == 0 ? 0 : 2;
            if (cr == 0)
                r.lost = LOST_REFUSED;
        } else {
            r.lost = LOST_HELD;
        }
    }
    if (r.last && hist_add(x->h[r.lock], pf->name, r.fence, t_ok, r.last, idx) != 0)
        TH_FAIL("worker %d: history log full", idx);
    r.release = dlock_release(l);
    if (r.release == DLOCK_ENOTHELD && r.lost == LOST_NO)
        r.lost = LOST_RELEASE;
    int64_t i = atomic_fetch_add(&x->n, 1);
    if (i < MAX_LEASES)
        x->rec[i] = r;
}

static run *g_run;

/* Each worker writes its own ring only; the main process reads it after
 * joining the workers. */
static void trace_add(run *x, int idx, int what, int status, int attempts) {
    trace_ent *e = &x->trace[idx][x->ntrace[idx]++ % TRACE_N];
    *e = (trace_ent){th_now_us(), what, status, attempts};
}

/* Warnings (a short replica gate, ...) say what a worker that gave up saw. */
static void on_event(const dlock_event *ev, void *ud) {
    (void)ud;
    trace_add(g_run, g_idx, (int)ev->type, ev->status, ev->attempts);
    if (ev->type == DLOCK_EV_WARNING && ev->message != NULL)
        snprintf(g_run->last_warning[g_idx], sizeof g_run->last_warning[g_idx], "%s",
                 ev->message);
}

static int worker(void *arg) {
    run *x = arg;
    int idx = g_idx;
    g_run = x;
    while (!atomic_load(&x->go))
        th_sleep_ms(1);
    dlock_options o;
    it_options(&o, 300, 500);
    o.on_event = on_event;
    dlock_client *c = it_client(x->url, &o);
    redisContext *store = th_connect(x->store_port, 5000);
    TH_CHECK(store != NULL);
    const struct profile *pf = &prof[idx / PER_LOCK];
    while (th_now_us() < atomic_load(&x->end_us)) {
        dlock_lock *l = NULL;
        trace_add(x, idx, TR_WAIT, 0, 0);
        int rc = dlock_wait(c, pf->name, WAIT_MS, pf->ttl_ms, &l);
        int64_t t_ok = th_now_us();
        trace_add(x, idx, TR_WAITED, rc, 0);
        if (rc != DLOCK_OK) {
            if (atomic_fetch_add(&x->gave_up[idx], 1) == 0)
                snprintf(x->gave_up_detail[idx], sizeof x->gave_up_detail[idx], "%s: %s",
                         dlock_err_name(rc), dlock_client_errstr(c));
            th_sleep_ms(10);
            continue;
        }
        one_lease(x, store, idx, l, t_ok);
        dlock_lock_free(l);
    }
    redisFree(store);
    dlock_client_free(c);
    return 0;
}

/* ---- checks ---- */

typedef struct verdict {
    int64_t leases, lost, release_failed, before, after;
    int64_t stale_accepted, legit_refused, overlap_accepted, gave_up_workers;
    int64_t accepted, refused;
} verdict;

/* A lease of r's lock that began after r's and had finished committing
 * before r's commit began: r's write is stale. */
static int newer_committed(const run *x, int64_t n, const lease *r, int accepted_only) {
    for (int64_t j = 0; j < n; j++) {
        const lease *o = &x->rec[j];
        if (o != r && o->lock == r->lock && (o->commit == 0 || o->commit == 1) &&
            o->t_ok > r->t_ok && o->tc1 < r->tc0 && (!accepted_only || o->commit == 1))
            return 1;
    }
    return 0;
}

/* Worker w's last events, times relative to the fault. */
static void trace_print(const run *x, int w, int64_t fault_us) {
    static const char *names[] = {"acquired", "contended", "released", "extended",
                                  "lost",     "error",     "warning"};
    int n = x->ntrace[w], first = n > TRACE_N ? n - TRACE_N : 0;
    fprintf(stderr, "worker %d, its last %d events (s after the fault):", w, n - first);
    for (int i = first; i < n; i++) {
        const trace_ent *e = &x->trace[w][i % TRACE_N];
        const char *what = e->what == TR_WAIT     ? "wait"
                           : e->what == TR_WAITED ? "waited"
                           : e->what >= 0 && e->what < 7 ? names[e->what]
                                                         : "?";
        fprintf(stderr, " %+.2f %s", (double)(e->t - fault_us) / 1e6, what);
        if (e->status != 0)
            fprintf(stderr, "(%s)", dlock_err_name(e->status));
        if (e->attempts > 0)
            fprintf(stderr, "[%d]", e->attempts);
    }
    fprintf(stderr, "\n");
}

static void judge(run *x, int lock, int64_t fault_us, verdict *v) {
    memset(v, 0, sizeof *v);
    int64_t n = atomic_load(&x->n);
    if (n > MAX_LEASES)
        n = MAX_LEASES;
    for (int64_t i = 0; i < n; i++) {
        const lease *r = &x->rec[i];
        if (r->lock != lock)
            continue;
        v->leases++;
        v->lost += r->lost != LOST_NO;
        v->release_failed += r->release != DLOCK_OK && r->release != DLOCK_ENOTHELD;
        v->before += r->t_ok <= fault_us;
        v->after += r->t_ok > fault_us;
        v->accepted += r->commit == 1;
        v->refused += r->commit == 0;
        if (r->commit == 1 && newer_committed(x, n, r, 0)) {
            v->stale_accepted++;
            fprintf(stderr, "STALE: worker %d fence %lld accepted after a newer lease committed\n",
                    r->worker, (long long)r->fence);
        }
        if (r->commit == 0 && !newer_committed(x, n, r, 1)) {
            v->legit_refused++;
            fprintf(stderr, "REFUSED: worker %d fence %lld refused, no newer lease committed\n",
                    r->worker, (long long)r->fence);
        }
        for (int64_t j = i + 1; j < n; j++) {
            const lease *o = &x->rec[j];
            if (o->lock == lock && r->commit == 1 && o->commit == 1 && r->t_ok < o->last &&
                o->t_ok < r->last) {
                v->overlap_accepted++;
                fprintf(stderr, "OVERLAP: fences %lld and %lld, both writes accepted\n",
                        (long long)r->fence, (long long)o->fence);
            }
        }
    }
    for (int w = lock * PER_LOCK; w < (lock + 1) * PER_LOCK; w++)
        if (atomic_load(&x->gave_up[w]) > 0) {
            v->gave_up_workers++;
            fprintf(stderr, "worker %d gave up %lld times; first: %s; last warning: %s\n", w,
                    (long long)atomic_load(&x->gave_up[w]), x->gave_up_detail[w],
                    x->last_warning[w][0] ? x->last_warning[w] : "none");
            trace_print(x, w, fault_us);
        }
}

/* ---- one round ---- */

typedef struct scenario {
    const char *label;
    int replicas;
    /* Injects the failover and waits until it is over (the lock's new
     * master serves, and a replica is back for ?replicas=1). Returns the
     * time the fault was injected. */
    int64_t (*fault)(void *topo);
    void *topo;
    const char *base_url;
    /* After the round (NULL: not asked): whether another failover followed
     * the one `fault` waited for (sets g_refailed). */
    int (*failed_again)(void *topo);
} scenario;

static run *run_new(void) {
    run *x = mmap(NULL, sizeof *x, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (x == MAP_FAILED)
        TH_FAIL("mmap: %s", strerror(errno));
    memset(x, 0, sizeof *x);
    return x;
}

/* Totals over the rounds, per scenario and lock (main process only). */
typedef struct total {
    int64_t rounds, leases, lost, release_failed;
} total;

/* The verdict on one lock of a round: prints it, checks the bounds, adds
 * it to *tot. */
static void verdict_of(run *x, int lock, const scenario *sc, int64_t t_fault, double took,
                       total *tot) {
    char label[128];
    snprintf(label, sizeof label, "%s, replicas=%d, %s", sc->label, sc->replicas,
             prof[lock].label);
    hist_result hr;
    int64_t bad = hist_check(x->h[lock], label, &hr);
    verdict v;
    judge(x, lock, t_fault, &v);
    printf("failover [%s]: %lld leases (%lld before the fault, %lld granted after it), "
           "lost %lld (%.1f%%), releases failed %lld, workers gave up %lld; store accepted "
           "%lld, refused %lld; stale accepted %lld, legitimate refused %lld, overlaps "
           "accepted %lld; fault to recovery %.1f s\n",
           label, (long long)v.leases, (long long)v.before, (long long)v.after,
           (long long)v.lost, v.leases ? 100.0 * (double)v.lost / (double)v.leases : 0.0,
           (long long)v.release_failed, (long long)v.gave_up_workers, (long long)v.accepted,
           (long long)v.refused, (long long)v.stale_accepted, (long long)v.legit_refused,
           (long long)v.overlap_accepted, took);
    if (v.gave_up_workers > 0)
        kw_print(g_kw, t_fault);
    TH_EQ_INT(hr.fence_regressions, 0);
    TH_EQ_INT(v.stale_accepted, 0);
    TH_EQ_INT(v.legit_refused, 0);
    if (lock == 0 || sc->replicas)
        TH_EQ_INT(v.overlap_accepted, 0);
    /* Liveness across one failover: no worker gave up its 20 s wait. A
     * round that saw a second failover (g_refailed) had two outages in it,
     * which together may outlast a wait (with ?replicas=1 nothing can be
     * granted until a replica is back): its give-ups are printed above,
     * not judged; everything else is. */
    if (!g_refailed)
        TH_EQ_INT(v.gave_up_workers, 0);
    else if (v.gave_up_workers > 0)
        printf("  (a second failover in this round: %lld workers gave up, not judged)\n",
               (long long)v.gave_up_workers);
    TH_EQ_INT(bad - hr.overlaps, 0); /* no log overflow */
    TH_CHECK(v.after > 0);           /* the lock works after the failover */
    tot->rounds++;
    tot->leases += v.leases;
    tot->lost += v.lost;
    tot->release_failed += v.release_failed;
}

static void round_run(const scenario *sc, th_server *store, int lead_ms, int tail_ms,
                      total *tot) {
    run *x = run_new();
    for (int i = 0; i < NLOCKS; i++)
        x->h[i] = hist_new(MAX_LEASES);
    x->store_port = th_server_port(store);
    snprintf(x->url, sizeof x->url, "%s%s", sc->base_url,
             sc->replicas ? "?replicas=1&replica_timeout=1000" : "");
    freeReplyObject(th_server_cmd(store, "FLUSHALL"));
    atomic_store(&x->end_us, INT64_MAX);
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        g_idx = i;
        pids[i] = th_spawn(worker, x);
        TH_CHECK(pids[i] > 0);
    }
    atomic_store(&x->go, 1);
    th_sleep_ms(lead_ms);
    g_refailed = 0;
    g_kw = g_kw_n ? kw_start(g_kw_ports, g_kw_n, "*fo*") : NULL;
    int64_t t_fault = sc->fault(sc->topo);
    double took = (th_now_us() - t_fault) / 1e6;
    th_sleep_ms(tail_ms);
    atomic_store(&x->end_us, th_now_us());
    TH_EQ_INT(ft_join(pids, WORKERS, WAIT_MS + 15000), 0);
    kw_stop(g_kw);
    if (sc->failed_again != NULL && sc->failed_again(sc->topo)) {
        printf("sentinel: another failover followed, after the first had settled\n");
        g_refailed = 1;
    }
    for (int i = 0; i < NLOCKS; i++) {
        verdict_of(x, i, sc, t_fault, took, &tot[i]);
        hist_free(x->h[i]);
    }
    kw_free(g_kw);
    g_kw = NULL;
    munmap(x, sizeof *x);
}

/* ---- Sentinel ---- */

/* What the servers and the sentinels say, when the group did not settle. */
static _Noreturn void sentinel_dump(tt_sentinels *g) {
    for (int i = 0; i < 2; i++) {
        redisReply *x = th_server_cmd(g->data[i], "INFO replication");
        fprintf(stderr, "server %d: %s\n", th_server_port(g->data[i]),
                x != NULL && x->type == REDIS_REPLY_STRING ? x->str : "no answer");
        freeReplyObject(x);
        th_server_dump_log(g->data[i], 15);
    }
    for (int i = 0; i < g->nsent; i++)
        fprintf(stderr, "sentinel %d names master %d\n", g->sport[i],
                tt_sentinel_master_port(g, i));
    TH_FAIL("the Sentinel group did not settle on a master with a replica in sync");
}

/* Waits until every sentinel names one master, which says ROLE master,
 * and the other server is its replica in sync and acknowledging. That is
 * normally r (the old master restarted, made a replica by Sentinel), but
 * a loaded machine may see a second failover meanwhile (down-after is
 * 1 s): any settled pair will do. Returns the master. */
static th_server *sentinel_settle(tt_sentinels *g, th_server *r) {
    long long end = th_now_us() + 90000000LL;
    while (th_now_us() < end) {
        th_server *m = tt_sentinels_server(g, tt_sentinel_master_port(g, 0));
        if (m != NULL && tt_sentinels_wait_master(g, th_server_port(m), 1000) == 0) {
            th_server *o = g->data[0] == m ? g->data[1] : g->data[0];
            if (tt_wait_replica_synced(o, 1000) == 0 &&
                tt_wait_replica_acks(m, "fo-sync", 1, 2000) == 0) {
                if (m != r) {
                    printf("sentinel: a second failover made %d the master again\n",
                           th_server_port(m));
                    g_refailed = 1;
                }
                return m;
            }
        }
        th_sleep_ms(200);
    }
    sentinel_dump(g);
}

/* The highest config-epoch the sentinels report: each failover raises it. */
static long long g_settled_epoch;
static long long sentinel_epoch(tt_sentinels *g) {
    long long e = -1;
    for (int i = 0; i < g->nsent; i++) {
        long long v = tt_sentinel_config_epoch(g, i);
        if (v > e)
            e = v;
    }
    return e;
}

/* The master SIGKILLed and restarted. `prompt`: the test itself makes the
 * old master a replica of the new one 1 s after its restart, as an operator
 * restoring the replica would; else Sentinel does, 8 to 20 s after the
 * restart (it waits for the role to look stable). A ?replicas=1 lock can be
 * granted only once a replica is back, so its rounds are prompt: a 12 s
 * outage of the replica plus 8 workers' queue could outlast a 20 s wait. */
static int64_t sentinel_kill_with(tt_sentinels *g, int prompt) {
    th_server *m = tt_sentinels_server(g, tt_sentinel_master_port(g, 0));
    TH_CHECK(m != NULL);
    th_server *r = g->data[0] == m ? g->data[1] : g->data[0];
    int64_t t = th_now_us();
    TH_EQ_INT(th_server_kill(m), 0);
    TH_EQ_INT(tt_sentinels_wait_master(g, th_server_port(r), 30000), 0);
    printf("sentinel: %d promoted %.1f s after the kill\n", th_server_port(r),
           (th_now_us() - t) / 1e6);
    /* Back (with whatever its last RDB held), a master until Sentinel
     * makes it a replica of r: no client may use it meanwhile (src/topo/sentinel.c
     * asks the sentinels, and ROLE). */
    TH_EQ_INT(th_server_restart(m), 0);
    if (prompt) {
        th_sleep_ms(1000);
        char port[16];
        snprintf(port, sizeof port, "%d", tt_sentinel_master_port(g, 0));
        freeReplyObject(th_server_cmd(m, "REPLICAOF 127.0.0.1 %s", port));
    }
    sentinel_settle(g, r);
    g_settled_epoch = sentinel_epoch(g);
    printf("sentinel: the old master is a replica again %.1f s after the kill "
           "(config-epoch %lld)\n",
           (th_now_us() - t) / 1e6, g_settled_epoch);
    return t;
}

/* A failover after the round's own had settled (down-after is 1 s: a
 * loaded machine sees one at times, and the deposed master may serve its
 * clients for seconds before Sentinel turns it into a replica, with no
 * replica of its own: a ?replicas=1 lock can be granted nowhere then). */
static int sentinel_failed_again(void *topo) { return sentinel_epoch(topo) > g_settled_epoch; }

static int64_t sentinel_kill(void *topo) { return sentinel_kill_with(topo, 0); }
static int64_t sentinel_kill_prompt(void *topo) { return sentinel_kill_with(topo, 1); }

/* ---- Cluster ---- */

static int replica_of(tt_cluster *k, int master) {
    char want[32];
    snprintf(want, sizeof want, "master_port:%d\r", th_server_port(k->node[master]));
    for (int i = 0; i < k->n; i++) {
        if (i == master || th_server_pid(k->node[i]) < 0)
            continue;
        redisReply *ir = th_server_cmd(k->node[i], "INFO replication");
        int is = ir != NULL && ir->type == REDIS_REPLY_STRING && strstr(ir->str, want) != NULL;
        freeReplyObject(ir);
        if (is)
            return i;
    }
    return -1;
}

static int lock_slot(void) { return tt_lock_slot("dlock:", prof[0].name); }

/* Waits until node `want` serves the lock's slot as every live node sees
 * it, with cluster_state:ok. */
static void wait_owner(tt_cluster *k, int want, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    for (;;) {
        int good = 1;
        for (int i = 0; good && i < k->n; i++) {
            if (th_server_pid(k->node[i]) < 0)
                continue;
            good = tt_cluster_owner(k, i, lock_slot()) == want;
            redisReply *r = th_server_cmd(k->node[i], "CLUSTER INFO");
            good = good && r != NULL && r->type == REDIS_REPLY_STRING &&
                   strstr(r->str, "cluster_state:ok") != NULL;
            freeReplyObject(r);
        }
        if (good)
            return;
        if (th_now_us() >= end)
            TH_FAIL("node %d does not serve slot %d after %d ms", want, lock_slot(), timeout_ms);
        th_sleep_ms(50);
    }
}

/* The old master back in sync as a replica of the new one, counted by it. */
static void wait_rejoined(tt_cluster *k, int old, int now_master) {
    TH_EQ_INT(tt_wait_replica_synced(k->node[old], 30000), 0);
    /* A key of the locks' slot (tag "{fo"), none of their keys. */
    TH_EQ_INT(tt_wait_replica_acks(k->node[now_master], "dlock:{{fo}sync}", 1, 10000), 0);
}

static int64_t cluster_kill(void *topo) {
    tt_cluster *k = topo;
    int victim = tt_cluster_owner(k, 0, lock_slot());
    TH_CHECK(victim >= 0);
    int rep = replica_of(k, victim);
    TH_CHECK(rep >= 0);
    int64_t t = th_now_us();
    TH_EQ_INT(th_server_kill(k->node[victim]), 0);
    wait_owner(k, rep, 30000);
    printf("cluster: node %d took over from node %d %.1f s after the kill\n", rep, victim,
           (th_now_us() - t) / 1e6);
    TH_EQ_INT(th_server_restart(k->node[victim]), 0);
    wait_rejoined(k, victim, rep);
    wait_owner(k, rep, 30000);
    printf("cluster: node %d is a replica again %.1f s after the kill\n", victim,
           (th_now_us() - t) / 1e6);
    return t;
}

static int64_t cluster_manual(void *topo) {
    tt_cluster *k = topo;
    int victim = tt_cluster_owner(k, 0, lock_slot());
    TH_CHECK(victim >= 0);
    int rep = replica_of(k, victim);
    TH_CHECK(rep >= 0);
    int64_t t = th_now_us();
    redisReply *r = th_server_cmd(k->node[rep], "CLUSTER FAILOVER");
    TH_CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    wait_owner(k, rep, 30000);
    printf("cluster: CLUSTER FAILOVER: node %d took over from node %d in %.1f s\n", rep, victim,
           (th_now_us() - t) / 1e6);
    wait_rejoined(k, victim, rep);
    return t;
}

int main(int argc, char **argv) {
    int cluster = argc > 1 && strcmp(argv[1], "cluster") == 0;
    int rounds = 1;
    const char *env = getenv("DLOCK_FAILOVER_ROUNDS");
    if (env != NULL && atoi(env) > 0)
        rounds = atoi(env);
    th_test_init(30 + rounds * (cluster ? 150 : 190));
    th_server *store = th_server_start(NULL);
    TH_CHECK(store != NULL);
    scenario sc[4];
    int nsc;
    tt_sentinels *g = NULL;
    tt_cluster *k = NULL;
    if (!cluster) {
        g = tt_sentinels_start(3);
        TH_CHECK(g != NULL);
        g_kw_ports[0] = th_server_port(g->data[0]);
        g_kw_ports[1] = th_server_port(g->data[1]);
        g_kw_n = 2;
        sc[0] = (scenario){"sentinel: master SIGKILL", 0, sentinel_kill, g, g->url,
                           sentinel_failed_again};
        sc[1] = (scenario){"sentinel: master SIGKILL", 1, sentinel_kill_prompt, g, g->url,
                           sentinel_failed_again};
        nsc = 2;
    } else {
        k = tt_cluster_start_replicated(3, 1);
        TH_CHECK(k != NULL);
        sc[0] = (scenario){"cluster: master SIGKILL", 0, cluster_kill, k, k->url, NULL};
        sc[1] = (scenario){"cluster: master SIGKILL", 1, cluster_kill, k, k->url, NULL};
        sc[2] = (scenario){"cluster: CLUSTER FAILOVER", 0, cluster_manual, k, k->url, NULL};
        sc[3] = (scenario){"cluster: CLUSTER FAILOVER", 1, cluster_manual, k, k->url, NULL};
        nsc = 4;
    }
    total tot[4][NLOCKS];
    memset(tot, 0, sizeof tot);
    for (int i = 0; i < rounds; i++)
        for (int s = 0; s < nsc; s++)
            round_run(&sc[s], store, 2000, 2000, tot[s]);
    for (int s = 0; s < nsc; s++)
        for (int l = 0; l < NLOCKS; l++) {
            const total *t = &tot[s][l];
            printf("lost-lease rate [%s, replicas=%d, %s]: %lld of %lld leases (%.1f%%) in %lld "
                   "failovers, %.2f per failover; releases failed %lld\n",
                   sc[s].label, sc[s].replicas, prof[l].label, (long long)t->lost,
                   (long long)t->leases,
                   t->leases ? 100.0 * (double)t->lost / (double)t->leases : 0.0,
                   (long long)t->rounds, t->rounds ? (double)t->lost / (double)t->rounds : 0.0,
                   (long long)t->release_failed);
        }
    tt_sentinels_free(g);
    tt_cluster_free(k);
    th_server_free(store);
    printf("test_failover %s: %d round(s) passed\n", cluster ? "cluster" : "sentinel", rounds);
    return 0;
}

/* contended_mode.c - dlock-bench --mode contended: W forked workers take
 * one lock with dlock_wait and increment a counter under it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>

typedef struct log_ent {
    int64_t t_ns;  /* when dlock_wait returned the lock (CLOCK_MONOTONIC) */
    int64_t fence;
    int64_t wait_ns;
} log_ent;

typedef struct wres {
    int64_t acq_total;  /* every acquisition, also after the window closed */
    int64_t acq_window; /* acquisitions that returned inside the window */
    int64_t cs_ok;      /* critical sections whose GET and SET both succeeded */
    int64_t gets, sets; /* GET and SET commands sent */
    int64_t errors;     /* dlock_wait / dlock_release failures */
    int64_t cs_errors;  /* GET/SET failures */
    int64_t lost;       /* release found the lease gone (ENOTHELD) */
    int64_t log_n, log_cap;
    int truncated;
    int setup_failed;
    char errmsg[256];
} wres;

typedef struct shm_hdr {
    int64_t start_ns, end_ns;
    int abort;
} shm_hdr;

typedef struct data_srv {
    bu_server srv;
    char key[DLOCK_NAME_MAX + 64];
} data_srv;

/* Where the counter lives (see locate_server); the counter starts at 0. */
static int data_locate(const bu_target *t, data_srv *d, const char *name, char *err,
                       size_t errlen) {
    snprintf(d->key, sizeof d->key, "dlock-bench:{%s}:counter", name);
    if (locate_server(t, d->key, &d->srv, err, errlen) != 0)
        return -1;
    redisContext *ctx = bu_connect(t, &d->srv, 2000, 1, err, errlen);
    if (ctx == NULL)
        return -1;
    redisReply *r = redisCommand(ctx, "DEL %s", d->key);
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        snprintf(err, errlen, "DEL %s: %s", d->key,
                 r == NULL                       ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    if (r)
        freeReplyObject(r);
    redisFree(ctx);
    return ok ? 0 : -1;
}

/* The critical section: GET, parse, SET n+1 (deliberately not atomic). */
static int counter_incr(redisContext *d, const char *key, wres *w) {
    w->gets++;
    redisReply *r = redisCommand(d, "GET %s", key);
    long long v = 0;
    int ok = r != NULL && (r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_STRING);
    if (ok && r->type == REDIS_REPLY_STRING) {
        char *end;
        v = strtoll(r->str, &end, 10);
        ok = r->len > 0 && *end == '\0';
    }
    if (!ok && w->errmsg[0] == '\0')
        snprintf(w->errmsg, sizeof w->errmsg, "GET %s: %s", key,
                 r == NULL                       ? d->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not an integer");
    if (r)
        freeReplyObject(r);
    if (!ok)
        return -1;
    w->sets++;
    r = redisCommand(d, "SET %s %lld", key, v + 1);
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (!ok && w->errmsg[0] == '\0')
        snprintf(w->errmsg, sizeof w->errmsg, "SET %s: %s", key,
                 r == NULL ? d->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static void worker_main(const bench_opts *o, const bu_target *t, const data_srv *ds,
                        volatile shm_hdr *hdr, wres *w, log_ent *log, int ready_fd, int go_fd) {
    dlock_client *c = NULL;
    dlock_options dopt;
    dlock_options_init(&dopt);
    dopt.waiting = o->poll ? DLOCK_WAIT_POLL : DLOCK_WAIT_PUSH;
    dopt.fencing = !o->no_fence;
    int rc = dlock_client_new(&c, o->url, &dopt);
    if (rc == DLOCK_OK)
        rc = dlock_client_ping(c);
    redisContext *d = NULL;
    if (rc != DLOCK_OK) {
        snprintf(w->errmsg, sizeof w->errmsg, "client: %s: %s", dlock_err_name(rc),
                 c ? dlock_client_errstr(c) : dlock_strerror(rc));
    } else {
        d = bu_connect(t, &ds->srv, 5000, 1, w->errmsg, sizeof w->errmsg);
    }
    char b = (c && rc == DLOCK_OK && d) ? 'R' : 'E';
    w->setup_failed = b == 'E';
    if (write(ready_fd, &b, 1) != 1 || b == 'E')
        _exit(1);
    close(ready_fd);
    while (read(go_fd, &b, 1) < 0 && errno == EINTR) { /* EOF: go */
    }
    if (__atomic_load_n(&hdr->abort, __ATOMIC_ACQUIRE))
        _exit(1);
    int64_t start = __atomic_load_n(&hdr->start_ns, __ATOMIC_ACQUIRE);
    int64_t end = __atomic_load_n(&hdr->end_ns, __ATOMIC_ACQUIRE);
    bu_sleep_until_ns(start);

    int64_t now = bu_now_ns();
    while (now < end) {
        dlock_lock *l = NULL;
        int64_t t0 = now;
        rc = dlock_wait(c, o->name, WAIT_TIMEOUT_MS, o->ttl_ms, &l);
        int64_t t1 = bu_now_ns();
        if (rc != DLOCK_OK) {
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "dlock_wait: %s: %s", dlock_err_name(rc),
                         dlock_client_errstr(c));
            if (++w->errors >= 100)
                break;
            bu_sleep_ns(1000000);
            now = bu_now_ns();
            continue;
        }
        dlock_info info;
        dlock_info_get(l, &info);
        if (counter_incr(d, ds->key, w) == 0)
            w->cs_ok++;
        else if (++w->cs_errors >= 100)
            now = end; /* stop after releasing */
        if (o->hold_us > 0)
            bu_sleep_ns(o->hold_us * 1000);
        rc = dlock_release(l);
        if (rc == DLOCK_ENOTHELD) {
            w->lost++;
        } else if (rc != DLOCK_OK) {
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "dlock_release: %s: %s",
                         dlock_err_name(rc), dlock_client_errstr(c));
            w->errors++;
        }
        dlock_lock_free(l);
        w->acq_total++;
        if (t1 < end)
            w->acq_window++;
        if (w->log_n < w->log_cap) {
            log_ent *e = &log[w->log_n++];
            e->t_ns = t1;
            e->fence = info.fence;
            e->wait_ns = t1 - t0;
        } else {
            w->truncated = 1;
        }
        if (now < end)
            now = bu_now_ns();
    }
    redisFree(d);
    dlock_client_free(c);
    _exit(0);
}

typedef struct merged {
    int64_t t_ns, fence, wait_ns;
    int wid;
} merged;

static int cmp_fence(const void *a, const void *b) {
    const merged *x = a, *y = b;
    if (x->fence != y->fence)
        return (x->fence > y->fence) - (x->fence < y->fence);
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

static int cmp_time(const void *a, const void *b) {
    const merged *x = a, *y = b;
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

/* Wait for every worker (killing them past deadline_ns); report workers
 * that did not exit cleanly. Returns how many did not. */
static int reap(pid_t *pids, int n, int64_t deadline_ns) {
    int left = 0, bad = 0;
    for (int i = 0; i < n; i++)
        left += pids[i] > 0;
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            int st = 0;
            pid_t r = waitpid(pids[i], &st, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR))
                continue;
            if (r == pids[i] && WIFSIGNALED(st)) {
                fprintf(stderr, "dlock-bench: worker %d killed by signal %d\n", i, WTERMSIG(st));
                bad++;
            } else if (r == pids[i] && WEXITSTATUS(st) != 0) {
                fprintf(stderr, "dlock-bench: worker %d exited with status %d\n", i,
                        WEXITSTATUS(st));
                bad++;
            }
            pids[i] = 0;
            left--;
        }
        if (left == 0)
            break;
        if (bu_now_ns() > deadline_ns) {
            fprintf(stderr, "dlock-bench: %d worker(s) still running; killing them\n", left);
            for (int i = 0; i < n; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGKILL);
            deadline_ns = INT64_MAX;
        }
        bu_sleep_ns(2000000);
    }
    return bad;
}

int run_contended(const bench_opts *o, const bu_target *t, result *res) {
    const int W = o->workers;
    char err[600];
    data_srv ds;
    if (data_locate(t, &ds, o->name, err, sizeof err) != 0)
        return fail("counter: %s", err);

    /* Warm-up in the parent: connects, loads the scripts into the server's
     * cache, and waits out a lease left by an earlier, killed run. */
    {
        dlock_client *c;
        if (client_make(o, &c))
            return 1;
        dlock_lock *l = NULL;
        int rc = dlock_wait(c, o->name, WAIT_TIMEOUT_MS, o->ttl_ms, &l);
        if (rc == DLOCK_OK)
            rc = dlock_release(l);
        dlock_lock_free(l);
        if (rc != DLOCK_OK) {
            fail("warm-up: %s: %s", dlock_err_name(rc), dlock_client_errstr(c));
            dlock_client_free(c);
            return 1;
        }
        dlock_client_free(c);
    }

    int64_t cap = (int64_t)((o->seconds + 5) * 50000) + 10000;
    if (cap > LOG_BUDGET / W)
        cap = LOG_BUDGET / W;
    size_t off_w = (sizeof(shm_hdr) + 63) & ~(size_t)63;
    size_t off_log = (off_w + (size_t)W * sizeof(wres) + 63) & ~(size_t)63;
    size_t total = off_log + (size_t)W * (size_t)cap * sizeof(log_ent);
    void *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap %zu bytes: %s", total, strerror(errno));
    volatile shm_hdr *hdr = mem;
    wres *wr = (wres *)((char *)mem + off_w);
    log_ent *logs = (log_ent *)((char *)mem + off_log);
    for (int i = 0; i < W; i++)
        wr[i].log_cap = cap;

    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        munmap(mem, total);
        return fail("pipe: %s", strerror(errno));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t *pids = calloc((size_t)W, sizeof *pids);
    if (pids == NULL) {
        munmap(mem, total);
        return fail("out of memory");
    }
    int forked = 0, rc = 0;
    for (int i = 0; i < W; i++) {
        pid_t p = fork();
        if (p < 0) {
            rc = fail("fork: %s", strerror(errno));
            break;
        }
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            worker_main(o, t, &ds, hdr, &wr[i], logs + (size_t)i * (size_t)cap, ready[1],
                        go[0]);
            _exit(1);
        }
        pids[i] = p;
        forked++;
    }
    close(ready[1]);
    close(go[0]);

    /* Wait until every worker has connected (or failed to). */
    int readies = 0, bad = 0;
    int64_t setup_deadline = bu_now_ns() + 30 * (int64_t)1000000000;
    while (rc == 0 && readies + bad < forked) {
        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        int64_t left_ms = (setup_deadline - bu_now_ns()) / 1000000;
        if (left_ms <= 0) {
            rc = fail("workers did not connect within 30 s");
            break;
        }
        int pr = poll(&pfd, 1, (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        char buf[64];
        ssize_t nr = pr > 0 ? read(ready[0], buf, sizeof buf) : 0;
        if (nr <= 0 && pr > 0) {
            rc = fail("a worker exited during set-up");
            break;
        }
        for (ssize_t k = 0; k < nr; k++)
            *(buf[k] == 'R' ? &readies : &bad) += 1;
    }
    close(ready[0]);
    if (rc == 0 && bad > 0) {
        for (int i = 0; i < W; i++)
            if (wr[i].setup_failed) {
                rc = fail("worker %d: %s", i, wr[i].errmsg);
                break;
            }
        if (rc == 0)
            rc = fail("%d worker(s) failed to set up", bad);
    }

    stats_conns sc;
    bu_cmdstats before, after;
    int got_before = 0, got_after = 0;
    if (rc == 0) {
        stats_open(&sc, t);
        got_before = stats_read(&sc, &before);
        int64_t start = bu_now_ns() + 20000000; /* 20 ms: every worker is past read() */
        __atomic_store_n(&hdr->start_ns, start, __ATOMIC_RELEASE);
        __atomic_store_n(&hdr->end_ns, start + (int64_t)(o->seconds * 1e9), __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&hdr->abort, 1, __ATOMIC_RELEASE);
    }
    close(go[1]); /* EOF on every worker's go pipe: start */
    int64_t run_deadline =
        bu_now_ns() + (int64_t)((o->seconds + 2 * WAIT_TIMEOUT_MS / 1000.0 + 10) * 1e9);
    int crashed = reap(pids, W, run_deadline);
    free(pids);
    if (rc != 0) {
        munmap(mem, total);
        return rc;
    }
    got_after = stats_read(&sc, &after);
    stats_close(&sc);

    /* The counter as the workers left it. */
    long long actual = -1;
    {
        redisContext *d = bu_connect(t, &ds.srv, 5000, 1, err, sizeof err);
        redisReply *r = d ? redisCommand(d, "GET %s", ds.key) : NULL;
        if (r && r->type == REDIS_REPLY_STRING)
            actual = strtoll(r->str, NULL, 10);
        else if (r && r->type == REDIS_REPLY_NIL)
            actual = 0;
        else
            fprintf(stderr, "dlock-bench: warning: reading the counter: %s\n",
                    d == NULL ? err : r == NULL ? d->errstr : "unexpected reply");
        if (r)
            freeReplyObject(r);
        if (d)
            redisFree(d);
    }

    /* Merge the logs. */
    int64_t start = hdr->start_ns, end = hdr->end_ns;
    int64_t cutoff = end;
    int64_t n_log = 0, acq_total = 0, acq_window = 0, cs_ok = 0, gets = 0, sets = 0, errors = 0,
            cs_errors = 0, lost = 0, min_w = INT64_MAX, max_w = 0;
    for (int i = 0; i < W; i++) {
        const wres *w = &wr[i];
        n_log += w->log_n;
        acq_total += w->acq_total;
        acq_window += w->acq_window;
        cs_ok += w->cs_ok;
        gets += w->gets;
        sets += w->sets;
        errors += w->errors;
        cs_errors += w->cs_errors;
        lost += w->lost;
        if (w->acq_window < min_w)
            min_w = w->acq_window;
        if (w->acq_window > max_w)
            max_w = w->acq_window;
        if (w->truncated && w->log_n > 0) {
            int64_t last = logs[(size_t)i * (size_t)cap + (size_t)w->log_n - 1].t_ns;
            if (last < cutoff)
                cutoff = last;
        }
        if (w->errmsg[0])
            fprintf(stderr, "dlock-bench: worker %d: %s\n", i, w->errmsg);
    }
    merged *m = malloc((size_t)(n_log > 0 ? n_log : 1) * sizeof *m);
    bu_samples waits;
    if (m == NULL || bu_samples_init(&waits, SAMPLE_CAP) != 0) {
        free(m);
        munmap(mem, total);
        return fail("out of memory");
    }
    int64_t k = 0, zero_fence = 0;
    for (int i = 0; i < W; i++) {
        const log_ent *lg = logs + (size_t)i * (size_t)cap;
        for (int64_t j = 0; j < wr[i].log_n; j++) {
            m[k].t_ns = lg[j].t_ns;
            m[k].fence = lg[j].fence;
            m[k].wait_ns = lg[j].wait_ns;
            m[k].wid = i;
            zero_fence += lg[j].fence == 0;
            /* Every wait began inside the window; those that ended after
             * it count too (a long wait is no less long for ending late). */
            if (cutoff == end || lg[j].t_ns < cutoff)
                bu_samples_add(&waits, lg[j].wait_ns);
            k++;
        }
    }
    /* Global order: by fence (strictly increasing per grant); by time when
     * fencing tokens are missing. */
    qsort(m, (size_t)n_log, sizeof *m, zero_fence ? cmp_time : cmp_fence);
    int64_t handoffs = 0, dup_fence = 0, inversions = 0;
    for (int64_t i = 1; i < n_log; i++) {
        if (m[i].wid != m[i - 1].wid && m[i].t_ns >= start && m[i].t_ns < cutoff)
            handoffs++;
        if (!zero_fence && m[i].fence == m[i - 1].fence)
            dup_fence++;
        if (m[i].t_ns < m[i - 1].t_ns)
            inversions++;
    }
    bu_samples_sort(&waits);
    double secs = (double)(end - start) / 1e9;
    double hsecs = (double)(cutoff - start) / 1e9;
    double mean = (double)acq_window / W;

    res->acq_per_s = (double)acq_window / secs;
    res->handoffs_per_s = hsecs > 0 ? (double)handoffs / hsecs : 0;
    res->min_share = mean > 0 ? (double)min_w / mean : 0;
    res->wait_p99_us = bu_samples_quantile(&waits, 0.99) / 1000.0;
    res->violations = actual < 0 ? -1 : cs_ok - actual;

    printf("mode contended: %d worker(s), waiting %s, key '%s', ttl %" PRId64
           " ms, hold %" PRId64 " us, %d server(s)\n",
           W, o->poll ? "poll" : "push", o->name, o->ttl_ms, o->hold_us, t->nservers);
    printf("acquisitions: %" PRId64 " in %.3f s = %.1f /s  (%" PRId64
           " more after the window closed)\n",
           acq_window, secs, res->acq_per_s, acq_total - acq_window);
    printf("handoffs:     %" PRId64 " = %.1f /s  (%.1f%% of acquisitions)\n", handoffs,
           res->handoffs_per_s, acq_window > 0 ? 100.0 * (double)handoffs / (double)acq_window
                                               : 0.0);
    printf("per worker:   min %" PRId64 "  max %" PRId64 "  mean %.1f  min_share %.3f\n", min_w,
           max_w, mean, res->min_share);
    printf("  shares:");
    for (int i = 0; i < W && i < 64; i++)
        printf(" %" PRId64, wr[i].acq_window);
    printf("%s\n", W > 64 ? " ..." : "");
    printf("wait (time in dlock_wait): p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  "
           "max %.1f us\n",
           bu_samples_quantile(&waits, 0.5) / 1000.0, bu_samples_quantile(&waits, 0.9) / 1000.0,
           res->wait_p99_us, bu_samples_quantile(&waits, 0.999) / 1000.0,
           bu_samples_quantile(&waits, 1.0) / 1000.0);
    if (got_before > 0 && got_before == got_after) {
        inner_set in;
        inner_library(&in);
        double lib;
        own_calls own = {gets, sets};
        res->cmds_per_acq =
            cmds_report(&before, &after, &in, &own, acq_total, "acquisition", &lib);
        printf("  library commands per acquisition (without the bench's GET+SET): %.3f\n", lib);
        if (handoffs > 0)
            printf("  client commands per handoff: %.2f\n",
                   res->cmds_per_acq * (double)acq_total / (double)handoffs);
    } else {
        res->cmds_per_acq = -1;
        fprintf(stderr, "dlock-bench: warning: INFO commandstats unavailable\n");
    }
    printf("counter: expected %" PRId64 " (critical sections), actual %lld: violations %lld\n",
           cs_ok, actual, res->violations);
    if (errors || cs_errors || lost)
        printf("errors: %" PRId64 " lock call failures, %" PRId64 " GET/SET failures, %" PRId64
               " leases lost before release\n",
               errors, cs_errors, lost);
    if (dup_fence || inversions)
        printf("ORDER ANOMALIES: %" PRId64 " duplicate fences, %" PRId64
               " acquisitions earlier than the previous fence's\n",
               dup_fence, inversions);
    if (crashed)
        printf("WARNING: %d worker(s) did not finish cleanly; figures are partial\n", crashed);
    if (zero_fence)
        printf("note: %" PRId64 " acquisitions without a fence; ordered by time\n", zero_fence);
    if (cutoff < end)
        printf("note: a worker's log filled up; handoffs and waits cover the first %.3f s\n",
               hsecs);
    if (res->violations != 0)
        fprintf(stderr, "dlock-bench: MUTUAL EXCLUSION VIOLATED: %lld lost updates\n",
                res->violations);
    bu_samples_free(&waits);
    free(m);
    munmap(mem, total);
    return 0;
}


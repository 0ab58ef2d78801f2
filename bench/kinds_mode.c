/* kinds_mode.c - dlock-bench for the other kinds of locks (issue 11).
 *
 * semaphore  W worker processes wait for one of N permits (dlock_sem_wait),
 *            hold it hold_us, release, repeat. Fairness: each worker's
 *            share of the acquisitions against the mean (min_share);
 *            safety: a count of holders in shared memory, never above N.
 * rwlock     R readers (dlock_rw_wait shared, holding hold_us) and W
 *            writers (exclusive, holding writer_hold_us) loop. The writers'
 *            wait against one reader's hold: FIFO admission means a writer
 *            waits for the readers already in, not for those that arrive
 *            after it. Safety: never a writer with anyone.
 * multilock  W workers take random sets of `set` of `names` names, passed
 *            in random order (dlock_multi_wait), hold, release. Deadlock: a
 *            wait that reaches wait_ms is a stall, and the longest time in
 *            which no worker acquired anything is reported; safety: never
 *            two holders of a name.
 * Each worker has its own client and connections. A holder counts itself
 * in after its acquire returns and out before it releases, so a count
 * past the limit is a real overlap of believed-held intervals.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "kinds_mode.h"

#define MAX_NAMES 16
#define NAME_BUF (DLOCK_NAME_MAX + 16)

static const char *const kind_names[] = {"mutex", "sem", "rw-shared", "rw-exclusive", "multi"};

int kb_kind_by_name(const char *name) {
    for (int i = 0; i < (int)(sizeof kind_names / sizeof kind_names[0]); i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

const char *kb_kind_name(int kind) {
    return kind >= 0 && kind < (int)(sizeof kind_names / sizeof kind_names[0])
               ? kind_names[kind]
               : "?";
}

/* "{name}0", "{name}1", ...: one hash slot for all. */
static void make_names(const char *name, int n, char (*buf)[NAME_BUF], const char **out) {
    for (int i = 0; i < n; i++) {
        snprintf(buf[i], NAME_BUF, "{%s}%d", name, i);
        out[i] = buf[i];
    }
}

int kb_pair(dlock_client *c, int kind, const char *name, int permits, int set, int64_t ttl_ms,
            char *err, size_t errlen) {
    static char buf[MAX_NAMES][NAME_BUF];
    const char *names[MAX_NAMES];
    dlock_lock *l = NULL;
    const char *what = "try-acquire";
    int rc;
    switch (kind) {
    case KB_SEM:
        rc = dlock_sem_try_acquire(c, name, permits, ttl_ms, &l);
        break;
    case KB_RW_SHARED:
    case KB_RW_EXCLUSIVE:
        rc = dlock_rw_try_acquire(c, name, kind == KB_RW_SHARED ? DLOCK_SHARED : DLOCK_EXCLUSIVE,
                                  ttl_ms, &l);
        break;
    case KB_MULTI:
        make_names(name, set, buf, names);
        rc = dlock_multi_try_acquire(c, names, set, ttl_ms, &l);
        break;
    default:
        rc = dlock_try_acquire(c, name, ttl_ms, &l);
    }
    if (rc == DLOCK_OK) {
        what = "release";
        rc = dlock_release(l);
    }
    if (rc != DLOCK_OK)
        snprintf(err, errlen, "%s %s: %s: %s", kb_kind_name(kind), what, dlock_err_name(rc),
                 dlock_client_errstr(c));
    dlock_lock_free(l);
    return rc;
}

/* ---- shared memory ---- */

typedef struct kw { /* one worker's figures */
    int64_t acq_window, acq_total, stalls, errors, nlog;
    int writer, failed;
    char errmsg[200];
} kw;

typedef struct shm {
    _Atomic int64_t start_ns, end_ns, last_acq_ns, violations;
    _Atomic int ready, abort, readers, writers, max_holders;
    _Atomic int holders[MAX_NAMES]; /* semaphore: [0]; multilock: per name */
} shm;

typedef struct run {
    const kb_opts *o;
    int nw;
    int64_t cap; /* waits logged per worker */
    size_t bytes;
    shm *m;
    kw *w;
    int64_t *log; /* worker i's waits at log[i * cap] */
    pid_t *pids;
} run;

static void note_max(_Atomic int *max, int v) {
    int cur = atomic_load(max);
    while (v > cur && !atomic_compare_exchange_weak(max, &cur, v)) {
    }
}

/* Count a holder in (after its acquire returned). */
static void enter(run *r, int writer, const int *idx, int n) {
    shm *m = r->m;
    int bad = 0;
    switch (r->o->mode) {
    case KB_SEMAPHORE: {
        int h = atomic_fetch_add(&m->holders[0], 1) + 1;
        note_max(&m->max_holders, h);
        bad = h > r->o->permits;
        break;
    }
    case KB_RWLOCK:
        if (writer) {
            int h = atomic_fetch_add(&m->writers, 1) + 1;
            bad = h > 1 || atomic_load(&m->readers) > 0;
            note_max(&m->max_holders, h);
        } else {
            note_max(&m->max_holders, atomic_fetch_add(&m->readers, 1) + 1);
            bad = atomic_load(&m->writers) > 0;
        }
        break;
    default:
        for (int i = 0; i < n; i++) {
            int h = atomic_fetch_add(&m->holders[idx[i]], 1) + 1;
            note_max(&m->max_holders, h);
            bad |= h > 1;
        }
    }
    if (bad)
        atomic_fetch_add(&m->violations, 1);
}

/* Count it out (before it releases). */
static void leave(run *r, int writer, const int *idx, int n) {
    shm *m = r->m;
    if (r->o->mode == KB_SEMAPHORE)
        atomic_fetch_sub(&m->holders[0], 1);
    else if (r->o->mode == KB_RWLOCK)
        atomic_fetch_sub(writer ? &m->writers : &m->readers, 1);
    else
        for (int i = 0; i < n; i++)
            atomic_fetch_sub(&m->holders[idx[i]], 1);
}

/* ---- the worker ---- */

static int acquire(run *r, dlock_client *c, int writer, unsigned *seed, int *idx, int *n,
                   dlock_lock **l) {
    const kb_opts *o = r->o;
    if (o->mode == KB_SEMAPHORE)
        return dlock_sem_wait(c, o->name, o->permits, o->wait_ms, o->ttl_ms, l);
    if (o->mode == KB_RWLOCK)
        return dlock_rw_wait(c, o->name, writer ? DLOCK_EXCLUSIVE : DLOCK_SHARED, o->wait_ms,
                             o->ttl_ms, l);
    static char buf[MAX_NAMES][NAME_BUF];
    const char *all[MAX_NAMES], *names[MAX_NAMES];
    make_names(o->name, o->names, buf, all);
    int pool[MAX_NAMES];
    for (int i = 0; i < o->names; i++)
        pool[i] = i;
    for (int i = 0; i < o->set; i++) { /* set distinct names, in random order */
        int j = i + (int)(rand_r(seed) % (unsigned)(o->names - i));
        int t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        idx[i] = pool[i];
        names[i] = all[pool[i]];
    }
    *n = o->set;
    return dlock_multi_wait(c, names, o->set, o->wait_ms, o->ttl_ms, l);
}

static void worker_loop(run *r, dlock_client *c, kw *w, int64_t *log) {
    const kb_opts *o = r->o;
    int64_t end = atomic_load(&r->m->end_ns);
    unsigned seed = (unsigned)getpid() * 2654435761u;
    int64_t hold_ns = (w->writer ? o->writer_hold_us : o->hold_us) * 1000;
    for (int64_t now = bu_now_ns(); now < end; now = bu_now_ns()) {
        dlock_lock *l = NULL;
        int idx[MAX_NAMES], n = 0;
        int rc = acquire(r, c, w->writer, &seed, idx, &n, &l);
        int64_t t1 = bu_now_ns();
        if (rc != DLOCK_OK) {
            if (rc == DLOCK_ETIMEDOUT) {
                w->stalls++;
                continue;
            }
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "acquire: %s: %s", dlock_err_name(rc),
                         dlock_client_errstr(c));
            w->errors++;
            bu_sleep_ns(1000000);
            continue;
        }
        atomic_store(&r->m->last_acq_ns, t1);
        enter(r, w->writer, idx, n);
        w->acq_total++;
        w->acq_window += t1 < end;
        if (w->nlog < r->cap)
            log[w->nlog++] = t1 - now;
        if (hold_ns > 0)
            bu_sleep_ns(hold_ns);
        leave(r, w->writer, idx, n);
        rc = dlock_release(l);
        if (rc != DLOCK_OK) {
            if (w->errmsg[0] == '\0')
                snprintf(w->errmsg, sizeof w->errmsg, "release: %s: %s", dlock_err_name(rc),
                         dlock_client_errstr(c));
            w->errors++;
        }
        dlock_lock_free(l);
    }
}

static _Noreturn void worker_main(run *r, int i) {
    kw *w = &r->w[i];
    dlock_client *c = NULL;
    dlock_options opts;
    dlock_options_init(&opts);
    int rc = dlock_client_new(&c, r->o->url, &opts);
    if (rc == DLOCK_OK)
        rc = dlock_client_ping(c);
    if (rc != DLOCK_OK) {
        snprintf(w->errmsg, sizeof w->errmsg, "client: %s: %s", dlock_err_name(rc),
                 c ? dlock_client_errstr(c) : dlock_strerror(rc));
        w->failed = 1;
    }
    atomic_fetch_add(&r->m->ready, 1);
    while (!w->failed && atomic_load(&r->m->start_ns) == 0 && !atomic_load(&r->m->abort))
        bu_sleep_ns(1000000);
    if (!w->failed && !atomic_load(&r->m->abort)) {
        bu_sleep_until_ns(atomic_load(&r->m->start_ns));
        worker_loop(r, c, w, r->log + (size_t)i * (size_t)r->cap);
    }
    dlock_client_free(c);
    _exit(w->failed ? 1 : 0);
}

/* ---- the parent ---- */

/* Wait for every worker until deadline_ns, then kill the rest. Returns how
 * many did not exit cleanly. */
static int reap(run *r, int64_t deadline_ns) {
    int left = r->nw, bad = 0;
    while (left > 0) {
        for (int i = 0; i < r->nw; i++) {
            int st = 0;
            if (r->pids[i] <= 0 || waitpid(r->pids[i], &st, WNOHANG) != r->pids[i])
                continue;
            bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
            r->pids[i] = 0;
            left--;
        }
        if (left > 0 && bu_now_ns() > deadline_ns) {
            fprintf(stderr, "dlock-bench: %d worker(s) still running; killing them\n", left);
            for (int i = 0; i < r->nw; i++)
                if (r->pids[i] > 0)
                    kill(r->pids[i], SIGKILL);
            deadline_ns = INT64_MAX;
        }
        if (left > 0)
            bu_sleep_ns(2000000);
    }
    return bad;
}

/* Start the workers and let them run; max_gap_ns receives the longest
 * time in the window in which nobody acquired anything. */
static int start_and_watch(run *r, int64_t *max_gap_ns) {
    const kb_opts *o = r->o;
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < r->nw; i++) {
        r->w[i].writer = o->mode == KB_RWLOCK && i < o->writers;
        pid_t p = fork();
        if (p == 0)
            worker_main(r, i);
        r->pids[i] = p;
        if (p < 0) {
            atomic_store(&r->m->abort, 1);
            fprintf(stderr, "dlock-bench: fork: %s\n", strerror(errno));
            return -1;
        }
    }
    int64_t setup_end = bu_now_ns() + 30 * (int64_t)1000000000;
    while (atomic_load(&r->m->ready) < r->nw && bu_now_ns() < setup_end)
        bu_sleep_ns(2000000);
    for (int i = 0; i < r->nw; i++)
        if (r->w[i].failed || atomic_load(&r->m->ready) < r->nw) {
            atomic_store(&r->m->abort, 1);
            fprintf(stderr, "dlock-bench: worker %d: %s\n", i,
                    r->w[i].errmsg[0] ? r->w[i].errmsg : "did not connect within 30 s");
            return -1;
        }
    int64_t start = bu_now_ns() + 50000000, end = start + (int64_t)(o->seconds * 1e9);
    atomic_store(&r->m->last_acq_ns, start);
    atomic_store(&r->m->end_ns, end);
    atomic_store(&r->m->start_ns, start);
    *max_gap_ns = 0;
    for (int64_t now = bu_now_ns(); now < end; now = bu_now_ns()) {
        bu_sleep_ns(10000000);
        int64_t gap = bu_now_ns() - atomic_load(&r->m->last_acq_ns);
        if (gap > *max_gap_ns)
            *max_gap_ns = gap;
    }
    return 0;
}

/* Waits of workers [from, to) into s (sorted). */
static void collect(const run *r, int from, int to, bu_samples *s) {
    for (int i = from; i < to; i++)
        for (int64_t k = 0; k < r->w[i].nlog; k++)
            bu_samples_add(s, r->log[(size_t)i * (size_t)r->cap + (size_t)k]);
    bu_samples_sort(s);
}

typedef struct shares {
    int64_t total, min, max;
    double mean, min_share;
} shares;

static shares share_of(const run *r, int from, int to) {
    shares s = {0, INT64_MAX, 0, 0, 0};
    for (int i = from; i < to; i++) {
        int64_t a = r->w[i].acq_window;
        s.total += a;
        s.min = a < s.min ? a : s.min;
        s.max = a > s.max ? a : s.max;
    }
    s.mean = to > from ? (double)s.total / (to - from) : 0;
    s.min_share = s.mean > 0 ? (double)s.min / s.mean : 0;
    return s;
}

static void print_shares(const run *r, const char *who, int from, int to, const shares *s) {
    printf("%s: %" PRId64 " acquisitions = %.1f /s; per worker min %" PRId64 " max %" PRId64
           " mean %.1f, min_share %.3f\n  shares:",
           who, s->total, (double)s->total / r->o->seconds, s->min, s->max, s->mean,
           s->min_share);
    for (int i = from; i < to; i++)
        printf(" %" PRId64, r->w[i].acq_window);
    printf("\n");
}

static double q_us(const bu_samples *s, double p) { return bu_samples_quantile(s, p) / 1000.0; }

/* Figures, verdicts against issue 11's targets, the RESULT line. */
static void report(const run *r, int64_t max_gap_ns) {
    const kb_opts *o = r->o;
    int64_t stalls = 0, errors = 0, viol = atomic_load(&r->m->violations);
    for (int i = 0; i < r->nw; i++) {
        stalls += r->w[i].stalls;
        errors += r->w[i].errors;
        if (r->w[i].errmsg[0])
            fprintf(stderr, "dlock-bench: worker %d: %s\n", i, r->w[i].errmsg);
    }
    bu_samples all, wr, rd;
    if (bu_samples_init(&all, (size_t)1 << 22) || bu_samples_init(&wr, (size_t)1 << 22) ||
        bu_samples_init(&rd, (size_t)1 << 22)) {
        fprintf(stderr, "dlock-bench: out of memory\n");
        return;
    }
    collect(r, 0, r->nw, &all);
    int mh = atomic_load(&r->m->max_holders);
    if (o->mode == KB_SEMAPHORE) {
        shares s = share_of(r, 0, r->nw);
        print_shares(r, "permits", 0, r->nw, &s);
        printf("wait: p50 %.1f us  p99 %.1f us  max %.1f us; most holders at once %d of %d\n",
               q_us(&all, 0.5), q_us(&all, 0.99), q_us(&all, 1), mh, o->permits);
        printf("fairness: min_share %.3f (target >= 0.5: %s)\n", s.min_share,
               s.min_share >= 0.5 ? "met" : "MISSED");
        printf("RESULT mode=semaphore workers=%d permits=%d hold_us=%" PRId64
               " acq_per_s=%.1f min_share=%.3f wait_p50_us=%.1f wait_p99_us=%.1f "
               "max_holders=%d stalls=%" PRId64 " errors=%" PRId64 " violations=%" PRId64 "\n",
               r->nw, o->permits, o->hold_us, (double)s.total / o->seconds, s.min_share,
               q_us(&all, 0.5), q_us(&all, 0.99), mh, stalls, errors, viol);
    } else if (o->mode == KB_RWLOCK) {
        shares sw = share_of(r, 0, o->writers), sr = share_of(r, o->writers, r->nw);
        collect(r, 0, o->writers, &wr);
        collect(r, o->writers, r->nw, &rd);
        print_shares(r, "writers", 0, o->writers, &sw);
        print_shares(r, "readers", o->writers, r->nw, &sr);
        double ratio = q_us(&wr, 0.99) / (double)o->hold_us;
        printf("writer wait: p50 %.1f us  p99 %.1f us  max %.1f us; reader wait p99 %.1f us; "
               "reader hold %" PRId64 " us\n",
               q_us(&wr, 0.5), q_us(&wr, 0.99), q_us(&wr, 1), q_us(&rd, 0.99), o->hold_us);
        printf("writer wait p99 / reader hold = %.2f (target < 2: %s)\n", ratio,
               ratio < 2 ? "met" : "MISSED");
        printf("RESULT mode=rwlock readers=%d writers=%d hold_us=%" PRId64
               " writer_hold_us=%" PRId64 " reader_acq_per_s=%.1f writer_acq_per_s=%.1f "
               "writer_wait_p50_us=%.1f writer_wait_p99_us=%.1f writer_p99_per_hold=%.2f "
               "reader_wait_p99_us=%.1f reader_min_share=%.3f stalls=%" PRId64
               " errors=%" PRId64 " violations=%" PRId64 "\n",
               o->readers, o->writers, o->hold_us, o->writer_hold_us,
               (double)sr.total / o->seconds, (double)sw.total / o->seconds, q_us(&wr, 0.5),
               q_us(&wr, 0.99), ratio, q_us(&rd, 0.99), sr.min_share, stalls, errors, viol);
    } else {
        shares s = share_of(r, 0, r->nw);
        print_shares(r, "multi-locks", 0, r->nw, &s);
        printf("wait: p50 %.1f us  p99 %.1f us  max %.1f us; longest time with no acquisition "
               "%.1f ms; waits that reached %" PRId64 " ms: %" PRId64 "\n",
               q_us(&all, 0.5), q_us(&all, 0.99), q_us(&all, 1), (double)max_gap_ns / 1e6,
               o->wait_ms, stalls);
        printf("deadlock: %s in %.0f s\n", stalls == 0 && s.min > 0 ? "none" : "STALLS",
               o->seconds);
        printf("RESULT mode=multilock workers=%d names=%d set=%d hold_us=%" PRId64
               " acq_per_s=%.1f min_share=%.3f wait_p99_us=%.1f wait_max_us=%.1f "
               "max_gap_ms=%.1f stalls=%" PRId64 " errors=%" PRId64 " violations=%" PRId64 "\n",
               r->nw, o->names, o->set, o->hold_us, (double)s.total / o->seconds, s.min_share,
               q_us(&all, 0.99), q_us(&all, 1), (double)max_gap_ns / 1e6, stalls, errors, viol);
    }
    if (viol > 0)
        fprintf(stderr, "dlock-bench: EXCLUSION VIOLATED %" PRId64 " times\n", viol);
    bu_samples_free(&all);
    bu_samples_free(&wr);
    bu_samples_free(&rd);
}

int run_kinds_mode(const kb_opts *o) {
    run r = {.o = o};
    r.nw = o->mode == KB_RWLOCK ? o->readers + o->writers : o->workers;
    r.cap = (int64_t)((o->seconds + 5) * 20000);
    if (r.cap > 2000000)
        r.cap = 2000000;
    size_t off_w = (sizeof(shm) + 63) & ~(size_t)63;
    size_t off_log = (off_w + (size_t)r.nw * sizeof(kw) + 63) & ~(size_t)63;
    r.bytes = off_log + (size_t)r.nw * (size_t)r.cap * sizeof(int64_t);
    void *mem = mmap(NULL, r.bytes, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r.pids = calloc((size_t)r.nw, sizeof *r.pids);
    if (mem == MAP_FAILED || r.pids == NULL) {
        fprintf(stderr, "dlock-bench: out of memory\n");
        return 1;
    }
    r.m = mem;
    r.w = (kw *)((char *)mem + off_w);
    r.log = (int64_t *)((char *)mem + off_log);
    static const char *const mode_names[] = {"semaphore", "rwlock", "multilock"};
    printf("mode %s: %d worker(s), lock '%s', ttl %" PRId64 " ms, hold %" PRId64 " us, %.1f s\n",
           mode_names[o->mode], r.nw, o->name, o->ttl_ms, o->hold_us, o->seconds);
    int64_t max_gap = 0;
    int rc = start_and_watch(&r, &max_gap);
    int bad = reap(&r, bu_now_ns() + (int64_t)(o->wait_ms + 10000) * 1000000);
    if (rc == 0) {
        if (bad > 0)
            printf("WARNING: %d worker(s) did not finish cleanly; figures are partial\n", bad);
        report(&r, max_gap);
    }
    int status = rc != 0 ? 1 : atomic_load(&r.m->violations) > 0 ? 1 : 0;
    free(r.pids);
    munmap(mem, r.bytes);
    return status;
}

/* history.c - the shared interval log and the mutual-exclusion checker. */
#include "history.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"

#define SHOW_MAX 5 /* explained violations printed; unexplained: up to 20 */

static size_t map_size(int64_t cap) { return sizeof(hist) + (size_t)cap * sizeof(hist_rec); }

hist *hist_new(int64_t cap) {
    hist *h = mmap(NULL, map_size(cap), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                   0);
    if (h == MAP_FAILED)
        TH_FAIL("hist_new: mmap of %lld records failed", (long long)cap);
    memset(h, 0, sizeof *h);
    h->cap = cap;
    return h;
}

void hist_free(hist *h) {
    if (h != NULL)
        munmap(h, map_size(h->cap));
}

int hist_add(hist *h, const char *name, int64_t fence, int64_t start_us, int64_t end_us,
             int worker) {
    return hist_add_kind(h, name, fence, start_us, end_us, worker, 0, 0);
}

int hist_add_rec(hist *h, const hist_rec *r) {
    int64_t i = atomic_fetch_add(&h->n, 1);
    if (i >= h->cap)
        return -1;
    hist_rec *d = &h->rec[i];
    *d = *r;
    d->done = 0;
    atomic_thread_fence(memory_order_release);
    d->done = 1;
    return 0;
}

int hist_add_kind(hist *h, const char *name, int64_t fence, int64_t start_us, int64_t end_us,
                  int worker, int limit, int shared) {
    hist_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    r.fence = fence;
    r.start_us = start_us;
    r.end_us = end_us;
    r.worker = worker;
    r.limit = limit;
    r.shared = shared;
    return hist_add_rec(h, &r);
}

int hist_add_multi(hist *h, int asked, int n, const char *const *names, const int64_t *fences,
                   int64_t req_us, int64_t start_us, int64_t end_us, int worker) {
    hist_rec r;
    memset(&r, 0, sizeof r);
    r.group = atomic_fetch_add(&h->ngroups, 1) + 1;
    r.nnames = asked;
    r.req_us = req_us;
    r.start_us = start_us;
    r.end_us = end_us;
    r.worker = worker;
    for (int i = 0; i < n; i++) {
        snprintf(r.name, sizeof r.name, "%s", names[i]);
        r.fence = fences[i];
        if (hist_add_rec(h, &r) != 0)
            return -1;
    }
    return 0;
}

void hist_fault(hist *h) { atomic_fetch_add(&h->faults, 1); }

void hist_loss(hist *h, int64_t from_us) {
    int64_t i = atomic_fetch_add(&h->nloss, 1);
    if (i < (int64_t)(sizeof h->loss_to / sizeof h->loss_to[0])) {
        h->loss_from[i] = from_us;
        h->loss_to[i] = th_now_us();
    }
}

static int by_name_start(const void *a, const void *b) {
    const hist_rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

/* A data-loss event that may lie between two grants: a is when the
 * earlier one's acquire began (began()), b when the later one's returned;
 * the earlier grant may have run before the event was confirmed, the
 * later after the event could first have happened. */
static int loss_between(const hist *h, int64_t a, int64_t b) {
    int64_t n = atomic_load(&h->nloss);
    if (n > (int64_t)(sizeof h->loss_to / sizeof h->loss_to[0]))
        n = (int64_t)(sizeof h->loss_to / sizeof h->loss_to[0]);
    for (int64_t i = 0; i < n; i++)
        if (a < h->loss_to[i] && b > h->loss_from[i])
            return 1;
    return 0;
}

/* When r's grant may have run from: its acquire's start if recorded (a
 * grant that runs before a loss can be seen by its process only after the
 * loss was confirmed), else its return. */
static int64_t began(const hist_rec *r) {
    return r->req_us > 0 && r->req_us < r->start_us ? r->req_us : r->start_us;
}

/* ---- the other kinds ---- */

/* A record that excludes every other holder: a writer, a mutex, a
 * semaphore of one permit. */
static int excl(const hist_rec *r) { return r->limit <= 1; }

typedef struct kscan {
    const hist *h;
    const hist_rec *v; /* one name's records, by start */
    int64_t n;
    hist_result *res;
    int *shown;
} kscan;

/* Holders at each start instant within the smallest limit among them: a
 * sweep over the records by start, keeping those not yet ended. A
 * violation is explained when a data-loss event lies between the grant
 * of the oldest holder (from began()) and this instant. */
static void check_holders(kscan *k, int64_t *active) {
    int64_t na = 0;
    for (int64_t i = 0; i < k->n; i++) {
        int64_t at = k->v[i].start_us, kept = 0, lim = HIST_ANY, first = at;
        for (int64_t a = 0; a < na; a++)
            if (k->v[active[a]].end_us > at)
                active[kept++] = active[a];
        active[kept++] = i;
        na = kept;
        for (int64_t a = 0; a < na; a++) {
            const hist_rec *r = &k->v[active[a]];
            int64_t l = r->limit > 0 ? r->limit : 1;
            lim = l < lim ? l : lim;
            first = began(r) < first ? began(r) : first;
        }
        if (na > k->res->max_holders)
            k->res->max_holders = na;
        if (na <= lim)
            continue;
        int expl = loss_between(k->h, first, at);
        k->res->overlaps++;
        k->res->explained += expl;
        if (!expl && (*k->shown)++ < 20)
            fprintf(stderr,
                    "history: TOO MANY on '%s': %lld holders at %lld us (worker %d fence %lld "
                    "starting), at most %lld allowed\n",
                    k->v[i].name, (long long)na, (long long)at, k->v[i].worker,
                    (long long)k->v[i].fence, (long long)lim);
    }
}

/* The prefix maxima of fences: mx[p] is the index of the highest fence
 * among the first p records of order[] that `take` accepts, -1 if none. */
static void prefix_max(const hist_rec *v, const int64_t *order, int64_t n,
                       int (*take)(const hist_rec *), int64_t *mx) {
    mx[0] = -1;
    for (int64_t p = 0; p < n; p++) {
        const hist_rec *r = &v[order[p]];
        int64_t best = mx[p];
        if (r->fence > 0 && (take == NULL || take(r)) && (best < 0 || r->fence > v[best].fence))
            best = order[p];
        mx[p + 1] = best;
    }
}

/* How many of order[0..n) have key(v[order[p]]) < at (order sorted by key). */
static int64_t count_before(const hist_rec *v, const int64_t *order, int64_t n, int64_t at,
                            int by_end) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const hist_rec *r = &v[order[mid]];
        if ((by_end ? r->end_us : r->start_us) < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const hist_rec *g_sort_v;

static int by_fence(const void *a, const void *b) {
    const hist_rec *x = &g_sort_v[*(const int64_t *)a], *y = &g_sort_v[*(const int64_t *)b];
    if (x->fence != y->fence)
        return x->fence < y->fence ? -1 : 1;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static int by_end(const void *a, const void *b) {
    const hist_rec *x = &g_sort_v[*(const int64_t *)a], *y = &g_sort_v[*(const int64_t *)b];
    return x->end_us < y->end_us ? -1 : x->end_us > y->end_us;
}

/* Whether fence f is too low after the record j (index, -1: none): below
 * it for a reader, not above it for the others. */
static int too_low(const hist_rec *v, const hist_rec *i, int64_t j) {
    if (j < 0)
        return 0;
    return i->shared ? i->fence < v[j].fence : i->fence <= v[j].fence;
}

/* Fences (see history.h): issued once, and rising in grant order. Each
 * record is counted once, against the earliest rule it breaks. */
static void check_fences(kscan *k, int64_t *ix, int64_t *mx_req, int64_t *ends, int64_t *mx_all,
                         int64_t *mx_excl, unsigned char *dup, int64_t *twin) {
    const hist_rec *v = k->v;
    int64_t n = k->n;
    g_sort_v = v;
    for (int64_t i = 0; i < n; i++)
        ix[i] = ends[i] = i;
    memset(dup, 0, (size_t)n);
    qsort(ix, (size_t)n, sizeof *ix, by_fence);
    for (int64_t p = 1; p < n; p++) {
        const hist_rec *a = &v[ix[p - 1]], *b = &v[ix[p]];
        if (a->fence > 0 && a->fence == b->fence && !a->shared && !b->shared) {
            dup[ix[p]] = 1;
            twin[ix[p]] = ix[p - 1]; /* the record the same fence went to */
        }
    }
    for (int64_t i = 0; i < n; i++)
        ix[i] = i; /* v is by start already */
    prefix_max(v, ix, n, NULL, mx_req);
    qsort(ends, (size_t)n, sizeof *ends, by_end);
    prefix_max(v, ends, n, NULL, mx_all);
    prefix_max(v, ends, n, excl, mx_excl);
    for (int64_t i = 0; i < n; i++) {
        const hist_rec *r = &v[i];
        if (r->fence <= 0)
            continue;
        int64_t j = -1;
        if (r->req_us > 0) {
            int64_t jr = mx_req[count_before(v, ix, n, r->req_us, 0)];
            if (too_low(v, r, jr))
                j = jr;
        }
        if (j < 0) {
            int64_t p = count_before(v, ends, n, r->start_us, 1);
            int64_t je = excl(r) ? mx_all[p] : mx_excl[p];
            if (too_low(v, r, je))
                j = je;
        }
        if (j < 0 && !dup[i])
            continue;
        /* Explained by a data loss between the two grants (the counter
         * reset): r's and the higher fence's, or the same fence's. */
        int64_t o = j >= 0 ? j : twin[i];
        int64_t a = v[o].start_us < r->start_us ? began(&v[o]) : began(r);
        int64_t b = v[o].start_us < r->start_us ? r->start_us : v[o].start_us;
        int expl = loss_between(k->h, a, b);
        k->res->fence_regressions++;
        k->res->explained += expl;
        if (!expl && (*k->shown)++ < 20) {
            if (j < 0)
                fprintf(stderr, "history: FENCE on '%s': worker %d got %lld at %lld us, issued "
                                "before\n",
                        r->name, r->worker, (long long)r->fence, (long long)r->start_us);
            else
                fprintf(stderr,
                        "history: FENCE on '%s': worker %d got %lld at %lld us (asked at %lld); "
                        "worker %d held %lld from %lld to %lld us\n",
                        r->name, r->worker, (long long)r->fence, (long long)r->start_us,
                        (long long)r->req_us, v[j].worker, (long long)v[j].fence,
                        (long long)v[j].start_us, (long long)v[j].end_us);
        }
    }
}

/* The other kinds' rules for one name's records v[0..n) (by start). */
static void check_kinds(const hist *h, const hist_rec *v, int64_t n, hist_result *res,
                        int *shown) {
    int64_t *buf = malloc((size_t)(6 * n + 2) * sizeof *buf);
    unsigned char *dup = malloc((size_t)n + 1);
    if (buf == NULL || dup == NULL)
        TH_FAIL("hist_check: out of memory");
    kscan k = {h, v, n, res, shown};
    check_holders(&k, buf);
    check_fences(&k, buf, buf + n, buf + 2 * n + 1, buf + 3 * n + 1, buf + 4 * n + 2, dup,
                 buf + 5 * n + 2);
    free(buf);
    free(dup);
}

static int kind_group(const hist_rec *v, int64_t g, int64_t e) {
    for (int64_t i = g; i < e; i++)
        if (v[i].limit != 0)
            return 1;
    return 0;
}

/* The mutex rules for one name's records v[0..n) (by start): no two
 * intervals overlap, fences rise in start order. An overlap involving a
 * multi-lock's record marks that acquisition partial (partial[group]). */
static void check_mutex(const hist *h, const hist_rec *v, int64_t n, hist_result *res,
                        unsigned char *partial, int *shown_expl, int *shown_bad) {
#define SHOW(expl) ((expl) ? (*shown_expl)++ < SHOW_MAX : (*shown_bad)++ < 20)
    int64_t maxi = 0;                  /* record with the latest end so far */
    int64_t lastf = v[0].fence > 0 ? 0 : -1; /* previous record with a fence */
    for (int64_t i = 1; i < n; i++) {
        const hist_rec *r = &v[i], *p = &v[maxi];
        if (r->start_us < p->end_us) {
            int64_t ov = (r->end_us < p->end_us ? r->end_us : p->end_us) - r->start_us;
            int expl = loss_between(h, began(p), r->start_us);
            res->overlaps++;
            res->explained += expl;
            partial[r->group] = partial[p->group] = 1;
            if (ov > res->max_overlap_us)
                res->max_overlap_us = ov;
            if (SHOW(expl))
                fprintf(stderr,
                        "history: OVERLAP on '%s'%s: worker %d fence %lld [%lld, %lld] and "
                        "worker %d fence %lld [%lld, %lld] (us), %lld us together\n",
                        r->name, expl ? " (across a data loss)" : "", p->worker,
                        (long long)p->fence, (long long)p->start_us, (long long)p->end_us,
                        r->worker, (long long)r->fence, (long long)r->start_us,
                        (long long)r->end_us, (long long)ov);
        }
        if (r->fence > 0) {
            if (lastf >= 0 && r->fence <= v[lastf].fence) {
                int expl = loss_between(h, began(&v[lastf]), r->start_us);
                res->fence_regressions++;
                res->explained += expl;
                if (SHOW(expl))
                    fprintf(stderr,
                            "history: FENCE on '%s'%s: worker %d got %lld at %lld us after "
                            "worker %d got %lld at %lld us\n",
                            r->name, expl ? " (across a data loss)" : "", r->worker,
                            (long long)r->fence, (long long)r->start_us, v[lastf].worker,
                            (long long)v[lastf].fence, (long long)v[lastf].start_us);
            }
            lastf = i;
        }
        if (r->end_us > v[maxi].end_us)
            maxi = i;
    }
#undef SHOW
}

/* Multi-locks: every acquisition has a record for each name it asked for
 * (else it held part of its set); partial[] already marks those that
 * shared a name with another holder. */
static void check_groups(const hist *h, const hist_rec *v, int64_t m, hist_result *res,
                         unsigned char *partial, int *shown_bad) {
    int64_t ng = atomic_load(&h->ngroups);
    int64_t *count = calloc((size_t)ng + 1, sizeof *count);
    int *asked = calloc((size_t)ng + 1, sizeof *asked);
    int *worker = calloc((size_t)ng + 1, sizeof *worker);
    if (count == NULL || asked == NULL || worker == NULL)
        TH_FAIL("hist_check: out of memory");
    for (int64_t i = 0; i < m; i++) {
        int64_t gid = v[i].group;
        if (gid <= 0 || gid > ng)
            continue;
        count[gid]++;
        asked[gid] = v[i].nnames;
        worker[gid] = v[i].worker;
    }
    for (int64_t gid = 1; gid <= ng; gid++) {
        if (count[gid] == 0)
            continue; /* never recorded (a worker killed, or the log full) */
        res->multi++;
        if (count[gid] < asked[gid]) {
            res->missing_names++;
            partial[gid] = 1;
            if ((*shown_bad)++ < 20)
                fprintf(stderr, "history: PARTIAL multi-lock: worker %d held %lld of the %d "
                                "names it asked for\n",
                        worker[gid], (long long)count[gid], asked[gid]);
        }
        res->partial_multi += partial[gid];
    }
    free(count);
    free(asked);
    free(worker);
}

static void print_verdict(const hist_result *res, const char *label) {
    printf("history: %lld acquisitions, %lld faults injected, %lld violations [%s]\n",
           (long long)res->acquisitions, (long long)res->faults, (long long)res->violations,
           label);
    if (res->multi > 0)
        printf("history: %lld multi-lock acquisitions, %lld partial [%s]\n",
               (long long)res->multi, (long long)res->partial_multi, label);
    if (res->violations > 0)
        printf("history: %lld overlaps (longest %lld us), %lld fence regressions, %lld "
               "multi-locks missing a name; %lld of the violations straddle a data-loss event "
               "[%s]\n",
               (long long)res->overlaps, (long long)res->max_overlap_us,
               (long long)res->fence_regressions, (long long)res->missing_names,
               (long long)res->explained, label);
    if (res->incomplete > 0)
        printf("history: %lld records left incomplete by killed workers [%s]\n",
               (long long)res->incomplete, label);
}

int64_t hist_check(hist *h, const char *label, hist_result *out) {
    hist_result res;
    memset(&res, 0, sizeof res);
    atomic_thread_fence(memory_order_acquire);
    int64_t n = atomic_load(&h->n);
    int overflow = n > h->cap;
    if (overflow)
        n = h->cap;
    hist_rec *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    unsigned char *partial = calloc((size_t)atomic_load(&h->ngroups) + 1, 1);
    if (v == NULL || partial == NULL)
        TH_FAIL("hist_check: out of memory");
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (h->rec[i].done)
            v[m++] = h->rec[i];
        else
            res.incomplete++;
    }
    qsort(v, (size_t)m, sizeof *v, by_name_start);
    res.acquisitions = m;
    res.faults = atomic_load(&h->faults);

    int shown_expl = 0, shown_bad = 0;
    for (int64_t g = 0; g < m;) {
        int64_t e = g;
        while (e < m && strcmp(v[e].name, v[g].name) == 0)
            e++;
        if (kind_group(v, g, e))
            check_kinds(h, v + g, e - g, &res, &shown_bad);
        else
            check_mutex(h, v + g, e - g, &res, partial, &shown_expl, &shown_bad);
        g = e;
    }
    check_groups(h, v, m, &res, partial, &shown_bad);
    res.violations = res.overlaps + res.fence_regressions + res.missing_names;
    print_verdict(&res, label);
    if (overflow)
        fprintf(stderr, "history: log overflow: %lld records did not fit in %lld [%s]\n",
                (long long)(atomic_load(&h->n) - h->cap), (long long)h->cap, label);
    free(v);
    free(partial);
    if (out != NULL)
        *out = res;
    return res.violations - res.explained + (overflow ? 1 : 0);
}

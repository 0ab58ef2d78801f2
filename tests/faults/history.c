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

int hist_add_kind(hist *h, const char *name, int64_t fence, int64_t start_us, int64_t end_us,
                  int worker, int limit, int shared) {
    int64_t i = atomic_fetch_add(&h->n, 1);
    if (i >= h->cap)
        return -1;
    hist_rec *r = &h->rec[i];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->fence = fence;
    r->start_us = start_us;
    r->end_us = end_us;
    r->worker = worker;
    r->limit = limit;
    r->shared = shared;
    atomic_thread_fence(memory_order_release);
    r->done = 1;
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

/* A data-loss event that may lie between the starts a < b of two intervals:
 * the earlier began before the event was confirmed, the later after the
 * event could first have happened. */
static int loss_between(const hist *h, int64_t a, int64_t b) {
    int64_t n = atomic_load(&h->nloss);
    if (n > (int64_t)(sizeof h->loss_to / sizeof h->loss_to[0]))
        n = (int64_t)(sizeof h->loss_to / sizeof h->loss_to[0]);
    for (int64_t i = 0; i < n; i++)
        if (a < h->loss_to[i] && b > h->loss_from[i])
            return 1;
    return 0;
}

/* Fences of the other kinds, for a pair of records: every new fence is
 * issued once (readers share theirs); and when j ended before i began and
 * one of them excludes everyone (limit 1: a writer), i's fence is above
 * j's (a reader's: at least j's). Two semaphore permits are not ordered:
 * the later-believed one may have been granted first. */
static int fence_ok(const hist *h, const hist_rec *i, const hist_rec *j) {
    if (!i->shared && !j->shared && i->fence == j->fence)
        return 0;
    if (j->end_us > i->start_us || (i->limit > 1 && j->limit > 1) ||
        loss_between(h, j->start_us, i->start_us))
        return 1;
    return i->shared ? i->fence >= j->fence : i->fence > j->fence;
}

/* The other kinds' rules for one name's records v[g..e) (by start):
 * holders at each start instant within the smallest limit among them, and
 * fences as fence_ok says. */
static void check_kinds(const hist *h, const hist_rec *v, int64_t g, int64_t e,
                        hist_result *res, int *shown) {
    for (int64_t i = g; i < e; i++) {
        int64_t at = v[i].start_us, n = 0, lim = HIST_ANY;
        for (int64_t j = g; j < e && v[j].start_us <= at; j++) {
            if (v[j].end_us <= at)
                continue;
            n++;
            int64_t l = v[j].limit > 0 ? v[j].limit : 1;
            lim = l < lim ? l : lim;
        }
        if (n > res->max_holders)
            res->max_holders = n;
        if (n > lim) {
            res->overlaps++;
            if ((*shown)++ < 20)
                fprintf(stderr,
                        "history: TOO MANY on '%s': %lld holders at %lld us (worker %d fence "
                        "%lld starting), at most %lld allowed\n",
                        v[i].name, (long long)n, (long long)at, v[i].worker,
                        (long long)v[i].fence, (long long)lim);
        }
        for (int64_t j = g; j < e && v[i].fence > 0; j++)
            if (j != i && v[j].fence > 0 && !fence_ok(h, &v[i], &v[j])) {
                res->fence_regressions++;
                if ((*shown)++ < 20)
                    fprintf(stderr,
                            "history: FENCE on '%s': worker %d got %lld at %lld us; worker %d "
                            "held %lld from %lld to %lld us\n",
                            v[i].name, v[i].worker, (long long)v[i].fence,
                            (long long)v[i].start_us, v[j].worker, (long long)v[j].fence,
                            (long long)v[j].start_us, (long long)v[j].end_us);
            }
    }
}

static int kind_group(const hist_rec *v, int64_t g, int64_t e) {
    for (int64_t i = g; i < e; i++)
        if (v[i].limit != 0)
            return 1;
    return 0;
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
    if (v == NULL)
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
#define SHOW(expl) ((expl) ? shown_expl++ < SHOW_MAX : shown_bad++ < 20)
    for (int64_t g = 0; g < m;) {
        int64_t e = g;
        while (e < m && strcmp(v[e].name, v[g].name) == 0)
            e++;
        if (kind_group(v, g, e)) {
            check_kinds(h, v, g, e, &res, &shown_bad);
            g = e;
            continue;
        }
        int64_t maxi = g;  /* record with the latest end so far */
        int64_t lastf = -1; /* previous record with a fence */
        if (v[g].fence > 0)
            lastf = g;
        for (int64_t i = g + 1; i < e; i++) {
            const hist_rec *r = &v[i], *p = &v[maxi];
            if (r->start_us < p->end_us) {
                int64_t ov = (r->end_us < p->end_us ? r->end_us : p->end_us) - r->start_us;
                int expl = loss_between(h, p->start_us, r->start_us);
                res.overlaps++;
                res.explained += expl;
                if (ov > res.max_overlap_us)
                    res.max_overlap_us = ov;
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
                    int expl = loss_between(h, v[lastf].start_us, r->start_us);
                    res.fence_regressions++;
                    res.explained += expl;
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
        g = e;
    }
    res.violations = res.overlaps + res.fence_regressions;
    printf("history: %lld acquisitions, %lld faults injected, %lld violations [%s]\n",
           (long long)res.acquisitions, (long long)res.faults, (long long)res.violations,
           label);
    if (res.violations > 0)
        printf("history: %lld overlaps (longest %lld us), %lld fence regressions; %lld of the "
               "violations straddle a data-loss event [%s]\n",
               (long long)res.overlaps, (long long)res.max_overlap_us,
               (long long)res.fence_regressions, (long long)res.explained, label);
    if (res.incomplete > 0)
        printf("history: %lld records left incomplete by killed workers [%s]\n",
               (long long)res.incomplete, label);
    if (overflow)
        fprintf(stderr, "history: log overflow: %lld records did not fit in %lld [%s]\n",
                (long long)(atomic_load(&h->n) - h->cap), (long long)h->cap, label);
    free(v);
    if (out != NULL)
        *out = res;
    return res.violations - res.explained + (overflow ? 1 : 0);
}

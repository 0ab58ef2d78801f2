/* pipelined_mode.c - dlock-bench --mode pipelined: acquire+release pairs
 * through the non-blocking API. Each of `inflight` slots loops on its own
 * name (slot i uses name i % names): dlock_try_acquire_async, then from
 * its callback dlock_release_async, then the next acquire. All of them go
 * out pipelined on the engine's one connection per server, driven by the
 * poll adapter in this one thread. A slot whose name is busy (names <
 * inflight) counts a busy try and goes on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "dlock.h"
#include "dlock/adapters/poll.h"
#include "pipelined_mode.h"

typedef struct slot {
    dlock_client *c;
    char name[48];
    int64_t started_ns;
} slot;

typedef struct tally {
    long long pairs, busy, errors;
    int measuring, stopping;
    int64_t ttl_ms;
    bu_samples lat;
} tally;

static tally g;

static void start_pair(slot *s);

static void on_released(const dlock_result *r, void *ud) {
    slot *s = ud;
    dlock_lock_free(r->lock);
    if (r->status != DLOCK_OK) {
        g.errors++;
    } else if (g.measuring) {
        g.pairs++;
        bu_samples_add(&g.lat, bu_now_ns() - s->started_ns);
    }
    start_pair(s);
}

static void on_acquired(const dlock_result *r, void *ud) {
    slot *s = ud;
    if (r->status == DLOCK_OK) {
        if (dlock_release_async(r->lock, on_released, s, NULL) != DLOCK_OK) {
            g.errors++;
            dlock_lock_free(r->lock);
        }
        return;
    }
    if (r->status == DLOCK_EBUSY)
        g.busy += g.measuring;
    else
        g.errors++;
    start_pair(s);
}

static void start_pair(slot *s) {
    if (g.stopping)
        return;
    s->started_ns = bu_now_ns();
    if (dlock_try_acquire_async(s->c, s->name, g.ttl_ms, on_acquired, s, NULL) != DLOCK_OK)
        g.errors++;
}

static void run_for(dlock_client *c, double seconds) {
    int64_t end = bu_now_ns() + (int64_t)(seconds * 1e9);
    while (bu_now_ns() < end)
        dlock_poll_once(c, 10);
}

int run_pipelined_mode(const char *url, int inflight, int names, double seconds, double warmup,
                       int64_t ttl_ms, int no_fence) {
    dlock_options o;
    dlock_options_init(&o);
    o.fencing = !no_fence;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o);
    slot *slots = calloc((size_t)inflight, sizeof *slots);
    if (rc != DLOCK_OK || slots == NULL || bu_samples_init(&g.lat, 1 << 22) != 0) {
        fprintf(stderr, "dlock-bench: %s\n", c ? dlock_client_errstr(c) : "out of memory");
        dlock_client_free(c);
        free(slots);
        return 1;
    }
    g.ttl_ms = ttl_ms;
    for (int i = 0; i < inflight; i++) {
        slots[i].c = c;
        snprintf(slots[i].name, sizeof slots[i].name, "pipe-bench-%d", i % names);
        start_pair(&slots[i]);
    }
    run_for(c, warmup);
    g.measuring = 1;
    int64_t t0 = bu_now_ns();
    run_for(c, seconds);
    double el = (double)(bu_now_ns() - t0) / 1e9;
    g.measuring = 0;
    g.stopping = 1;
    dlock_poll_run(c, 5000); /* let the pairs in flight finish */
    bu_samples_sort(&g.lat);
    double pps = g.pairs / el;
    printf("pipelined: %d in flight on %d names, %.1f s: %.0f pairs/s, p50 %.1f us, p99 %.1f "
           "us, %lld busy tries, %lld errors\n",
           inflight, names, el, pps, bu_samples_quantile(&g.lat, 0.5) / 1e3,
           bu_samples_quantile(&g.lat, 0.99) / 1e3, g.busy, g.errors);
    printf("RESULT mode=pipelined pairs_per_s=%.1f p50_us=%.1f p99_us=%.1f inflight=%d names=%d "
           "busy=%lld errors=%lld\n",
           pps, bu_samples_quantile(&g.lat, 0.5) / 1e3, bu_samples_quantile(&g.lat, 0.99) / 1e3,
           inflight, names, g.busy, g.errors);
    bu_samples_free(&g.lat);
    free(slots);
    dlock_client_free(c);
    return g.errors == 0 ? 0 : 1;
}

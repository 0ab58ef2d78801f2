/* scenario.h - one scenario for every event-loop adapter: 1,000 waits on 100
 * names handed on by releases from the callbacks, then a kept-alive lock
 * released from a loop timer. The adapter test supplies run_loop (run
 * until the loop has nothing left) and a one-shot timer. */
#ifndef DLOCK_SCENARIO_H
#define DLOCK_SCENARIO_H

#include "etest.h"

#define SC_NAMES 100
#define SC_PER 10

typedef struct sc_waiter {
    int name, seq;
} sc_waiter;

static sc_waiter sc_w[SC_NAMES * SC_PER];
static int sc_next[SC_NAMES], sc_granted, sc_released;
static dlock_lock *sc_kept;
static int sc_kept_released;

static void sc_on_release(const dlock_result *r, void *ud) {
    (void)ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("release: %s (%s)", dlock_err_name(r->status), r->detail);
    sc_released++;
    dlock_lock_free(r->lock);
}

static void sc_on_grant(const dlock_result *r, void *ud) {
    sc_waiter *w = (sc_waiter *)ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("wait: %s (%s)", dlock_err_name(r->status), r->detail);
    if (w->seq != sc_next[w->name])
        TH_FAIL("name %d granted to %d, want %d", w->name, w->seq, sc_next[w->name]);
    sc_next[w->name]++;
    sc_granted++;
    dlock_release_async(r->lock, sc_on_release, NULL, NULL);
}

/* Phase 1: start the waits (the adapter's loop runs them). */
static void sc_start_waits(dlock_client *c) {
    char name[32];
    for (int seq = 0; seq < SC_PER; seq++)
        for (int n = 0; n < SC_NAMES; n++) {
            sc_waiter *w = &sc_w[seq * SC_NAMES + n];
            w->name = n;
            w->seq = seq;
            snprintf(name, sizeof name, "sc-%d", n);
            IT_RC(c, dlock_wait_async(c, name, 20000, 5000, sc_on_grant, w, NULL), DLOCK_OK);
        }
}

static void sc_check_waits(void) {
    TH_EQ_INT(sc_granted, SC_NAMES * SC_PER);
    TH_EQ_INT(sc_released, SC_NAMES * SC_PER);
}

static void sc_on_kept_released(const dlock_result *r, void *ud) {
    (void)ud;
    ET_STATUS(*r, DLOCK_OK);
    sc_kept_released = 1;
}

static void sc_on_kept(const dlock_result *r, void *ud) {
    (void)ud;
    if (r->status != DLOCK_OK)
        TH_FAIL("acquire: %s (%s)", dlock_err_name(r->status), r->detail);
    sc_kept = r->lock;
    if (dlock_keepalive_start(sc_kept, 150, NULL, NULL) != DLOCK_OK)
        TH_FAIL("keepalive_start");
}

/* Phase 2, from a loop timer 1.5 s in: the 500 ms lease is still held
 * (kept alive by the engine's timers), and is released. */
static void sc_timer_fired(void) {
    TH_CHECK(sc_kept != NULL);
    TH_CHECK(dlock_held(sc_kept));
    if (dlock_release_async(sc_kept, sc_on_kept_released, NULL, NULL) != DLOCK_OK)
        TH_FAIL("release_async");
}

#endif

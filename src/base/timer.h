/* timer.h - a min-heap of deadlines for the engine: many timers (one per
 * waiting operation and per kept-alive lock), O(log n) to arm, disarm or
 * pop. A timer is embedded in its owner; the heap only holds pointers. */
#ifndef DLOCK_TIMER_H
#define DLOCK_TIMER_H

#include <stdint.h>

#include "ctx.h"

typedef struct dl_timer {
    int64_t at_us; /* monotonic deadline */
    int idx;       /* position in the heap, -1 when not armed */
    void (*fire)(struct dl_timer *t); /* the owner's handler */
} dl_timer;

typedef struct dl_heap {
    dl_timer **v;
    int n, cap;
} dl_heap;

/* A new timer, not armed, calling fire when due (the owner embeds the
 * timer as its first member to find itself). */
static inline void dl_timer_init(dl_timer *t, void (*fire)(dl_timer *t)) {
    t->at_us = 0;
    t->idx = -1;
    t->fire = fire;
}
static inline int dl_timer_armed(const dl_timer *t) { return t->idx >= 0; }

/* Arm (or re-arm) t at at_us. 0, or -1 when out of memory. */
DL_INTERNAL int dl_heap_arm(dl_heap *h, dl_timer *t, int64_t at_us);
/* Disarm t if armed. */
DL_INTERNAL void dl_heap_disarm(dl_heap *h, dl_timer *t);
/* The earliest armed timer, or NULL. */
static inline dl_timer *dl_heap_top(const dl_heap *h) { return h->n > 0 ? h->v[0] : NULL; }
DL_INTERNAL void dl_heap_free(dl_heap *h);

#endif

/* etest.h - helpers for the engine tests: a result recorder for async
 * callbacks and a loop runner on the poll adapter. */
#ifndef DLOCK_ETEST_H
#define DLOCK_ETEST_H

#include <string.h>

#include "dlock.h"
#include "dlock/adapters/poll.h"
#include "itest.h"

typedef struct et_res {
    int done;
    int status;
    dlock_lock *lock;
    int64_t fence;
    dlock_holder holder;
    int has_holder;
    long long at_us; /* when the callback ran */
    char detail[256];
} et_res;

static inline void et_cb(const dlock_result *r, void *ud) {
    et_res *o = ud;
    if (o->done)
        TH_FAIL("callback ran twice for op %llu", (unsigned long long)r->op);
    o->done = 1;
    o->status = r->status;
    o->lock = r->status == DLOCK_OK ? r->lock : NULL;
    o->fence = r->fence;
    o->at_us = th_now_us();
    if (r->holder != NULL) {
        o->holder = *r->holder;
        o->has_holder = 1;
    }
    if (r->detail == NULL)
        TH_FAIL("detail is NULL");
    snprintf(o->detail, sizeof o->detail, "%s", r->detail);
}

/* Run the loop until *done or max_ms passes. */
static inline void et_run_until(dlock_client *c, const int *done, int max_ms) {
    long long end = th_now_us() + (long long)max_ms * 1000;
    while (!*done && th_now_us() < end)
        dlock_poll_once(c, 20);
}

#define ET_STATUS(res, want)                                                             \
    do {                                                                                 \
        if ((res).status != (want))                                                      \
            TH_FAIL("status %s, want %s (detail: %s)", dlock_err_name((res).status),     \
                    dlock_err_name(want), (res).detail);                                 \
    } while (0)

#endif

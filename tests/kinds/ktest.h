/* ktest.h - what the kinds' contention tests share: holding a lock for a
 * while as the history checker wants it seen, and recording a multi-lock's
 * names. */
#ifndef DLOCK_KTEST_H
#define DLOCK_KTEST_H

#include "dlock.h"
#include "harness.h"
#include "history.h"

/* Hold l for about ms milliseconds from start_us, looking at dlock_held
 * every millisecond. Returns the last instant it was seen held (start_us
 * if never looked at): the end of the believed-held interval. */
static inline long long kt_hold(const dlock_lock *l, long long start_us, int ms) {
    long long last = start_us;
    while (th_now_us() < start_us + (long long)ms * 1000) {
        long long t = th_now_us();
        if (!dlock_held(l))
            break;
        last = t;
        th_sleep_ms(1);
    }
    return last;
}

/* A multi-lock that asked for `asked` names, its acquire begun at req,
 * held over [start, last]: one mutex interval per name, as one group (the
 * checker then also finds a partial hold). */
static inline void kt_record_names(hist *h, const dlock_lock *l, int asked, long long req,
                                   long long start, long long last, int worker) {
    const char *names[DLOCK_MULTI_MAX];
    int64_t fences[DLOCK_MULTI_MAX];
    int n = dlock_lock_names(l);
    for (int i = 0; i < n && i < DLOCK_MULTI_MAX; i++)
        dlock_lock_name_at(l, i, &names[i], &fences[i]);
    hist_add_multi(h, asked, n, names, fences, req, start, last, worker);
}

#endif

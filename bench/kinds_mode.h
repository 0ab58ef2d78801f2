/* kinds_mode.h - dlock-bench for the other kinds of locks: the contended
 * modes semaphore, rwlock and multilock, and the pair that --mode
 * uncontended --kind runs. */
#ifndef DLOCK_BENCH_KINDS_H
#define DLOCK_BENCH_KINDS_H

#include <stddef.h>
#include <stdint.h>

#include "dlock.h"

/* What --kind names (uncontended), or what a contended mode runs. */
enum kb_kind { KB_MUTEX, KB_SEM, KB_RW_SHARED, KB_RW_EXCLUSIVE, KB_MULTI };

/* The kind called `name` ("mutex", "sem", "rw-shared", "rw-exclusive",
 * "multi"), or -1. */
int kb_kind_by_name(const char *name);
const char *kb_kind_name(int kind);

/* One uncontended pair of `kind` on `name`: try-acquire (a semaphore of
 * `permits`; a multi-lock of `set` names "{name}0".."{name}<set-1>", one
 * hash slot), then release. DLOCK_OK, or the failing call's status with
 * what failed in err. */
int kb_pair(dlock_client *c, int kind, const char *name, int permits, int set, int64_t ttl_ms,
            char *err, size_t errlen);

enum kb_mode { KB_SEMAPHORE, KB_RWLOCK, KB_MULTILOCK };

typedef struct kb_opts {
    int mode;               /* enum kb_mode */
    const char *url;
    const char *name;       /* the lock's name (multilock: names "{name}0".."{name}<n-1>") */
    int workers;            /* semaphore, multilock: worker processes */
    int permits;            /* semaphore */
    int readers, writers;   /* rwlock: worker processes of each role */
    int names, set;         /* multilock: names in the pool, names per multi-lock */
    double seconds;
    int64_t ttl_ms;
    int64_t hold_us;        /* a permit's, a reader's, a multi-lock's hold */
    int64_t writer_hold_us; /* rwlock: a writer's hold */
    int64_t wait_ms;        /* each wait's timeout: one that passes is a stall */
} kb_opts;

/* Run a contended mode: worker processes of their own clients wait, hold,
 * release, for o->seconds; print figures and a RESULT line. Returns the
 * exit status (1 when a run failed, or exclusion was violated). */
int run_kinds_mode(const kb_opts *o);

#endif

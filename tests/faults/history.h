/* history.h - a shared log of "believed held" intervals and its checker.
 *
 * Worker processes record, for every lock they believed they held, one
 * interval: from the moment dlock_acquire/dlock_wait returned DLOCK_OK until
 * the last moment the worker saw dlock_held() true (taken just before that
 * check), with the fence the acquire returned. The log lives in a shared
 * anonymous mapping made before the workers are forked, so every process
 * appends to the same array (one atomic counter hands out slots).
 *
 * The checker then verifies, per lock name:
 *   - no two believed-held intervals overlap (mutual exclusion as the
 *     holders saw it, on CLOCK_MONOTONIC, which is system-wide);
 *   - fences rise strictly in acquisition order (sorted by start).
 * Records of the other kinds (hist_add_kind, hist_add_rec) say how many
 * holders they admit beside themselves: a semaphore permit of N admits N
 * holders at once, an rw reader any number of readers, an rw writer (like
 * a mutex) one. For names with such records the checker verifies instead:
 *   - at no instant do more intervals hold the name than the smallest
 *     limit among them allows (never more than N permit holders, never a
 *     writer with anyone else);
 *   - every fence is issued once (readers share the last writer's);
 *   - fences rise in grant order. A grant is known to come after another
 *     when its acquire call began (req_us) after the other's returned, or,
 *     when one of the two excludes everyone (a writer), when its interval
 *     began after the other's ended. It then has a higher fence (a
 *     reader: at least as high, as readers share the fence of the last
 *     writer). Two semaphore permits held at once are ordered only by the
 *     first rule: the later-believed one may have been granted first.
 * A multi-lock (hist_add_multi) is recorded as one mutex interval per name
 * it holds, the records of one acquisition sharing a group id and the
 * number of names asked for. Besides the mutex rules on each name, the
 * checker then verifies that no multi-lock was partial: a holder that
 * lacks a record for one of the names it asked for, or whose interval on
 * one of its names overlaps another holder's, held only part of its set.
 * A test may declare "data-loss events" (a restart without persistence,
 * FLUSHALL): a violation between an interval that began before such an event
 * and one that began after it is the documented weakness of a single
 * non-persistent server and is counted apart as "explained". The event is
 * known only to lie within a window (between sending the command and its
 * reply), so "before" and "after" are taken against that window.
 *
 * All times are CLOCK_MONOTONIC microseconds (th_now_us()).
 */
#ifndef DLOCK_FAULTS_HISTORY_H
#define DLOCK_FAULTS_HISTORY_H

#include <stdint.h>

#define HIST_NAME_MAX 48

typedef struct hist_rec {
    char name[HIST_NAME_MAX];
    int64_t fence;
    int64_t req_us;   /* the acquire call began; 0: not recorded */
    int64_t start_us; /* acquire returned DLOCK_OK */
    int64_t end_us;   /* last time dlock_held() was seen true */
    int worker;
    int limit;  /* hist_add_kind: holders admitted at once; 0: a mutex (1) */
    int shared; /* hist_add_kind: an rw reader (its fence is not new) */
    int64_t group; /* hist_add_multi: one id per multi-lock acquisition; 0: none */
    int nnames;    /* hist_add_multi: the names that acquisition asked for */
    int done; /* written last: 1 once the record is complete */
} hist_rec;

typedef struct hist {
    int64_t cap;
    _Atomic int64_t n;      /* slots handed out (may exceed cap: overflow) */
    _Atomic int64_t faults; /* faults injected (counted by the test) */
    _Atomic int64_t nloss;  /* data-loss events recorded */
    _Atomic int64_t ngroups; /* multi-lock group ids handed out */
    int64_t loss_from[64];  /* each happened at some time in [from, to] */
    int64_t loss_to[64];
    hist_rec rec[];
} hist;

/* Counts the checker reports. */
typedef struct hist_result {
    int64_t acquisitions; /* complete records */
    int64_t faults;
    int64_t overlaps;         /* pairs of overlapping intervals */
    int64_t fence_regressions; /* fence not above the previous holder's */
    int64_t missing_names;    /* multi-lock records missing a name they asked for */
    int64_t violations;       /* overlaps + fence_regressions + missing_names */
    int64_t explained;        /* of those, straddling a data-loss event */
    int64_t incomplete;       /* slots never completed (worker killed) */
    int64_t max_overlap_us;   /* longest overlap seen */
    int64_t max_holders;      /* most intervals holding one name of the other kinds at once */
    int64_t multi;            /* multi-lock acquisitions (groups) */
    int64_t partial_multi;    /* of those, held partially (a name missing or shared) */
} hist_result;

/* Maps a shared log for cap records. Call before forking the workers.
 * Exits the test (TH_FAIL) if the mapping fails. */
hist *hist_new(int64_t cap);
void hist_free(hist *h);

/* Appends one interval. Safe from any process that shares the mapping.
 * Returns 0, or -1 when the log is full (the record is dropped and the
 * checker reports the overflow as a failure). */
int hist_add(hist *h, const char *name, int64_t fence, int64_t start_us, int64_t end_us,
             int worker);
/* The same for the other kinds: `limit` holders at once (a semaphore's
 * permits; HIST_ANY for an rw reader, 1 for an rw writer); `shared` marks
 * an rw reader. */
#define HIST_ANY 1000000000
int hist_add_kind(hist *h, const char *name, int64_t fence, int64_t start_us, int64_t end_us,
                  int worker, int limit, int shared);
/* Appends the record *r as it is (its done flag is set here). */
int hist_add_rec(hist *h, const hist_rec *r);
/* A multi-lock that asked for `asked` names and holds the n names[i] with
 * fences[i], over [start_us, end_us] (its acquire began at req_us, 0 if
 * not recorded): one mutex record per name, under a fresh group id.
 * Returns 0, or -1 when the log is full. */
int hist_add_multi(hist *h, int asked, int n, const char *const *names, const int64_t *fences,
                   int64_t req_us, int64_t start_us, int64_t end_us, int worker);
/* Counts one injected fault. */
void hist_fault(hist *h);
/* Records a data-loss event (restart without persistence, FLUSHALL) that
 * happened at some moment between from_us (taken just before the command or
 * signal that caused it) and now (just after it was confirmed). A violation
 * is "explained" when the earlier interval began before now and the later
 * one after from_us. */
void hist_loss(hist *h, int64_t from_us);

/* Checks the log. Prints one verdict line
 *   "history: N acquisitions, F faults injected, V violations [label]"
 * and, when there are any, the first few violations and the explained count.
 * Returns the number of violations NOT explained by a data-loss event (plus
 * one if the log overflowed). */
int64_t hist_check(hist *h, const char *label, hist_result *out);

#endif

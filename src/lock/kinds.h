/* kinds.h - the other kinds of locks as engine operations: leased
 * semaphores, read-write locks and multi-locks (their scripts and keys:
 * proto/kinds.lua.h).
 *
 *   klock.c        their handles: what a handle holds, its keys and scripts
 *   kind_async.c   acquiring one script's worth (a semaphore permit, an rw
 *                  lock, the names of one hash slot) as a state machine (its
 *                  clean-up by token and the steps it shares with the
 *                  mutex's: cleanup_async.c, acquire_shared.c, and the
 *                  Redlock rules: acquire_redlock.c)
 *   multi.c        multi-locks in parts: over several hash slots (Cluster),
 *                  one handle per slot taken in slot order; on Redlock, one
 *                  mutex per name taken in bytewise order; as one handle
 *   kind_inspect.c who holds a name, any kind (dlock_holders, dlock_list)
 * Release and extend of every kind are handle_async.c's; keepalive
 * (keepalive.c, keepalive_async.c) asks dl_lock_keys what to extend.
 *
 * A handle says its kind in l->kind (DL_LK_MUTEX, 0, for every handle the
 * mutex code makes), so the handle calls (release, extend, keepalive,
 * held, info) work on every kind. One server, Sentinel and Cluster; on a
 * Redlock set multi-locks are taken name by name as Redlock mutexes
 * (multi.c), rw locks on every master by the mutex's Redlock rules
 * (kind_async.c, acquire_redlock.c), and semaphores are refused with DLOCK_ENOTSUP
 * (docs/REDLOCK.md says why).
 */
#ifndef DLOCK_KINDS_H
#define DLOCK_KINDS_H

#include "engine.h"

enum { DL_LK_MUTEX = 0, DL_LK_SEM, DL_LK_RW, DL_LK_MULTI };

/* What an acquire asks for. */
typedef struct dl_kreq {
    int kind;                 /* DL_LK_SEM, DL_LK_RW or DL_LK_MULTI */
    int want;                 /* SEM: the permits (1..DLOCK_PERMITS_MAX); RW: 1 exclusive */
    int n;                    /* names: 1, or 1..DLOCK_MULTI_MAX for MULTI */
    const char *const *names; /* MULTI: sorted bytewise, no repeats */
    const size_t *lens;
} dl_kreq;

/* The scripts of one kind (DL_LK_SEM and DL_LK_RW share theirs). */
typedef struct dl_kscripts {
    enum dl_script_id acquire, release, extend, cancel;
} dl_kscripts;

/* klock.c */
DL_INTERNAL const dl_kscripts *dl_kind_scripts(int kind);
/* The request a handle of the other kinds was acquired with. */
DL_INTERNAL void dl_kreq_of(const dlock_lock *l, dl_kreq *r);
/* The keys of request r. DLOCK_OK, DLOCK_EINVAL or DLOCK_ENOMEM. */
DL_INTERNAL int dl_kreq_keys(const dl_proto *p, const dl_kreq *r, dl_keyset *ks);
/* The keys that extend and release handle l (any kind but a multi-lock
 * over several slots), and the scripts that do it. DLOCK_OK or
 * DLOCK_ENOMEM. */
DL_INTERNAL int dl_lock_keys(const dlock_lock *l, dl_keyset *ks, const dl_kscripts **sc);
/* A new handle for r (names copied), token and fences unset; held from
 * start_us for ttl_ms. NULL when out of memory. */
DL_INTERNAL dlock_lock *dl_klock_new(dlock_client *c, const dl_kreq *r, int64_t ttl_ms,
                                     int64_t start_us);
/* The "want" argument of the SEM scripts for r ("s<N>", "r0", "r1"). */
DL_INTERNAL size_t dl_kreq_want(const dl_kreq *r, char *buf, size_t n);

/* kind_async.c: acquire r (one script's worth) on engine e, mode DL_AM_*.
 * As dl_acquire_start: an error at once, or DLOCK_OK and cb later. */
DL_INTERNAL int dl_kacquire_start(dl_engine *e, const dl_kreq *r, int64_t ttl_ms, int mode,
                                  int64_t timeout_ms, int is_wait, dlock_done_fn cb, void *ud,
                                  uint64_t *id);

/* multi.c: any acquire of the other kinds: one script's worth goes to
 * dl_kacquire_start; a multi-lock whose names lie in several Cluster hash
 * slots is taken slot group by slot group, in slot order, and one on a
 * Redlock set name by name (Redlock mutexes), in bytewise order. */
DL_INTERNAL int dl_kind_start(dl_engine *e, const dl_kreq *r, int64_t ttl_ms, int mode,
                              int64_t timeout_ms, int is_wait, dlock_done_fn cb, void *ud,
                              uint64_t *id);
/* Release or extend a multi-lock over several slots: every part. */
DL_INTERNAL int dl_parts_start(dl_engine *e, dlock_lock *l, int extend, int64_t ttl_ms,
                               dlock_done_fn cb, void *ud, uint64_t *id);

/* kind_inspect.c: who holds `name` (len bytes, checked), any kind, for
 * dlock_list: *e's kind, holders (how many) and holder (the first; its
 * waiters the name's). A free name leaves e unchanged (holders 0). */
DL_INTERNAL int dl_holders_entry(dlock_client *c, const char *name, size_t len,
                                 dlock_list_entry *e);

#endif

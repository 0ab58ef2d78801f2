/* faults.h - what the fault-injection tests share: a lock worker process
 * (of any kind: mutex, semaphore, read-write lock, multi-lock) that records
 * its believed-held intervals in the history log and commits to a fenced
 * "storage", per-status counters in shared memory, the faults themselves
 * (ft_inject), and small helpers (memory use, timing bounds, a storage-side
 * fence check).
 *
 * The storage is any Redis server (normally a second one that no fault
 * touches). A commit runs one Lua script that accepts the write only if its
 * fence is strictly greater than the last accepted fence for that lock name:
 * what a real storage system must do with dlock's fencing tokens, and what
 * makes a paused or cut-off holder's late write harmless.
 */
#ifndef DLOCK_FAULTS_H
#define DLOCK_FAULTS_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "dlock.h"
#include "harness.h"
#include "history.h"
#include "itest.h"

#define FT_NSTATUS 16 /* -DLOCK_ENOTSUP + a little room */

/* Counters shared by every worker (in a shared mapping). */
typedef struct ft_stats {
    _Atomic int64_t acquire[FT_NSTATUS]; /* by -status */
    _Atomic int64_t release[FT_NSTATUS];
    _Atomic int64_t extend[FT_NSTATUS];
    _Atomic int64_t lost;       /* held turned false inside the critical section */
    _Atomic int64_t commit_ok;  /* storage accepted the write */
    _Atomic int64_t commit_rej; /* storage rejected it: a newer fence was there */
    _Atomic int64_t commit_err; /* storage unreachable (should not happen) */
    _Atomic int64_t max_call_us; /* slowest single dlock call */
    _Atomic int sample_set[FT_NSTATUS];
    char sample[FT_NSTATUS][200]; /* first detail string seen per acquire status */
} ft_stats;

/* What a worker takes (ft_cfg.kind). */
enum ft_kind {
    FT_MUTEX, /* dlock_wait */
    FT_SEM,   /* dlock_sem_wait of cfg.permits */
    FT_RW,    /* dlock_rw_wait: exclusive in cfg.writer_pct % of the iterations */
    FT_MULTI  /* dlock_multi_wait of 2..multi_max of the nnames names; a quarter of
                 the iterations take one of them as a plain mutex (dlock_wait) */
};

typedef struct ft_cfg {
    char url[1024];     /* where the locks live (maybe through a proxy) */
    char name[HIST_NAME_MAX - 8];
    int nnames;         /* >1: each iteration picks name-0..name-(nnames-1) */
    int kind;           /* enum ft_kind */
    int permits;        /* FT_SEM: the semaphore's permits */
    int writer_pct;     /* FT_RW: share of exclusive acquisitions, 0..100 */
    int multi_max;      /* FT_MULTI: most names per multi-lock (2..8, at most nnames) */
    int ttl_ms;
    int wait_ms;        /* dlock_wait timeout */
    int hold_steps;     /* critical section: steps of step_us, held checked each */
    int step_us;
    int random_hold;    /* 1: each iteration holds for 1..hold_steps steps */
    int extend;         /* call dlock_extend(ttl) halfway through */
    int connect_ms, command_ms;
    dlock_waiting waiting;
    int store_port;     /* storage server for the fenced commit; 0: none */
    int64_t end_us;     /* workers stop starting new iterations at this time */
    hist *h;
    ft_stats *st;
    _Atomic int go;     /* workers wait for this before they start */
} ft_cfg;

/* Shared mappings (made before forking). */
ft_stats *ft_stats_new(void);
ft_cfg *ft_cfg_new(void);

/* Starts worker process idx. It waits until ft_go(cfg), then reads cfg
 * (url, end_us, ...) and works until cfg->end_us. Fork the workers before
 * the test starts any thread (a fault proxy, a keepalive): a child forked
 * while another thread holds an allocator lock can hang in malloc (glibc is
 * fork-safe; the sanitizer allocator of GCC 12 is not). Returns the pid. */
pid_t ft_spawn_worker(ft_cfg *cfg, int idx);
/* Lets the workers start (set url and end_us first). */
void ft_go(ft_cfg *cfg);
/* Waits for every pid for at most timeout_ms in all; kills stragglers.
 * Returns the number of workers that failed or timed out. */
int ft_join(const pid_t *pids, int n, int timeout_ms);

/* Prints one line of per-status counts for the acquire/release/extend calls
 * and the storage commits. */
void ft_stats_print(const char *label, const ft_stats *st);
/* Sum of the acquire counts of every status. */
int64_t ft_stats_total(const _Atomic int64_t *by_status);

/* Fenced commit on the storage server: 1 accepted, 0 rejected (a fence at
 * least as high was already accepted), -1 on an I/O error. */
int ft_store_commit(redisContext *store, const char *name, int64_t fence);
/* The same for a multi-lock's n names (at most 8) at once: accepted only
 * if every fence is above the last accepted for its name. */
int ft_store_commit_multi(redisContext *store, int n, const char *const *names,
                          const int64_t *fences);

/* The faults a test can inject (ft_inject). */
enum ft_fault {
    FT_LATENCY,      /* proxy: every chunk delayed (param 20..600 ms) */
    FT_STALL,        /* proxy: nothing forwarded, then all of it */
    FT_DROP,         /* proxy: every connection closed (FIN) */
    FT_RESET,        /* proxy: every connection reset (RST) */
    FT_BLACKHOLE,    /* proxy: data read and dropped, never answered */
    FT_DRIP,         /* proxy: replies one byte at a time */
    FT_PAUSE,        /* server: SIGSTOP, then SIGCONT */
    FT_RESTART,      /* server: SIGKILL, then restarted */
    FT_SCRIPT_FLUSH, /* server: SCRIPT FLUSH (NOSCRIPT next) */
    FT_CLIENT_KILL,  /* server: CLIENT KILL TYPE normal */
    FT_WORKER_STOP,  /* a random worker: SIGSTOP past its ttl, then SIGCONT */
    FT_NFAULTS
};

/* Where ft_inject acts: the lock server, the proxy in front of it, the
 * workers. */
typedef struct ft_env {
    th_server *server;
    th_proxy *proxy;
    const pid_t *pids;
    int nworkers;
    int ttl_ms;
    int lossy; /* 1: the server keeps nothing across a restart (no persistence) */
    hist *h;
} ft_env;

/* The fault's name ("latency", "server-pause", ...). */
const char *ft_fault_name(enum ft_fault f);
/* Injects fault f for about dur_ms (the one-shot faults at once), counts
 * it in the history and puts the proxy back to passing. A restart of a
 * lossy server is recorded as a data-loss event. Ends the
 * test (TH_ checks) if the server cannot be paused or restarted. */
void ft_inject(const ft_env *env, enum ft_fault f, int dur_ms);

/* Memory of this process in kB: resident now, and the peak (VmHWM). */
long ft_rss_kb(void);
long ft_peak_rss_kb(void);

/* A random integer in [lo, hi] (per-process xorshift, seeded from getpid). */
int ft_rand(int lo, int hi);

/* Whether the lock key of `name` (default prefix) exists on s: 1, 0, -1. */
int ft_lock_exists(th_server *s, const char *name);

/* Waits until the key disappears or timeout_ms passes; returns ms waited,
 * or -1 on timeout. */
int ft_wait_gone(th_server *s, const char *name, int timeout_ms);

/* Elapsed milliseconds since t0_us (th_now_us()). */
static inline long ft_ms_since(long long t0_us) { return (long)((th_now_us() - t0_us) / 1000); }

#endif

/* bench.h - what the files of dlock-bench share: the modes, the parsed
 * options, a run's figures, and the reporting helpers (report.c). Private
 * to the bench program (dlock_bench.c, options.c, report.c, raw_mode.c,
 * contended_mode.c); the other modes have their own headers. */
#ifndef DLOCK_BENCH_H
#define DLOCK_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "bench_util.h"
#include "dlock.h"

#define EXIT_USAGE 2
#define WAIT_TIMEOUT_MS 30000 /* dlock_wait timeout of a contended worker */
#define SAMPLE_CAP ((size_t)8 << 20)
#define LOG_BUDGET ((int64_t)8 << 20) /* log entries over all workers */

enum mode { M_NONE, M_UNCONTENDED, M_CONTENDED, M_RAW, M_KEEPALIVE, M_PIPELINED, M_SEMAPHORE,
            M_RWLOCK, M_MULTILOCK };

typedef struct bench_opts {
    enum mode mode;
    int workers;
    double seconds;
    double warmup;
    const char *url;
    char url_buf[600];
    const char *host;
    int port;
    int64_t ttl_ms;
    int poll;
    int no_fence;
    int locks; /* keepalive mode */
    int inflight, names; /* pipelined mode; multilock: names in the pool */
    int kind;            /* uncontended: enum kb_kind */
    int permits, readers, writers, set;
    int64_t writer_hold_us, wait_ms;
    const char *name;
    int64_t hold_us;
    int raw_dlock;
} bench_opts;

/* A run's figures, for the RESULT line. */
typedef struct result {
    double pairs_per_s, p50_us, p99_us;
    double acq_per_s, handoffs_per_s, min_share, wait_p99_us;
    double cmds_per_acq;
    long long violations;
} result;

/* options.c */
const char *mode_name(enum mode m);
/* Parse the command line into *o: 0, or the exit status (usage printed). */
int parse_args(int argc, char **argv, bench_opts *o);
/* Print "dlock-bench: <msg>" and usage hint; return EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "dlock-bench: <msg>"; return 1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* report.c: commands per acquisition, from INFO commandstats */
#define MAX_INNER 96
/* The command names a set of Lua scripts calls. */
typedef struct inner_set {
    int n;
    char name[MAX_INNER][32];
} inner_set;
void inner_scan(inner_set *s, const char *src);
/* Every script of the library. */
void inner_library(inner_set *s);

typedef struct stats_conns {
    const bu_target *t;
    int n;
    redisContext *ctx[BU_MAX_SERVERS];
    int ok;
} stats_conns;
void stats_open(stats_conns *sc, const bu_target *t);
void stats_close(stats_conns *sc);
/* Sum of every reachable server's commandstats. Returns the servers read. */
int stats_read(stats_conns *sc, bu_cmdstats *out);

/* What the bench itself sent of commands that scripts also call (GET, SET). */
typedef struct own_calls {
    long long get, set;
} own_calls;
double cmds_report(const bu_cmdstats *b, const bu_cmdstats *a, const inner_set *inner,
                   const own_calls *own, long long acq, const char *unit, double *lib_only);
/* The server that holds `key` (in a cluster, the node of its slot). */
int locate_server(const bu_target *t, const char *key, bu_server *out, char *err,
                  size_t errlen);
/* Print the pairs/s and latency lines and fill res's pair figures. */
void print_latency(const char *what, uint64_t n, double secs, const bu_samples *s,
                   result *res);

/* dlock_bench.c: a client of the options' URL, waiting and fencing, that
 * answered PING; 0, or 1 with the failure printed. */
int client_make(const bench_opts *o, dlock_client **out);

/* the modes of these files */
int run_raw(const bench_opts *o, const bu_target *t, result *res);
int run_contended(const bench_opts *o, const bu_target *t, result *res);

#endif

/* bench_util.h - helpers for dlock-bench: clocks, latency samples, the
 * servers a URL names, plain hiredis connections and INFO commandstats.
 *
 * Nothing here touches the library's connections: the bench measures the
 * library from the outside (what the server saw, how long calls took).
 */
#ifndef DLOCK_BENCH_UTIL_H
#define DLOCK_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "url.h"

/* ---- clocks ---- */

int64_t bu_now_ns(void); /* CLOCK_MONOTONIC, shared by forked processes */
void bu_sleep_until_ns(int64_t t_ns);
void bu_sleep_ns(int64_t ns);

/* ---- latency samples (bounded: reservoir sampling past the cap) ---- */

typedef struct bu_samples {
    uint32_t *v;   /* nanoseconds, clamped to UINT32_MAX (4.29 s) */
    size_t n, cap; /* stored, capacity */
    uint64_t seen; /* offered */
    uint64_t rng;
} bu_samples;

int bu_samples_init(bu_samples *s, size_t cap); /* 0 or -1 (out of memory) */
void bu_samples_add(bu_samples *s, int64_t ns);
void bu_samples_free(bu_samples *s);
/* Sort the stored samples (in place) and return the p-quantile (0..1) in
 * nanoseconds by nearest rank; 0 when empty. Call bu_samples_sort first. */
void bu_samples_sort(bu_samples *s);
double bu_samples_quantile(const bu_samples *s, double p);

/* ---- where the commands of a URL land ---- */

#define BU_MAX_SERVERS 64

typedef struct bu_server {
    char host[DL_URL_HOST_MAX];
    int port;
    char path[108]; /* unix socket when non-empty */
} bu_server;

typedef struct bu_target {
    dl_url url;
    int nservers; /* masters that serve the locks (not sentinels) */
    bu_server servers[BU_MAX_SERVERS];
} bu_target;

/* Parse `url` and find the servers that hold the locks: the host(s) of a
 * single or Redlock URL (rediss:// too), the master a sentinel names, or
 * every master of a cluster (CLUSTER SLOTS on the first seed that
 * answers; not over TLS). Returns 0, or -1 with a message in err. */
int bu_target_resolve(bu_target *t, const char *url, char *err, size_t errlen);

/* Blocking hiredis connection to one server with AUTH and SELECT as the URL
 * says (sentinels get no SELECT). timeout_ms bounds connect and each reply.
 * Returns NULL with a message in err. */
redisContext *bu_connect(const bu_target *t, const bu_server *s, int timeout_ms, int select_db,
                         char *err, size_t errlen);

/* "host:port" or the socket path. */
const char *bu_server_addr(const bu_server *s, char *buf, size_t len);

/* ---- INFO commandstats ---- */

#define BU_MAX_CMDSTATS 512

typedef struct bu_cmdstat {
    char name[64]; /* lower case, "config|resetstat" for subcommands */
    long long calls;
} bu_cmdstat;

typedef struct bu_cmdstats {
    int n;
    bu_cmdstat e[BU_MAX_CMDSTATS];
} bu_cmdstats;

/* Add the commandstats of one server into *acc (calls summed by name).
 * Returns 0, or -1 with a message in err. */
int bu_cmdstats_add(redisContext *ctx, bu_cmdstats *acc, char *err, size_t errlen);
/* Calls of `name` in *s, 0 when absent. */
long long bu_cmdstats_get(const bu_cmdstats *s, const char *name);

#endif

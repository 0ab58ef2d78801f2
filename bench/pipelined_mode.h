/* pipelined_mode.h - dlock-bench --mode pipelined. */
#ifndef DLOCK_BENCH_PIPELINED_H
#define DLOCK_BENCH_PIPELINED_H

#include <stdint.h>

/* Keep `inflight` acquire+release pairs in flight on `names` distinct
 * names through the non-blocking API (one client, one thread, one
 * connection per server) for `seconds` after `warmup`; print figures and
 * a RESULT line. Returns the process exit status. */
int run_pipelined_mode(const char *url, int inflight, int names, double seconds, double warmup,
                       int64_t ttl_ms, int no_fence);

#endif

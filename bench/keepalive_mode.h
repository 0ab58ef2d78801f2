/* keepalive_mode.h - dlock-bench --mode keepalive. */
#ifndef DLOCK_BENCH_KEEPALIVE_H
#define DLOCK_BENCH_KEEPALIVE_H

#include <stdint.h>

#include "bench_util.h"

/* Keep nlocks locks alive for `seconds` on one client; print figures and a
 * RESULT line. Returns the process exit status (0: all held, none lost). */
int run_keepalive_mode(const char *url, const bu_target *t, int nlocks, double seconds,
                       int64_t ttl_ms);

#endif

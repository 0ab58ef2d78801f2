/* keywatch.h - what a lock's keys looked like on each data server, sampled
 * every 200 ms by a thread of the test process while a fault runs, and
 * printed when a round goes wrong (a worker gave up): the holder, its TTL
 * and the wait queue, per server and role, so a post-mortem need not guess.
 *
 *     kw *w = kw_start(ports, 2, "*long*");
 *     ... inject the fault ...
 *     kw_stop(w);
 *     if (bad) kw_print(w, t_fault_us);
 *     kw_free(w);
 */
#ifndef DLOCK_KEYWATCH_H
#define DLOCK_KEYWATCH_H

#include <stdint.h>

typedef struct kw kw;

/* Starts sampling keys matching `match` on the servers at 127.0.0.1:ports
 * (at most 8). NULL if no thread could be started. */
kw *kw_start(const int *ports, int n, const char *match);
/* Stops the sampling (waits for the thread). */
void kw_stop(kw *w);
/* Prints the samples to stderr, times in seconds from t0_us (th_now_us). */
void kw_print(const kw *w, int64_t t0_us);
void kw_free(kw *w);

#endif

/* backoff.h - retry delays and lease validity arithmetic. Pure. */
#ifndef DLOCK_BACKOFF_H
#define DLOCK_BACKOFF_H

#include <stdint.h>

/* A small PRNG (xorshift64*) for jitter: not for tokens. State must be
 * non-zero; seed it from dl_random_bytes. */
uint64_t dl_rand_next(uint64_t *state);

/* Delay before retry number `attempt` (1 = first retry): base * 2^(attempt-1),
 * capped at max_ms, then moved by a uniform random +-jitter_pct percent
 * (never below 1 ms or above max_ms + its jitter). */
int64_t dl_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int jitter_pct,
                      uint64_t *rng);

/* Drift allowance for a lease: ttl * factor + 2 ms (rounded up). */
int64_t dl_drift_ms(int64_t ttl_ms, double factor);

/* Monotonic instant (us) up to which a lease of ttl_ms whose request was sent
 * at start_us is surely still valid: start + ttl - drift. */
int64_t dl_valid_until_us(int64_t start_us, int64_t ttl_ms, double drift_factor);

#endif

/* backoff.c - exponential backoff with jitter, validity arithmetic. */
#include "backoff.h"

uint64_t dl_rand_next(uint64_t *state) {
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t dl_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int jitter_pct,
                      uint64_t *rng) {
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (jitter_pct > 0) {
        if (jitter_pct > 100)
            jitter_pct = 100;
        int64_t span = d * jitter_pct / 100;
        if (span > 0) {
            int64_t r = (int64_t)(dl_rand_next(rng) % (uint64_t)(2 * span + 1));
            d += r - span;
        }
    }
    return d < 1 ? 1 : d;
}

int64_t dl_drift_ms(int64_t ttl_ms, double factor) {
    if (factor < 0)
        factor = 0;
    double d = (double)ttl_ms * factor;
    int64_t di = (int64_t)d;
    if ((double)di < d)
        di++;
    return di + 2;
}

int64_t dl_valid_until_us(int64_t start_us, int64_t ttl_ms, double drift_factor) {
    return start_us + (ttl_ms - dl_drift_ms(ttl_ms, drift_factor)) * 1000;
}

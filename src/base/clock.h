/* clock.h - the two clocks: monotonic for validity, wall only for reporting. */
#ifndef DLOCK_CLOCK_H
#define DLOCK_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds. */
int64_t dl_mono_us(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t dl_wall_ms(void);
/* Sleep until the monotonic time `until_us` (restarts after signals). */
void dl_sleep_until_us(int64_t until_us);

#endif

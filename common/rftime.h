/* rftime.h - clocks. Monotonic time for every timeout and rate; wall time only for humans. */
#ifndef RF_TIME_H
#define RF_TIME_H

#include <stddef.h>
#include <stdint.h>

uint64_t rf_now_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
uint64_t rf_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */
int64_t rf_wall_ms(void); /* CLOCK_REALTIME, milliseconds since the epoch */

/* Formats wall time (ms since epoch) as RFC 3339 UTC with milliseconds: "2026-11-27T10:00:00.123Z".
 * buf must hold at least 25 bytes. Returns buf. */
char *rf_wall_format(int64_t wall_ms, char *buf, size_t size);

/* Sleeps, restarting after signals. */
void rf_sleep_ms(uint64_t ms);

#endif

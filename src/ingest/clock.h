/* clock.h: the ingest server's two clocks (internal). Wall time stamps what is stored and
 * checks client times; monotonic time measures latency, timeouts and rate-limit refills. */
#ifndef LW_INGEST_CLOCK_H
#define LW_INGEST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t lw_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t lw_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif

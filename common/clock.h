/*
 * Monotonic time for measurement and timeouts only. Application code never
 * reads a clock: its time comes from the request context (docs/DETERMINISM.md).
 */
#ifndef EVR_COMMON_CLOCK_H
#define EVR_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t evr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif

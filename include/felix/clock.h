/*
 * The FEX cycle counter and its frequency on this host.
 *
 * FEX times its work in ticks of a cycle counter: CNTVCT_EL0 on ARM64 (its
 * frequency in CNTFRQ_EL0), the TSC (rdtscp) on x86-64. Converting ticks to
 * seconds needs that frequency; libfelix never uses a placeholder such as 1.
 * Thread safe.
 */
#ifndef FELIX_CLOCK_H
#define FELIX_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Where a frequency came from. */
enum felix_clock_source {
    FELIX_CLOCK_NONE = 0,
    FELIX_CLOCK_CNTFRQ = 1,     /**< ARM64 CNTFRQ_EL0 register */
    FELIX_CLOCK_CPUID_15 = 2,   /**< x86 CPUID leaf 0x15 (crystal ratio) */
    FELIX_CLOCK_CPUID_16 = 3,   /**< x86 CPUID leaf 0x16 (base frequency) */
    FELIX_CLOCK_MEASURED = 4,   /**< measured against CLOCK_MONOTONIC_RAW */
    FELIX_CLOCK_OVERRIDE = 5,   /**< given by the caller */
    FELIX_CLOCK_RECORDED = 6    /**< read from a recording's header */
};

/**
 * The cycle-counter frequency in Hz, and where it came from (out_source may
 * be NULL). The first call may measure (at most 20 ms); the result is cached
 * for the process. The environment variable FELIX_CLOCK_HZ, when set to a
 * positive integer, overrides (source FELIX_CLOCK_OVERRIDE).
 * Errors: FELIX_ENOTSUP (no usable counter on this architecture).
 */
int felix_clock_frequency(uint64_t *out_hz, int *out_source);

/**
 * Measure the counter against CLOCK_MONOTONIC_RAW for about ms milliseconds
 * (1..1000). Errors: FELIX_EINVAL, FELIX_ENOTSUP.
 */
int felix_clock_measure(uint64_t *out_hz, unsigned ms);

/** Read the counter the way FEX does (0 where there is none). */
uint64_t felix_clock_ticks(void);

/** Name of a source ("CNTFRQ_EL0", "cpuid-0x15", "measured", ...). */
const char *felix_clock_source_name(int source);

#ifdef __cplusplus
}
#endif
#endif

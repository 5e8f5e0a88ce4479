/*
 * The cycle counter FEX times its work with, and its frequency.
 * ARM64: CNTVCT_EL0 (read after an isb), frequency in CNTFRQ_EL0.
 * x86-64: the TSC; frequency from CPUID 0x15 (crystal ratio) or 0x16 (base
 * MHz) when they give it, else measured against CLOCK_MONOTONIC_RAW.
 */
#include "felix/felix.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

uint64_t felix_clock_ticks(void)
{
#if defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
#elif defined(__x86_64__) || defined(__i386__)
    unsigned aux;
    return __rdtscp(&aux);
#else
    return 0;
#endif
}

const char *felix_clock_source_name(int source)
{
    switch (source) {
    case FELIX_CLOCK_CNTFRQ: return "CNTFRQ_EL0";
    case FELIX_CLOCK_CPUID_15: return "cpuid-0x15";
    case FELIX_CLOCK_CPUID_16: return "cpuid-0x16";
    case FELIX_CLOCK_MEASURED: return "measured";
    case FELIX_CLOCK_OVERRIDE: return "override";
    case FELIX_CLOCK_RECORDED: return "recorded";
    default: return "none";
    }
}

/* A counter reading and the CLOCK_MONOTONIC_RAW time it was taken at: the
 * tightest of five brackets between two clock reads, so a preemption does
 * not skew it. */
static void bracket(int64_t *t, uint64_t *c)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        int64_t a = fx_now_ns(CLOCK_MONOTONIC_RAW);
        uint64_t v = felix_clock_ticks();
        int64_t b = fx_now_ns(CLOCK_MONOTONIC_RAW);
        if (b - a < best) {
            best = b - a;
            *t = a + (b - a) / 2;
            *c = v;
        }
    }
}

int felix_clock_measure(uint64_t *out_hz, unsigned ms)
{
    if (!out_hz || ms == 0 || ms > 1000)
        return fx_fail(FELIX_EINVAL, "felix_clock_measure: %u ms is outside 1..1000", ms);
    if (felix_clock_ticks() == 0)
        return fx_fail(FELIX_ENOTSUP, "this architecture has no cycle counter libfelix can read");
    int64_t t0, t1;
    uint64_t c0, c1;
    bracket(&t0, &c0);
    int64_t end = t0 + (int64_t)ms * 1000000 - 100000;
    struct timespec nap = {0, (long)ms * 1000000 - 500000};
    if (nap.tv_nsec > 0)
        nanosleep(&nap, NULL);
    while (fx_now_ns(CLOCK_MONOTONIC_RAW) < end)
        ;
    bracket(&t1, &c1);
    if (t1 <= t0 || c1 <= c0)
        return fx_fail(FELIX_ENOTSUP, "the cycle counter does not advance");
    *out_hz = (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0) + 0.5);
    return 0;
}

static int detect(uint64_t *hz, int *src)
{
#if defined(__aarch64__)
    uint64_t f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    if (f) {
        *hz = f;
        *src = FELIX_CLOCK_CNTFRQ;
        return 0;
    }
    return fx_fail(FELIX_ENOTSUP, "CNTFRQ_EL0 reads 0 on this system");
#elif defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    unsigned max = __get_cpuid_max(0, NULL);
    if (max >= 0x15) {
        __cpuid(0x15, a, b, c, d);
        if (a && b && c) {
            *hz = (uint64_t)c * b / a;
            *src = FELIX_CLOCK_CPUID_15;
            return 0;
        }
    }
    if (max >= 0x16) {
        __cpuid(0x16, a, b, c, d);
        if (a & 0xffff) {
            *hz = (uint64_t)(a & 0xffff) * 1000000;
            *src = FELIX_CLOCK_CPUID_16;
            return 0;
        }
    }
    (void)d;
    int rc = felix_clock_measure(hz, 20);
    if (rc == 0)
        *src = FELIX_CLOCK_MEASURED;
    return rc;
#else
    (void)hz;
    (void)src;
    return fx_fail(FELIX_ENOTSUP, "this architecture has no cycle counter libfelix can read");
#endif
}

int felix_clock_frequency(uint64_t *out_hz, int *out_source)
{
    static uint64_t cached_hz; /* written once; racing first calls agree */
    static int cached_src;
    if (!out_hz)
        return fx_fail(FELIX_EINVAL, "felix_clock_frequency: out_hz is NULL");
    const char *env = getenv("FELIX_CLOCK_HZ");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v > 0) {
            *out_hz = v;
            if (out_source)
                *out_source = FELIX_CLOCK_OVERRIDE;
            return 0;
        }
    }
    uint64_t hz = __atomic_load_n(&cached_hz, __ATOMIC_ACQUIRE); /* before src */
    int src = __atomic_load_n(&cached_src, __ATOMIC_RELAXED);
    if (!hz) {
        int rc = detect(&hz, &src);
        if (rc < 0)
            return rc;
        __atomic_store_n(&cached_src, src, __ATOMIC_RELAXED);
        __atomic_store_n(&cached_hz, hz, __ATOMIC_RELEASE);
    }
    *out_hz = hz;
    if (out_source)
        *out_source = src;
    return 0;
}

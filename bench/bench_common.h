#ifndef FELIX_BENCH_COMMON_H
#define FELIX_BENCH_COMMON_H
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sort v and return the q-quantile (0..1). */
static inline int64_t bench_quantile(int64_t *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, bench_cmp_i64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}
#endif

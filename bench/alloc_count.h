/* Count heap allocations made by the process (the benchmark and libfelix)
 * by interposing malloc and friends. Only in benchmarks built without
 * sanitizers, whose runtimes own malloc. */
#ifndef FELIX_BENCH_ALLOC_COUNT_H
#define FELIX_BENCH_ALLOC_COUNT_H
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static unsigned long long bench_allocs;

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void *malloc(size_t n) { bench_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { bench_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { bench_allocs++; return __libc_realloc(p, n); }
#endif

/* Internal helpers shared by libfelix's modules. Nothing here is exported:
 * internal names start with fx_, and the symbol map exports only felix_*. */
#ifndef FX_INTERNAL_H
#define FX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#if defined(__GNUC__)
#define FX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FX_PRINTF(a, b)
#endif

/* Record a one-line detail for felix_error_detail() and return code. */
int fx_fail(int code, const char *fmt, ...) FX_PRINTF(2, 3);
/* Segment liveness (proc.c): enum felix_proc_state for the process that
 * should own a segment with this stat. */
struct stat;
int fx_segment_state(int pid, const struct stat *st);

/* CRC-32 (IEEE), as zlib computes it. */
uint32_t fx_crc32(const void *data, size_t len);

/* Map an errno value to a felix code. */
int fx_errno_code(int err);

static inline int64_t fx_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Memory, from the allocator set with felix_set_allocator (alloc.c). */
void *fx_malloc(size_t n);
void *fx_calloc(size_t n, size_t size); /* NULL when n * size overflows */
void *fx_realloc(void *p, size_t n);
void fx_free(void *p);

/* The one way a buffer grows: *buf (of *cap elements of size elem) to hold
 * at least need elements, doubling; FELIX_ENOMEM (and *buf, *cap untouched)
 * when the size would overflow or memory runs out. */
int fx_grow(void **buf, size_t *cap, size_t need, size_t elem);

/* Read a small /proc file into buf (NUL-terminated); returns bytes or -errno. */
long fx_read_small(const char *path, char *buf, size_t len);

/*
 * Copy n bytes (a multiple of 16) from src (16-byte aligned, memory another
 * process writes) to dst with 16-byte aligned loads: on ARM64 an aligned LDP
 * (single-copy atomic with FEAT_LSE2, ARMv8.4), on x86-64 an aligned SSE load
 * (atomic on processors with AVX), elsewhere pairs of 8-byte atomic loads.
 * Each pair of 8-byte fields is read untorn where the hardware promises it.
 */
static inline void fx_copy16(uint64_t *dst, const void *src, size_t n)
{
    const char *s = (const char *)src;
    for (size_t i = 0; i < n; i += 16, dst += 2) {
#if defined(__aarch64__)
        uint64_t lo, hi;
        __asm__ volatile("ldp %0, %1, [%2]" : "=r"(lo), "=r"(hi) : "r"(s + i) : "memory");
        dst[0] = lo;
        dst[1] = hi;
#elif defined(__x86_64__)
        typedef long long v2di __attribute__((vector_size(16)));
        v2di v;
        __asm__ volatile("movdqa %1, %0" : "=x"(v) : "m"(*(const v2di *)(const void *)(s + i)));
        __builtin_memcpy(dst, &v, 16);
#else
        dst[0] = __atomic_load_n((const uint64_t *)(const void *)(s + i), __ATOMIC_RELAXED);
        dst[1] = __atomic_load_n((const uint64_t *)(const void *)(s + i + 8), __ATOMIC_RELAXED);
#endif
    }
}

static inline uint32_t fx_load32(const void *p)
{
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}

#endif

/* Internal helpers shared by libfelix's modules. Nothing here is exported:
 * internal names start with fx_, and the symbol map exports only felix_*. */
#ifndef FX_INTERNAL_H
#define FX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#include "felix/record.h"
#include "felix/snapshot.h"

#if defined(__GNUC__)
#define FX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FX_PRINTF(a, b)
#endif

/* A caller-filled struct's version (its first member): 1 up to the
 * library's own is known; each later version only appends fields. */
#define FX_VERSION_OK(p, current) ((p)->version >= 1 && (p)->version <= (current))

/* The last sample a reader read (NULL before the first); the source's
 * per-thread facts of a recording come from it. */
const felix_snapshot *fx_rec_reader_last(const felix_rec_reader *r);

/* Record a one-line detail for felix_error_detail() and return code. */
int fx_fail(int code, const char *fmt, ...) FX_PRINTF(2, 3);
/* Segment liveness (proc.c): enum felix_proc_state for the process that
 * should own a segment with this stat. */
struct stat;
int fx_segment_state(int pid, const struct stat *st);

/* CRC-32 (IEEE), as zlib computes it. */
uint32_t fx_crc32(const void *data, size_t len);  /* IEEE: format 1 */
uint32_t fx_crc32c(const void *data, size_t len); /* Castagnoli: format 2 */

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

/* Snapshot internals for the recording reader's hot path: the thread
 * array, and appending n rows of nwords words at once (one hash probe each;
 * a TID already there is dropped, as felix_snapshot_append does). kept[k]
 * (when not NULL) is the row the snapshot's k-th new thread came from. */
typedef struct fx_row_id {
    uint32_t tid, offset;
} fx_row_id;
const felix_thread *fx_snapshot_threads(const felix_snapshot *s);

/* Index of the thread with this TID in s, trying index i first: list order
 * is stable between snapshots, so in steady state this is O(1) without a
 * hash probe. -1 when there is none. */
static inline long fx_snapshot_index_at(const felix_snapshot *s, size_t i, uint32_t tid)
{
    if (i < felix_snapshot_get_info(s)->nthreads && fx_snapshot_threads(s)[i].tid == tid)
        return (long)i;
    return felix_snapshot_index(s, tid);
}

int fx_snapshot_append_rows(felix_snapshot *s, const fx_row_id *ids, const uint64_t *words, size_t n, size_t nwords,
                            uint32_t *kept);

/* Did the thread in c stop being the thread in p (same TID, but its slot
 * moved or a counter went back: a reused slot or TID)? One rule for the live
 * delta and for the recorder's thread events, so a replay sees what live saw. */
static inline int fx_thread_restarted(const felix_thread *p, const felix_thread *c)
{
    if (p->offset && c->offset && p->offset != c->offset)
        return 1;
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        if (c->c[k] < p->c[k])
            return 1;
    return 0;
}

static inline uint32_t fx_load32(const void *p)
{
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}

#endif

/*
 * Snapshots. Invariants:
 *  - threads[0..nthreads) hold distinct, non-zero TIDs, in the order added.
 *  - extra holds nextra words per thread, same order.
 *  - index is an open-addressing table of (slot+1) entries, capacity a power
 *    of two at least twice nthreads, so lookups by TID are O(1).
 *  - cpu[0..ncpu) holds the host CPU times measured with the snapshot, by
 *    thread index (FX_CPU_UNSET: not measured); threads from ncpu on were
 *    not measured. begin() empties it, so a snapshot never carries another
 *    sample's times.
 */
#include "felix/felix.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct felix_snapshot {
    felix_snapshot_info info;
    felix_thread *threads;
    size_t threads_cap;
    uint64_t *extra;
    size_t extra_cap;  /* in words */
    uint32_t *index;   /* 0 = empty, else thread index + 1 */
    size_t index_cap;  /* power of two */
    felix_mem *mem;
    int has_mem;
    uint64_t *cpu;
    size_t cpu_cap, ncpu;
};

#define FX_CPU_UNSET UINT64_MAX

static const char *const counter_names[FELIX_NCOUNTERS] = {
    "jit_time", "signal_time", "sigbus", "smc", "softfloat",
    "cache_miss", "cache_rdlock_time", "cache_wrlock_time", "jit_count",
};

int felix_counter_is_time(int c)
{
    return c == FELIX_C_JIT_TIME || c == FELIX_C_SIGNAL_TIME ||
           c == FELIX_C_CACHE_RDLOCK || c == FELIX_C_CACHE_WRLOCK;
}

const char *felix_counter_name(int c)
{
    return (c >= 0 && c < FELIX_NCOUNTERS) ? counter_names[c] : NULL;
}

const char *felix_app_type_name(int app_type, char *buf, size_t len)
{
    static const char *const names[] = {"Linux32", "Linux64", "arm64ec", "wow64"};
    if (!buf || len == 0)
        return NULL;
    if (app_type >= 0 && app_type < 4)
        snprintf(buf, len, "%s", names[app_type]);
    else
        snprintf(buf, len, "unknown(%d)", app_type);
    return buf;
}

unsigned felix_slot_size_valid(unsigned tss)
{
    if (tss == 0)
        return 48;
    if (tss < 48 || tss % 16 != 0 || tss > 0xffff)
        return 0;
    return tss;
}

int felix_snapshot_new(felix_snapshot **out)
{
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_snapshot_new: out is NULL");
    felix_snapshot *s = fx_calloc(1, sizeof *s);
    if (!s)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a snapshot");
    int rc = felix_mem_new(&s->mem);
    if (rc < 0) {
        fx_free(s);
        return rc;
    }
    s->info.slot_size = 80;
    s->info.nknown = FELIX_NCOUNTERS;
    *out = s;
    return 0;
}

void felix_snapshot_free(felix_snapshot *s)
{
    if (!s)
        return;
    fx_free(s->threads);
    fx_free(s->extra);
    fx_free(s->index);
    fx_free(s->cpu);
    felix_mem_free(s->mem);
    fx_free(s);
}

const felix_snapshot_info *felix_snapshot_get_info(const felix_snapshot *s)
{
    return s ? &s->info : NULL;
}

felix_snapshot_info *felix_snapshot_info_mut(felix_snapshot *s)
{
    return s ? &s->info : NULL;
}

const felix_thread *felix_snapshot_thread(const felix_snapshot *s, size_t i)
{
    return (s && i < s->info.nthreads) ? &s->threads[i] : NULL;
}

const uint64_t *felix_snapshot_extra(const felix_snapshot *s, size_t i)
{
    if (!s || i >= s->info.nthreads || s->info.nextra == 0)
        return NULL;
    return s->extra + i * s->info.nextra;
}

const felix_mem *felix_snapshot_mem(const felix_snapshot *s)
{
    return (s && s->has_mem) ? s->mem : NULL;
}

felix_mem *felix_snapshot_mem_mut(felix_snapshot *s) { return s ? s->mem : NULL; }

void felix_snapshot_set_has_mem(felix_snapshot *s, int has_mem)
{
    if (s)
        s->has_mem = has_mem != 0;
}

static inline size_t hash_tid(uint32_t tid, size_t mask)
{
    return (size_t)((tid * 2654435761u) >> 7) & mask;
}

long felix_snapshot_index(const felix_snapshot *s, uint32_t tid)
{
    if (!s || tid == 0 || s->index_cap == 0)
        return -1;
    size_t mask = s->index_cap - 1;
    for (size_t h = hash_tid(tid, mask);; h = (h + 1) & mask) {
        uint32_t e = s->index[h];
        if (e == 0)
            return -1;
        if (s->threads[e - 1].tid == tid)
            return (long)(e - 1);
    }
}

const felix_thread *felix_snapshot_find(const felix_snapshot *s, uint32_t tid)
{
    long i = felix_snapshot_index(s, tid);
    return i < 0 ? NULL : &s->threads[i];
}

static void index_insert(felix_snapshot *s, uint32_t i)
{
    size_t mask = s->index_cap - 1;
    size_t h = hash_tid(s->threads[i].tid, mask);
    while (s->index[h])
        h = (h + 1) & mask;
    s->index[h] = i + 1;
}

/* Make the TID index hold need threads at most half full; rebuilds it. */
static int index_reserve(felix_snapshot *s, size_t need)
{
    size_t cap = s->index_cap ? s->index_cap : 64;
    if (need > SIZE_MAX / 4 / sizeof *s->index)
        return fx_fail(FELIX_ENOMEM, "cannot index %zu threads", need);
    while (cap < need * 2)
        cap *= 2;
    if (cap != s->index_cap) {
        uint32_t *idx = fx_calloc(cap, sizeof *idx);
        if (!idx)
            return fx_fail(FELIX_ENOMEM, "out of memory indexing %zu threads", need);
        fx_free(s->index);
        s->index = idx;
        s->index_cap = cap;
    } else {
        memset(s->index, 0, cap * sizeof *s->index);
    }
    for (uint32_t i = 0; i < s->info.nthreads; i++)
        index_insert(s, i);
    return 0;
}

int felix_snapshot_begin(felix_snapshot *s, int64_t mono_ns, int64_t wall_ns,
                         uint16_t slot_size)
{
    if (!s)
        return fx_fail(FELIX_EINVAL, "felix_snapshot_begin: snapshot is NULL");
    unsigned eff = felix_slot_size_valid(slot_size);
    if (!eff)
        return fx_fail(FELIX_EINVAL, "thread slot size %u is not 0, or at least 48 and a multiple of 16",
                       (unsigned)slot_size);
    if (s->index_cap)
        memset(s->index, 0, s->index_cap * sizeof *s->index);
    unsigned nwords = (eff - 8) / 8;
    memset(&s->info, 0, sizeof s->info);
    s->info.mono_ns = mono_ns;
    s->info.wall_ns = wall_ns;
    s->info.slot_size = (uint16_t)eff;
    s->info.nknown = (uint16_t)(nwords < FELIX_NCOUNTERS ? nwords : FELIX_NCOUNTERS);
    s->info.nextra = (uint16_t)(nwords > FELIX_NCOUNTERS ? nwords - FELIX_NCOUNTERS : 0);
    s->info.image = 1;
    s->has_mem = 0;
    s->ncpu = 0;
    return 0;
}

int felix_snapshot_thread_cpu_ns(const felix_snapshot *s, size_t i, uint64_t *out)
{
    if (!s || i >= s->ncpu || i >= s->info.nthreads || s->cpu[i] == FX_CPU_UNSET || !out)
        return FELIX_EINVAL; /* not measured: no detail to set, this is the common case */
    *out = s->cpu[i];
    return 0;
}

int felix_snapshot_set_thread_cpu_ns(felix_snapshot *s, size_t i, uint64_t ns)
{
    if (!s || i >= s->info.nthreads)
        return fx_fail(FELIX_EINVAL, "felix_snapshot_set_thread_cpu_ns: no thread %zu", i);
    int rc = fx_grow((void **)&s->cpu, &s->cpu_cap, i + 1, sizeof *s->cpu);
    if (rc < 0)
        return rc;
    for (; s->ncpu < i; s->ncpu++)
        s->cpu[s->ncpu] = FX_CPU_UNSET;
    s->cpu[i] = ns == FX_CPU_UNSET ? ns - 1 : ns;
    if (s->ncpu <= i)
        s->ncpu = i + 1;
    return 0;
}

int felix_snapshot_append(felix_snapshot *s, uint32_t tid, uint32_t offset,
                          const uint64_t *words, size_t nwords)
{
    if (!s || tid == 0 || (nwords && !words))
        return fx_fail(FELIX_EINVAL, "felix_snapshot_append: thread id 0 or no words");
    const fx_row_id id = {tid, offset};
    return fx_snapshot_append_rows(s, &id, words, 1, nwords, NULL);
}

const felix_thread *fx_snapshot_threads(const felix_snapshot *s) { return s->threads; }

int fx_snapshot_append_rows(felix_snapshot *s, const fx_row_id *ids, const uint64_t *words, size_t n,
                            size_t nwords, uint32_t *kept)
{
    size_t have = s->info.nthreads, nextra = s->info.nextra;
    int rc;
    if ((have + n > s->threads_cap && (rc = fx_grow((void **)&s->threads, &s->threads_cap, have + n, sizeof *s->threads)) < 0) ||
        (nextra && (have + n) * nextra > s->extra_cap &&
         (rc = fx_grow((void **)&s->extra, &s->extra_cap, (have + n) * nextra, sizeof *s->extra)) < 0) ||
        ((have + n) * 2 > s->index_cap && (rc = index_reserve(s, have + n)) < 0))
        return rc;
    size_t mask = s->index_cap - 1, nk = s->info.nknown < nwords ? s->info.nknown : nwords;
    uint32_t m = (uint32_t)have;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *row = nwords ? words + i * nwords : words;
        uint32_t tid = ids[i].tid, e;
        size_t h = hash_tid(tid, mask);
        while ((e = s->index[h]) != 0 && s->threads[e - 1].tid != tid)
            h = (h + 1) & mask;
        if (e != 0 || tid == 0) { /* a duplicate (or no TID): dropped */
            s->info.anomaly_dup_tid += tid != 0;
            continue;
        }
        felix_thread *t = &s->threads[m];
        t->tid = tid;
        t->offset = ids[i].offset;
        if (nk)
            memcpy(t->c, row, nk * sizeof *row);
        if (nk < FELIX_NCOUNTERS)
            memset(t->c + nk, 0, (FELIX_NCOUNTERS - nk) * sizeof *row);
        for (size_t x = 0; x < nextra; x++)
            s->extra[m * nextra + x] = FELIX_NCOUNTERS + x < nwords ? row[FELIX_NCOUNTERS + x] : 0;
        s->index[h] = m + 1;
        if (kept)
            kept[m - have] = (uint32_t)i;
        m++;
    }
    s->info.nthreads = m;
    return 0;
}

int felix_snapshot_copy(felix_snapshot *dst, const felix_snapshot *src)
{
    if (!dst || !src)
        return fx_fail(FELIX_EINVAL, "felix_snapshot_copy: NULL snapshot");
    if (dst == src)
        return 0;
    /* Everything that can fail comes first, so a failed copy leaves dst as
     * it was (the last step, the memory table's copy, is all or nothing). */
    size_t n = src->info.nthreads, ne = src->info.nextra;
    int rc;
    if ((rc = fx_grow((void **)&dst->threads, &dst->threads_cap, n, sizeof *dst->threads)) < 0 ||
        (ne && n && (rc = fx_grow((void **)&dst->extra, &dst->extra_cap, n * ne, sizeof *dst->extra)) < 0) ||
        (n * 2 > dst->index_cap && (rc = index_reserve(dst, n)) < 0) ||
        (src->ncpu && (rc = fx_grow((void **)&dst->cpu, &dst->cpu_cap, src->ncpu, sizeof *dst->cpu)) < 0) ||
        (src->has_mem && (rc = felix_mem_copy(dst->mem, src->mem)) < 0))
        return rc;
    if (src->ncpu)
        memcpy(dst->cpu, src->cpu, src->ncpu * sizeof *dst->cpu);
    dst->ncpu = src->ncpu;
    if (n)
        memcpy(dst->threads, src->threads, n * sizeof *dst->threads);
    if (n && ne)
        memcpy(dst->extra, src->extra, n * ne * sizeof *dst->extra);
    dst->info = src->info;
    dst->has_mem = src->has_mem;
    if (dst->index_cap == src->index_cap && n) { /* the same table: copied as it is */
        memcpy(dst->index, src->index, src->index_cap * sizeof *dst->index);
        return 0;
    }
    return index_reserve(dst, n); /* a rebuild: the table is large enough */
}

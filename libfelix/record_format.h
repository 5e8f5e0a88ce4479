/* The recording format's names, once: item types, map keys, frame magics
 * and limits, after the CDDL in docs/recording-format.md. Shared by the
 * writer (record_write.c) and the reader (record_read.c); what only one of
 * them uses stays in its own file. */
#ifndef FX_RECORD_FORMAT_H
#define FX_RECORD_FORMAT_H

#include "felix/felix.h"
#include "internal.h"

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, the _advanced constructors */
#include <stdint.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* zstd contexts allocate through fx_malloc/fx_free too. */
ZSTD_customMem fx_zstd_mem(void);

#define FX_REC_FORMAT_NAME "felix-recording"
#define FX_MAGIC_INDEX 0x184D2A5Fu     /* skippable frame: our CBOR index */
#define FX_MAGIC_SEEKTABLE 0x184D2A5Eu /* skippable frame: seekable-format seek table */
#define FX_MAGIC_SEEKABLE_FOOTER 0x8F92EAB1u

/* Frames' window: the writer uses 2^20 bytes; readers accept up to 2^21. */
#define FX_WINDOW_LOG 20
#define FX_WINDOW_LOG_MAX 21

/* item = header / sample / event / end (/ index, in its skippable frame) */
enum fx_item_type { FX_ITEM_HEADER = 0, FX_ITEM_SAMPLE = 1, FX_ITEM_EVENT = 2, FX_ITEM_END = 3, FX_ITEM_INDEX = 4 };

/* Every item: key 0 is its type; its last pair is key 23, the CRC-32 check. */
enum { FX_KEY_TYPE = 0, FX_KEY_CHECK = 23 /* the largest one-byte key */ };

enum fx_header_key {
    FX_H_FORMAT = 1,        /* "felix-recording" */
    FX_H_VERSION = 2,       /* format version */
    FX_H_LIBFELIX = 3,      /* libfelix version */
    FX_H_HOST = 4,          /* host name */
    FX_H_NCPUS = 5,         /* host CPU count */
    FX_H_FREQ = 6,          /* cycle-counter frequency, Hz */
    FX_H_FREQ_SOURCE = 7,   /* how it was obtained */
    FX_H_PAGE_SIZE = 8,     /* host page size */
    FX_H_PID = 9,           /* PID */
    FX_H_CMDLINE = 10,      /* command line */
    FX_H_FEX_VERSION = 11,  /* FEX version string */
    FX_H_APP_TYPE = 12,     /* app type (raw byte) */
    FX_H_STATS_VERSION = 13,/* statistics version */
    FX_H_TSS = 14,          /* ThreadStatsSize (raw; 0 = legacy 48-byte slots) */
    FX_H_START_WALL = 15,   /* start, UTC ns since the epoch */
    FX_H_START_MONO = 16,   /* monotonic origin */
    FX_H_INTERVAL = 17,     /* requested interval, ns */
    FX_H_NAME = 18,         /* process name */
    FX_H_START_BOOT = 19,   /* CLOCK_BOOTTIME at the start (optional) */
    FX_H_NKEYS = 20
};

enum fx_sample_key {
    FX_S_TIME = 1,          /* ns since the monotonic origin (version 2: in a
                               sample that is not a key sample, the interval's
                               difference from the interval before it) */
    FX_S_KEY = 2,           /* true: a key sample */
    FX_S_THREADS = 3,       /* version 1: [* thread]; version 2: the thread block (bstr) */
    FX_S_NAMES = 4,         /* version 1: [* [tid, name]]; version 2: the names block (bstr) */
    FX_S_CPU = 5,           /* version 1: [* [tid, cpu]]; version 2: the CPU block (bstr) */
    FX_S_REGIONS = 6,       /* [* region] */
    FX_S_SEGMENT = 7,       /* [head, size, real-size] */
    FX_S_ANOMALIES = 8,     /* [cycle, bad-offset, dup-tid, free, racing] */
    FX_S_WALL = 9,          /* wall clock (absolute in key samples, else a difference) */
    FX_S_IMAGE = 10,        /* process image */
    FX_S_LAYOUT = 11,       /* [slot-size, app-type] */
    FX_S_PROCESS_MEM = 12   /* [rss, mappings] */
};

enum fx_event_key {
    FX_E_TIME = 1,
    FX_E_KIND = 2,
    FX_E_TID = 3,
    FX_E_STATUS = 4,
    FX_E_REASON = 5,
    FX_E_INTERVAL = 6,
    FX_E_MISSED = 7,
    FX_E_IMAGE = 8
};

enum fx_end_key { FX_END_TIME = 1, FX_END_SAMPLES = 2, FX_END_REASON = 5 };

enum fx_index_key { FX_I_CHUNKS = 1, FX_I_SAMPLES = 2, FX_I_REGIONS = 3 };

#define FX_NAME_LEN 32 /* thread names kept per thread (Linux: 15 + NUL) */

/* A sample holds at most 32,768 threads and 4 MiB of thread slots (threads x
 * slot size; FEX's cap on its segment). Readers rely on both to bound their
 * memory: a reader and a delta over 32,768 threads take about 30 MiB. */
#define FX_MAX_SAMPLE_SLOTS FELIX_SHM_FEX_MAX_SIZE
#define FX_MAX_SAMPLE_THREADS 32768u

/* Format 2's thread block: how its threads link to the previous sample's. */
enum { FX_LINKS_NONE = 0, FX_LINKS_IN_ORDER = 1, FX_LINKS_LISTED = 2 };
/* Its bit columns: a 1 bit (the column's header of the previous sample
 * again), or a 0 bit and an 8-bit header, a 6-bit Rice parameter
 * (FX_RICE_ZERO: every value is 0, no bits) and two flags: FX_COL_FIRST,
 * the values are first differences (not second); FX_COL_ZEROS, each value
 * is a 1 bit for 0, or a 0 bit and the value less 1. A quotient of
 * FX_RICE_MAXQ or more escapes to a 6-bit length and the value's bits. */
#define FX_RICE_ZERO 63u
#define FX_RICE_MAXQ 24u
#define FX_COL_ZEROS 0x40u
#define FX_COL_FIRST 0x80u /* linked second-difference columns: first differences; other word
                              columns: differences from the column's previous value */
#define FX_COL_NONE 0x100u /* no header yet in the chunk */
/* Bit columns of a thread block with nwords words: the linked threads'
 * second differences, the new threads' TID, offset and words, the linked
 * threads' first deltas (a header slot each, in this order). */
#define FX_NCOLUMNS(nwords) (3 * (size_t)(nwords) + 2)
/* Links of mode FX_LINKS_LISTED that skip threads: 00, then the Rice code
 * (this parameter) of the distance's zigzag less 1. */
#define FX_LINK_RICE 1u
/* New threads' slot offsets in free-slot mode (FX_COL_FIRST on the offset
 * column): each is the v-th slot, counting from 0, of those that no linked
 * thread and no earlier new thread of the sample holds; FEX gives a new
 * thread the first free slot, so v is mostly 0. Slot i is at byte
 * 64 + i x slot size; indexes stay below FX_SLOT_INDEXES. */
#define FX_SLOT_INDEXES(slot) ((FX_MAX_SAMPLE_SLOTS - 64u) / (slot) + 1u)
#define FX_SLOTMAP_WORDS(slot) ((FX_SLOT_INDEXES(slot) + 63u) / 64u)
static inline int fx_slot_index(uint32_t off, unsigned slot, uint32_t *idx)
{
    if (off < 64 || (off - 64) % slot != 0 || (off - 64) / slot >= FX_SLOT_INDEXES(slot))
        return 0;
    *idx = (off - 64) / slot;
    return 1;
}
/* The slot map: a bit per slot index, set when a thread holds the slot. */
static inline int fx_slot_held(const uint64_t *map, uint32_t x) { return (int)(map[x / 64] >> (x % 64) & 1); }
static inline void fx_slot_hold(uint64_t *map, uint32_t x) { map[x / 64] |= 1ull << (x % 64); }

/* Names blocks refer to the chunk's recent names, at most this many. */
#define FX_RECENT_NAMES 64u
/* A name given in a names block goes to the front of the chunk's recent
 * names: from place at when it was one of them, else (at == *n) as a new
 * one, the last falling off a full list. Writer and reader keep the list
 * by this one function. name is not in the list. */
static inline void fx_recent_to_front(char (*recent)[FX_NAME_LEN], unsigned *n, unsigned at, const char *name)
{
    if (at == *n && *n < FX_RECENT_NAMES)
        (*n)++;
    if (at >= *n)
        at = *n - 1;
    memmove(recent[1], recent[0], (size_t)at * FX_NAME_LEN);
    size_t len = strnlen(name, FX_NAME_LEN - 1);
    memcpy(recent[0], name, len);
    recent[0][len] = '\0';
}


/* Format 2's CPU times are in a unit of 10^e ns, e <= FX_CPU_MAX_EXP. */
#define FX_CPU_MAX_EXP 18
static const uint64_t fx_pow10[FX_CPU_MAX_EXP + 1] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull, 1000000000ull,
    10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull, 100000000000000ull,
    1000000000000000ull, 10000000000000000ull, 100000000000000000ull, 1000000000000000000ull};

/*
 * Each thread's last word deltas (cur - prev), aligned to a snapshot's
 * thread order: "prev" arrays belong to the previous sample, "next" ones are
 * filled for the sample being coded; swapped after each sample. A word is
 * written as the difference of its delta from the last delta (second order)
 * when the thread has one, so steady rates code as zeros. Both sides also
 * keep the absolute words (a, anext), so neither walks a snapshot per word.
 */
typedef struct fx_deltas {
    uint64_t *d, *next, *a, *anext; /* nthreads * nwords each */
    unsigned char *has, *next_has;
    size_t cap, nwords;             /* threads all of them hold */
    size_t cap_d, cap_next, cap_a, cap_anext, cap_has, cap_next_has;
} fx_deltas;

static inline void fx_deltas_free(fx_deltas *x)
{
    fx_free(x->d), fx_free(x->next), fx_free(x->a), fx_free(x->anext), fx_free(x->has), fx_free(x->next_has);
}

static inline int fx_grow_deltas(fx_deltas *x, size_t n, size_t nwords)
{
    if (nwords != x->nwords && x->cap) { /* a layout change: start over */
        fx_deltas_free(x);
        memset(x, 0, sizeof *x);
    }
    x->nwords = nwords;
    if (n <= x->cap)
        return 0;
    size_t w = (nwords ? nwords : 1) * 8, had = x->cap_has;
    int rc;
    if ((rc = fx_grow((void **)&x->d, &x->cap_d, n, w)) < 0 || (rc = fx_grow((void **)&x->next, &x->cap_next, n, w)) < 0 ||
        (rc = fx_grow((void **)&x->a, &x->cap_a, n, w)) < 0 || (rc = fx_grow((void **)&x->anext, &x->cap_anext, n, w)) < 0 ||
        (rc = fx_grow((void **)&x->has, &x->cap_has, n, 1)) < 0 ||
        (rc = fx_grow((void **)&x->next_has, &x->cap_next_has, n, 1)) < 0)
        return rc;
    memset(x->has + had, 0, x->cap_has - had);
    x->cap = n;
    return 0;
}

static inline uint64_t *fx_delta_prev(fx_deltas *x, size_t i) { return x->d + i * x->nwords; }
static inline uint64_t *fx_delta_next(fx_deltas *x, size_t i) { return x->next + i * x->nwords; }

#define FX_SWAP(T, a, b) \
    do { \
        T fx_t_ = (a); \
        (a) = (b); \
        (b) = fx_t_; \
    } while (0)

static inline void fx_deltas_swap(fx_deltas *x)
{
    FX_SWAP(uint64_t *, x->d, x->next);
    FX_SWAP(uint64_t *, x->a, x->anext);
    FX_SWAP(unsigned char *, x->has, x->next_has);
    FX_SWAP(size_t, x->cap_d, x->cap_next);
    FX_SWAP(size_t, x->cap_a, x->cap_anext);
    FX_SWAP(size_t, x->cap_has, x->cap_next_has);
}

/*
 * Each thread's name and last CPU time, double-buffered like fx_deltas:
 * "cur" is aligned to the previous sample's threads, "next" is filled for
 * the sample being coded; swapped after each sample.
 */
struct thread_extra {
    char name[FX_NAME_LEN];
    int has_cpu;
    uint64_t cpu;
};

typedef struct fx_extras {
    struct thread_extra *cur, *next;
    size_t cap, cap_cur, cap_next;
} fx_extras;

static inline int fx_grow_extras(fx_extras *x, size_t n)
{
    if (n <= x->cap)
        return 0;
    int rc;
    if ((rc = fx_grow((void **)&x->cur, &x->cap_cur, n, sizeof *x->cur)) < 0 ||
        (rc = fx_grow((void **)&x->next, &x->cap_next, n, sizeof *x->next)) < 0)
        return rc;
    x->cap = n;
    return 0;
}

static inline void fx_extras_swap(fx_extras *x)
{
    FX_SWAP(struct thread_extra *, x->cur, x->next);
    FX_SWAP(size_t, x->cap_cur, x->cap_next);
}

static inline void fx_extras_free(fx_extras *x) { fx_free(x->cur), fx_free(x->next); }

#endif

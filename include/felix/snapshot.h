/*
 * Snapshots: a consistent copy of every live thread's raw cumulative counters,
 * with the time it was taken and (when sampled) FEX's memory regions.
 *
 * A snapshot comes from a live segment (felix_shm_snapshot()) or is built by
 * a recording reader or a test with felix_snapshot_begin()/_append(). From
 * there on, live and replay share one path (see delta.h).
 *
 * Snapshots are reusable: taking a new one into the same object allocates
 * nothing unless the thread count (or the number of extra words) grows.
 * One snapshot is used by one thread at a time.
 */
#ifndef FELIX_SNAPSHOT_H
#define FELIX_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * FEX's per-thread counters, in the order they stand in a thread slot
 * (after the Next/TID word). Legacy 48-byte slots hold the first five.
 */
enum felix_counter {
    FELIX_C_JIT_TIME = 0,       /**< ticks compiling (JIT) */
    FELIX_C_SIGNAL_TIME = 1,    /**< ticks in signal handling */
    FELIX_C_SIGBUS = 2,         /**< SIGBUS events */
    FELIX_C_SMC = 3,            /**< self-modifying-code invalidations */
    FELIX_C_SOFTFLOAT = 4,      /**< x87 soft-float fallbacks */
    FELIX_C_CACHE_MISS = 5,     /**< JIT lookup-cache misses */
    FELIX_C_CACHE_RDLOCK = 6,   /**< ticks waiting for the cache read lock */
    FELIX_C_CACHE_WRLOCK = 7,   /**< ticks waiting for the cache write lock */
    FELIX_C_JIT_COUNT = 8,      /**< blocks compiled */
    FELIX_NCOUNTERS = 9
};

/** Non-zero when counter c is measured in cycle-counter ticks. */
int felix_counter_is_time(int c);
/** Short stable name of counter c ("jit_time", "sigbus", ...), or NULL. */
const char *felix_counter_name(int c);

/** FEX's app_type values. Other values are reported as unknown(N). */
enum felix_app_type {
    FELIX_APP_LINUX32 = 0,
    FELIX_APP_LINUX64 = 1,
    FELIX_APP_ARM64EC = 2,
    FELIX_APP_WOW64 = 3
};

/**
 * Name of an app type: "Linux32", "Linux64", "arm64ec", "wow64", or
 * "unknown(N)" written into buf (at least 16 bytes). Returns buf.
 */
const char *felix_app_type_name(int app_type, char *buf, size_t len);

/** One thread in a snapshot. Owned by the snapshot. */
typedef struct felix_thread {
    uint32_t tid;    /**< host thread id (never 0 in a snapshot) */
    uint32_t offset; /**< byte offset of its slot in the segment (0 if unknown) */
    /** Raw cumulative counters, indexed by enum felix_counter; 0 where the
     *  segment's layout lacks the field. */
    uint64_t c[FELIX_NCOUNTERS];
} felix_thread;

/** Facts about a snapshot. Owned by the snapshot. */
typedef struct felix_snapshot_info {
    int64_t mono_ns;     /**< CLOCK_MONOTONIC when taken */
    int64_t wall_ns;     /**< CLOCK_REALTIME (Unix epoch, ns) when taken */
    uint32_t nthreads;   /**< live threads held */
    uint16_t slot_size;  /**< bytes per slot in effect (48, 80, ...) */
    uint16_t nknown;     /**< known counters the layout holds (5 or 9) */
    uint16_t nextra;     /**< extra trailing u64 words per thread */
    uint8_t version;     /**< statistics version of the segment */
    uint8_t app_type;    /**< raw app_type byte */
    uint32_t head;       /**< header Head when taken */
    uint32_t size;       /**< header Size when taken (what FEX claims) */
    uint32_t real_size;  /**< bytes the object really had (fstat) */
    /* Anomalies met while walking the list; the good slots are still held. */
    uint32_t anomaly_cycle;      /**< the walk came back to a visited slot */
    uint32_t anomaly_bad_offset; /**< an offset outside, before byte 64, or off a slot boundary */
    uint32_t anomaly_dup_tid;    /**< a TID seen twice (the later one dropped) */
    uint32_t skipped_free;       /**< slots seen with TID 0 (free or being freed) */
    uint32_t skipped_racing;     /**< slots whose TID changed while copied
                                      (in-memory images only) */
    uint32_t image;              /**< the process image it was taken from: 1,
                                      then one more per exec (see shm.h) */
} felix_snapshot_info;

typedef struct felix_snapshot felix_snapshot;
struct felix_mem;

/** Create an empty snapshot. */
int felix_snapshot_new(felix_snapshot **out);
/** Free a snapshot (NULL is allowed). */
void felix_snapshot_free(felix_snapshot *snap);

/** Facts about the snapshot; never NULL for a valid snapshot. */
const felix_snapshot_info *felix_snapshot_get_info(const felix_snapshot *snap);
/** Thread i (0 <= i < nthreads) in list order, or NULL when out of range. */
const felix_thread *felix_snapshot_thread(const felix_snapshot *snap, size_t i);
/** The thread with this TID, or NULL. O(1). */
const felix_thread *felix_snapshot_find(const felix_snapshot *snap, uint32_t tid);
/** Index of the thread with this TID, or -1. */
long felix_snapshot_index(const felix_snapshot *snap, uint32_t tid);
/**
 * Thread i's extra trailing words (fields newer than this library), nextra of
 * them, or NULL when there are none.
 */
const uint64_t *felix_snapshot_extra(const felix_snapshot *snap, size_t i);
/** The memory regions sampled with this snapshot, or NULL if none were. */
const struct felix_mem *felix_snapshot_mem(const felix_snapshot *snap);
/** The snapshot's own memory object, to fill (felix_mem_read_pid() etc.). */
struct felix_mem *felix_snapshot_mem_mut(felix_snapshot *snap);
/** Mark whether the snapshot's memory object holds a sample. */
void felix_snapshot_set_has_mem(felix_snapshot *snap, int has_mem);
/**
 * Thread i's host CPU time (utime + stime, ns) as measured with this
 * snapshot (a source measures at its slow interval; a recording keeps what
 * was measured). FELIX_EINVAL when it was not measured (no error detail is
 * set: that is the common case) or i is out of range.
 */
int felix_snapshot_thread_cpu_ns(const felix_snapshot *snap, size_t i, uint64_t *out);
/** Record thread i's measured CPU time (builders: sources, readers, tests).
 *  Cleared by felix_snapshot_begin(). Errors: FELIX_EINVAL, FELIX_ENOMEM. */
int felix_snapshot_set_thread_cpu_ns(felix_snapshot *snap, size_t i, uint64_t ns);

/**
 * Start building a snapshot by hand (recording readers, tests): clears it,
 * sets its times and layout. slot_size 0 means the legacy 48 bytes.
 * Returns FELIX_EINVAL for a slot size felix_slot_size_valid() refuses.
 */
int felix_snapshot_begin(felix_snapshot *snap, int64_t mono_ns, int64_t wall_ns,
                         uint16_t slot_size);
/**
 * Append a thread: words are the slot's u64 words after Next/TID (the
 * counters, then any extra words), nwords of them; missing words read as 0,
 * words past the slot size are ignored. tid 0 is refused (FELIX_EINVAL); a
 * TID already present is counted as anomaly_dup_tid and dropped (returns 0).
 */
int felix_snapshot_append(felix_snapshot *snap, uint32_t tid, uint32_t offset,
                          const uint64_t *words, size_t nwords);
/** Writable info, for builders (recording readers fill in header fields). */
felix_snapshot_info *felix_snapshot_info_mut(felix_snapshot *snap);
/** Copy src into dst (reusing dst's buffers). */
int felix_snapshot_copy(felix_snapshot *dst, const felix_snapshot *src);

/**
 * Whether a header ThreadStatsSize value is usable: 0 (legacy, 48 bytes) or
 * at least 48 and a multiple of 16. Returns the effective size, or 0 if not.
 */
unsigned felix_slot_size_valid(unsigned thread_stats_size);

#ifdef __cplusplus
}
#endif
#endif

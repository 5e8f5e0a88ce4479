/*
 * Attaching to a FEX process's statistics segment, /dev/shm/fex-<pid>-stats,
 * or to any file holding such an image (a saved copy from a bug report).
 *
 * libfelix never maps the object and never writes to it. Another process can
 * truncate it at any moment (FEX's exec does, a hostile writer may), and a
 * load from a mapped page past end-of-file raises SIGBUS; so every snapshot
 * copies the bytes it needs with pread() into the handle's own buffer, which
 * returns short instead of faulting, and walks the copy. Only the span the
 * walk reaches is copied (in 4 KiB blocks, runs growing as the walk goes on),
 * so the cost follows the live thread list, not the object's size. The kernel
 * copies page-cache data with aligned word loads (8- and 16-byte on ARM64,
 * whose source is aligned first), so each aligned 8-byte counter is read
 * untorn; the copy of one slot is not atomic as a whole, which the
 * monotonic-counter checks in delta.h absorb.
 *
 * The content is untrusted: every offset is checked, the list walk is bounded
 * by the slot count and cut at the first revisited slot, and nothing past the
 * object's real size (fstat, before every snapshot) is read, whatever the
 * header's Size claims.
 *
 * Lifecycle. A FEX process that execs keeps its PID, and the new image opens
 * the same object with O_TRUNC: it drops to 0 bytes, is extended to a page,
 * and only then gets a header. A brand-new object is also all zero for a
 * moment. For a live segment (attached by PID, or by its /dev/shm path while
 * the process lives) a snapshot in that window returns FELIX_ERESTART
 * ("restarting", not a failure). When a good snapshot follows a restart, or
 * the object got smaller, or was truncated and did not grow (its mtime moved
 * while it was one host page: truncation, growth and FEX's first write to a
 * page move it, its later writes and its unlink at exit do not; the header
 * is read between two fstats that agree, so that first write landing during
 * a read is not taken for a truncation), or its FEX version, app type or
 * slot size changed, the handle counts a new image (felix_shm_info.image, and
 * felix_snapshot_info.image of every snapshot): felix_delta_compute() never
 * computes a delta across two images and reports FELIX_FRAME_EXEC instead.
 *
 * Only regular files are read: the path is opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO never blocks), and anything else (a symbolic link, a
 * FIFO, a directory, a device) is FELIX_ENOSTATS, "not a FEX statistics
 * object".
 *
 * One handle is used by one thread at a time.
 */
#ifndef FELIX_SHM_H
#define FELIX_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The statistics version this library reads. */
#define FELIX_STATS_VERSION 2
/** Bytes of the header before the first slot. */
#define FELIX_HEADER_SIZE 64
/** FEX's cap on the segment's size. */
#define FELIX_SHM_FEX_MAX_SIZE (4u << 20)
/** The most of a segment (or image) libfelix reads; bytes beyond are ignored.
 *  (felix86, an x86-on-RISC-V emulator, writes this format up to 16 MiB.) */
#define FELIX_SHM_MAP_LIMIT (16u << 20)
/** How long opening a live segment waits for a header that is not written
 *  yet (a FEX process starting or exec'ing), in milliseconds. */
#define FELIX_SHM_READY_TIMEOUT_MS 2000

/** Flags for felix_shm_open_pid() and felix_shm_open_path(). */
enum felix_shm_flags {
    /** Attach even when the segment's owner is not the process's user. */
    FELIX_SHM_ALLOW_FOREIGN_OWNER = 1u << 0,
    /** By PID: attach even when the process is gone (a stale segment). */
    FELIX_SHM_ALLOW_STALE = 1u << 1,
    /** Do not wait for the header of a live segment (see
     *  FELIX_SHM_READY_TIMEOUT_MS): fail at once. */
    FELIX_SHM_NO_WAIT = 1u << 2
};

/** What is known about an attached segment. Owned by the handle; refreshed
 *  by felix_shm_refresh() and felix_shm_snapshot(). */
typedef struct felix_shm_info {
    char path[256];          /**< the file attached */
    int pid;                 /**< target PID, or -1 when unknown (image by path) */
    uint32_t owner_uid;      /**< the segment file's owner */
    uint8_t version;         /**< statistics version (2) */
    uint8_t app_type;        /**< raw app_type byte */
    char app_type_name[16];  /**< "Linux64", ..., or "unknown(N)" */
    uint16_t thread_stats_size; /**< raw header ThreadStatsSize (0 on old FEX) */
    uint16_t slot_size;      /**< bytes per slot in effect */
    uint16_t nknown;         /**< known counters the layout holds (5 or 9) */
    uint16_t nextra;         /**< extra trailing u64 words per slot */
    /** FEX's version string, read within its 48 bytes; bytes that are not
     *  printable ASCII are escaped as \xNN. */
    char fex_version[48 * 4 + 1];
    uint32_t head;           /**< header Head */
    uint32_t size;           /**< header Size (claimed) */
    uint32_t real_size;      /**< the object's real size (fstat) */
    uint32_t mapped_size;    /**< bytes libfelix reads: the real size, at most
                                  FELIX_SHM_MAP_LIMIT (no mapping is made) */
    uint32_t nslots;         /**< slots that fit in the readable bytes */
    uint32_t remaps;         /**< times the readable size followed a change */
    uint32_t image;          /**< images seen since attaching: 1, then one more
                                  at each exec (or restart) detected */
    uint32_t restarts;       /**< snapshots that returned FELIX_ERESTART */
} felix_shm_info;

typedef struct felix_shm felix_shm;
struct felix_snapshot;

/**
 * Attach to the statistics of process pid (/dev/shm/fex-<pid>-stats).
 * When the object is shorter than its header or its header is all zero (FEX
 * has created it but not written it yet), waits up to
 * FELIX_SHM_READY_TIMEOUT_MS for the header, polling every millisecond,
 * unless FELIX_SHM_NO_WAIT is given; then fails as below.
 * Errors: FELIX_ESRCH (no such process), FELIX_ENOSTATS (no segment: not a
 * FEX process, or ProfileStats off; or the path is not a regular file),
 * FELIX_ESTALE (segment but the process is gone; see FELIX_SHM_ALLOW_STALE),
 * FELIX_EACCES, FELIX_EOWNER (see FELIX_SHM_ALLOW_FOREIGN_OWNER),
 * FELIX_ETRUNC (still shorter than a header), FELIX_EVERSION (still version 0,
 * or a version this library does not read), FELIX_ECORRUPT, FELIX_ENOMEM.
 */
int felix_shm_open_pid(felix_shm **out, pid_t pid, unsigned flags);

/**
 * Attach to a segment file or a saved image by path. The owner check applies
 * when the path is /dev/shm/fex-<pid>-stats of a live process.
 * Errors as felix_shm_open_pid(), and FELIX_ENOSTATS when the file is missing.
 */
int felix_shm_open_path(felix_shm **out, const char *path, unsigned flags);

/** Detach and free (NULL is allowed). */
void felix_shm_close(felix_shm *shm);

/** Facts about the segment as of the last refresh or snapshot. */
const felix_shm_info *felix_shm_get_info(const felix_shm *shm);

/**
 * Re-read the header and the real size.
 * Errors: FELIX_ERESTART (a live segment being recreated), FELIX_ETRUNC (a
 * file shorter than a header), FELIX_EVERSION, FELIX_ECORRUPT, FELIX_EIO.
 */
int felix_shm_refresh(felix_shm *shm);

/**
 * Take a snapshot: fstat, copy the header, walk the thread list with every
 * offset checked and the walk bounded, copying (pread) the blocks the walk
 * reaches, and stamp CLOCK_MONOTONIC and wall-clock times. Anomalies are
 * counted in the snapshot's info; good slots are still returned. Allocates
 * only when the thread count or the object grows.
 * Errors: FELIX_ERESTART (a live segment is being recreated: the snapshot is
 * left empty; try again at the next interval), FELIX_ETRUNC, FELIX_EVERSION,
 * FELIX_ECORRUPT (a file, or a live segment whose header is not FEX's),
 * FELIX_EIO, FELIX_ENOMEM. Never raises a signal, whatever the object does.
 */
int felix_shm_snapshot(felix_shm *shm, struct felix_snapshot *snap);

/**
 * Decode and validate the 64-byte header at the start of an image of len
 * bytes into out (path and pid left empty). Errors: FELIX_ETRUNC,
 * FELIX_EVERSION, FELIX_ECORRUPT. Used for images held in memory.
 */
int felix_shm_parse_header(const void *image, size_t len, felix_shm_info *out);

/**
 * Snapshot an image held in memory (16-byte aligned, len bytes): the same
 * validation and walk as felix_shm_snapshot(). Times are taken now.
 */
int felix_shm_snapshot_image(const void *image, size_t len,
                             struct felix_snapshot *snap);

#ifdef __cplusplus
}
#endif
#endif

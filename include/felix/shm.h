/*
 * Attaching to a FEX process's statistics segment, /dev/shm/fex-<pid>-stats,
 * or to any file holding such an image (a saved copy from a bug report).
 *
 * The segment is mapped read-only: libfelix never writes to FEX's memory.
 * Its content is untrusted: every offset is checked, the list walk is bounded,
 * and nothing past the object's real size (fstat, checked before every
 * snapshot) is ever touched, whatever the header's Size claims. When Size or
 * the real size changes, the mapping follows.
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
/** The most of a segment (or image) libfelix maps; bytes beyond are ignored. */
#define FELIX_SHM_MAP_LIMIT (16u << 20)

/** Flags for felix_shm_open_pid() and felix_shm_open_path(). */
enum felix_shm_flags {
    /** Attach even when the segment's owner is not the process's user. */
    FELIX_SHM_ALLOW_FOREIGN_OWNER = 1u << 0,
    /** By PID: attach even when the process is gone (a stale segment). */
    FELIX_SHM_ALLOW_STALE = 1u << 1
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
    uint32_t mapped_size;    /**< bytes mapped and readable */
    uint32_t nslots;         /**< slots that fit in the readable bytes */
    uint32_t remaps;         /**< times the mapping followed a size change */
} felix_shm_info;

typedef struct felix_shm felix_shm;
struct felix_snapshot;

/**
 * Attach to the statistics of process pid (/dev/shm/fex-<pid>-stats).
 * Errors: FELIX_ESRCH (no such process), FELIX_ENOSTATS (no segment: not a
 * FEX process, or ProfileStats off), FELIX_ESTALE (segment but the process is
 * gone; see FELIX_SHM_ALLOW_STALE), FELIX_EACCES, FELIX_EOWNER (see
 * FELIX_SHM_ALLOW_FOREIGN_OWNER), FELIX_ETRUNC, FELIX_EVERSION,
 * FELIX_ECORRUPT, FELIX_ENOMEM.
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
 * Re-read the header and the real size; remap when they changed.
 * Errors: FELIX_ETRUNC (the object shrank below a header), FELIX_EIO.
 */
int felix_shm_refresh(felix_shm *shm);

/**
 * Take a snapshot: refresh, copy the header, walk the thread list with every
 * offset checked and the walk bounded, copy each live slot with 16-byte
 * aligned loads, and stamp CLOCK_MONOTONIC and wall-clock times. Anomalies
 * are counted in the snapshot's info; good slots are still returned.
 * Allocates only when the thread count grows.
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

/*
 * libfelix: read FEX-Emu's live statistics.
 *
 * Umbrella header: includes every module. Conventions used by every header:
 *  - Functions return int: 0 on success, a negative FELIX_E* code on failure.
 *    Results come back through out-parameters; on failure they are untouched
 *    unless the function says otherwise.
 *  - felix_error_detail() returns a one-line description of the last failure in
 *    the calling thread, naming the thing and the cause; felix_strerror() gives
 *    the generic sentence for a code.
 *  - The library never prints, exits, aborts, or raises a signal.
 *  - Handles are opaque (felix_<thing>_new/open ... _free/close).
 *  - Public structs are of two kinds, and each one's comment says which:
 *    * Library-owned (felix_frame, felix_thread_delta, felix_thread,
 *      felix_snapshot_info, felix_shm_info, felix_region, felix_proc_entry,
 *      and the felix_rec_header a reader or source returns): handed out by
 *      const pointer only. Never allocate, copy by value or index arrays of
 *      them yourself: new fields are appended and the array stride may grow.
 *    * Caller-filled (felix_allocator, felix_rec_header given to a writer,
 *      felix_rec_options, felix_rec_event, felix_rec_thread_info,
 *      felix_source_options): their first member, version, says which
 *      layout the caller was built with. Initialize every one with its
 *      FELIX_<NAME>_INIT macro (designated, so -Wextra stays quiet) or
 *      felix_<name>_init() (C++ before C++20), then set fields;
 *      the library reads and writes only the fields that version has, so a
 *      program built against an older header keeps working with a newer
 *      library. A version of 0 or one newer than the library's is
 *      FELIX_EINVAL.
 *  - Thread safety: one handle is used by one thread at a time; different
 *    handles are independent and may be used from different threads.
 */
#ifndef FELIX_FELIX_H
#define FELIX_FELIX_H

#ifdef __cplusplus
extern "C" {
#endif

#define FELIX_VERSION_MAJOR 0
#define FELIX_VERSION_MINOR 3
#define FELIX_VERSION_PATCH 0
#define FELIX_VERSION_STRING "0.3.0"
/** Version as one comparable number: major * 10000 + minor * 100 + patch. */
#define FELIX_VERSION_NUMBER                                                   \
    (FELIX_VERSION_MAJOR * 10000 + FELIX_VERSION_MINOR * 100 + FELIX_VERSION_PATCH)

/** Error codes. Every one is negative; 0 is success. */
enum felix_error {
    FELIX_OK = 0,
    FELIX_EINVAL = -1,    /**< invalid argument */
    FELIX_ENOMEM = -2,    /**< out of memory */
    FELIX_ESRCH = -3,     /**< no such process */
    FELIX_ENOSTATS = -4,  /**< no statistics segment (not FEX, or ProfileStats off) */
    FELIX_ESTALE = -5,    /**< segment left behind by a process that is gone */
    FELIX_EACCES = -6,    /**< permission denied */
    FELIX_EOWNER = -7,    /**< segment not owned by the target process's user */
    FELIX_EVERSION = -8,  /**< unsupported statistics version */
    FELIX_ETRUNC = -9,    /**< data too short */
    FELIX_ECORRUPT = -10, /**< data malformed */
    FELIX_EIO = -11,      /**< input/output error */
    FELIX_ENOTSUP = -12,  /**< not supported on this system */
    FELIX_EAGAIN = -13,   /**< nothing available yet, try again */
    FELIX_EEOF = -14,     /**< end of data */
    FELIX_ENOSPC = -15,   /**< no space left on device */
    FELIX_EPIPE = -16,    /**< reader of the output went away */
    FELIX_ERANGE = -17,   /**< value out of range */
    /** The statistics object is being (re)created: it is shorter than its
     *  header or its header is still all zero (a FEX process starting, or
     *  one that exec'd: the new image truncates the same object to 0 bytes
     *  before it writes a new header). Not a failure: try again shortly. */
    FELIX_ERESTART = -18,
};

/** The library's version string, e.g. "0.3.0" (may differ from the header's). */
const char *felix_version(void);

/** A constant sentence for an error code (never NULL; unknown codes too). */
const char *felix_strerror(int code);

/**
 * One line describing the last failure in the calling thread: the thing
 * (a path, a PID, an offset) and the cause. Valid until the next libfelix call
 * in this thread. Empty string when no call has failed yet.
 */
const char *felix_error_detail(void);

#include <stddef.h>

/**
 * Where libfelix (and the zstd contexts it creates) get memory. Each function
 * gets ctx as its last argument; realloc and free see only blocks that this
 * allocator's malloc or realloc returned. A function returning NULL is an
 * out-of-memory condition: the call that needed the memory fails with
 * FELIX_ENOMEM and leaves its handle usable (or, for a recording writer that
 * had started writing the sample, failed for good), never half-updated.
 * Caller-filled: start from FELIX_ALLOCATOR_INIT.
 */
typedef struct felix_allocator {
    unsigned version; /**< FELIX_ALLOCATOR_VERSION */
    void *(*malloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t size, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} felix_allocator;

#define FELIX_ALLOCATOR_VERSION 1
#define FELIX_ALLOCATOR_INIT {.version = FELIX_ALLOCATOR_VERSION}
/** The same as FELIX_ALLOCATOR_INIT, for languages without designated initializers. */
void felix_allocator_init(felix_allocator *p);

/**
 * Use a for every allocation from now on (NULL: the C library's). Process-wide;
 * call it while no libfelix handle exists (a handle is freed by the allocator
 * that made it). FELIX_EINVAL if one of the three functions is NULL or the
 * version is not one this library knows.
 */
int felix_set_allocator(const felix_allocator *a);

#ifdef __cplusplus
}
#endif

#include <felix/clock.h>
#include <felix/delta.h>
#include <felix/mem.h>
#include <felix/proc.h>
#include <felix/record.h>
#include <felix/shm.h>
#include <felix/snapshot.h>
#include <felix/source.h>

#endif

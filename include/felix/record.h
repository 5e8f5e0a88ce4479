/*
 * Recordings: raw snapshots written as CBOR items in a zstd stream (see
 * docs/recording-format.md), and read back as the same felix_snapshot type
 * live attachment gives, so felix_delta_compute() works unchanged.
 *
 * Writer: every sample is flushed into the file as it is written; a killed
 * writer loses at most the sample being written. Reader: streaming, with
 * memory that does not grow with the recording's length; on damaged data it
 * returns every valid item before the damage, then an error whose detail
 * names the byte offset and the problem.
 *
 * One writer or reader is used by one thread at a time.
 */
#ifndef FELIX_RECORD_H
#define FELIX_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <felix/snapshot.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The format version this library writes and reads. */
#define FELIX_REC_FORMAT_VERSION 2

/** A recording's header. Caller-filled when given to a writer (start from
 *  FELIX_REC_HEADER_INIT; the writer copies it); library-owned when a reader
 *  or a source returns it. */
typedef struct felix_rec_header {
    unsigned version;         /**< FELIX_REC_HEADER_VERSION (this struct's layout) */
    uint32_t format_version;  /**< FELIX_REC_FORMAT_VERSION */
    char felix_version[32];   /**< libfelix version that wrote it */
    char host[64];            /**< host name */
    uint32_t ncpus;           /**< host CPU count */
    uint64_t freq_hz;         /**< cycle-counter frequency */
    char freq_source[32];     /**< how it was obtained */
    uint32_t page_size;       /**< host page size */
    int32_t pid;              /**< recorded process */
    char cmdline[512];        /**< its command line */
    char name[32];            /**< its name */
    char fex_version[48 * 4 + 1]; /**< FEX version string (escaped) */
    uint8_t app_type;         /**< raw app type */
    uint8_t stats_version;    /**< statistics version */
    uint16_t thread_stats_size; /**< raw ThreadStatsSize (0: 48-byte slots) */
    int64_t start_wall_ns;    /**< start, UTC ns since the epoch */
    int64_t start_mono_ns;    /**< CLOCK_MONOTONIC at the start */
    int64_t interval_ns;      /**< requested sampling interval */
    /* version 2 */
    int64_t start_boot_ns;    /**< CLOCK_BOOTTIME at the start (0: not recorded), which ties
                                   the recording to a system trace's clock */
} felix_rec_header;

#define FELIX_REC_HEADER_VERSION 2
#define FELIX_REC_HEADER_INIT {.version = FELIX_REC_HEADER_VERSION}
/** The same as FELIX_REC_HEADER_INIT, for languages without designated initializers. */
void felix_rec_header_init(felix_rec_header *p);

/** Event kinds. */
enum felix_rec_event_kind {
    FELIX_EV_THREAD_STARTED = 1,
    FELIX_EV_THREAD_EXITED = 2,
    FELIX_EV_INTERVAL_CHANGED = 3,
    FELIX_EV_SAMPLES_MISSED = 4,
    FELIX_EV_PROCESS_EXITED = 5,
    FELIX_EV_STOPPED = 6,
    /** The process exec'd: a new image (count holds its number, see
     *  felix_snapshot_info.image). Written by felix_rec_write_sample() when
     *  the image changes; the next sample starts a new chunk. */
    FELIX_EV_EXEC = 7
};

/** An event. Caller-filled, both for felix_rec_write_event() and for the
 *  readers that fill it (felix_rec_next, felix_source_next): start from
 *  FELIX_REC_EVENT_INIT, whose version says how much the library may write. */
typedef struct felix_rec_event {
    unsigned version;     /**< FELIX_REC_EVENT_VERSION */
    int kind;             /**< enum felix_rec_event_kind */
    int64_t mono_ns;      /**< CLOCK_MONOTONIC time (as in snapshots) */
    uint32_t tid;         /**< thread events */
    int has_status;       /**< process exited: status known */
    int status;           /**< wait status */
    int64_t interval_ns;  /**< interval changed */
    uint64_t count;       /**< samples missed; the new image's number (exec) */
    char reason[64];      /**< recording stopped */
} felix_rec_event;

#define FELIX_REC_EVENT_VERSION 1
#define FELIX_REC_EVENT_INIT {.version = FELIX_REC_EVENT_VERSION}
/** The same as FELIX_REC_EVENT_INIT, for languages without designated initializers. */
void felix_rec_event_init(felix_rec_event *p);

/* ---- writer ---- */

typedef struct felix_rec_writer felix_rec_writer;

/** Writer options; zero means the default. Caller-filled: start from
 *  FELIX_REC_OPTIONS_INIT. */
typedef struct felix_rec_options {
    unsigned version;      /**< FELIX_REC_OPTIONS_VERSION */
    int64_t chunk_ns;      /**< close a chunk after this long (default 60 s) */
    uint32_t chunk_samples;/**< or after this many samples (default 1000) */
    int level;             /**< zstd level (default 3) */
    int fsync;             /**< fdatasync after every sample (power-loss safety) */
} felix_rec_options;

#define FELIX_REC_OPTIONS_VERSION 1
#define FELIX_REC_OPTIONS_INIT {.version = FELIX_REC_OPTIONS_VERSION}
/** The same as FELIX_REC_OPTIONS_INIT, for languages without designated initializers. */
void felix_rec_options_init(felix_rec_options *p);

/** Per-thread facts a sample may carry besides the counters. Caller-filled:
 *  start every element from FELIX_REC_THREAD_INFO_INIT (the first element's
 *  version gives the array's stride). */
typedef struct felix_rec_thread_info {
    unsigned version;     /**< FELIX_REC_THREAD_INFO_VERSION */
    uint32_t tid;
    const char *name;     /**< NULL: unknown */
    int has_cpu;
    uint64_t cpu_ns;      /**< host CPU time, utime + stime */
} felix_rec_thread_info;

#define FELIX_REC_THREAD_INFO_VERSION 1
#define FELIX_REC_THREAD_INFO_INIT {.version = FELIX_REC_THREAD_INFO_VERSION}
/** The same as FELIX_REC_THREAD_INFO_INIT, for languages without designated initializers. */
void felix_rec_thread_info_init(felix_rec_thread_info *p);

/**
 * Start a recording into path (created or truncated). hdr's format_version
 * and felix_version are filled in by the library; opts may be NULL.
 * Errors: FELIX_EACCES, FELIX_ENOSPC, FELIX_EIO, FELIX_ENOMEM, FELIX_EINVAL.
 */
int felix_rec_writer_open_path(felix_rec_writer **out, const char *path,
                               const felix_rec_header *hdr, const felix_rec_options *opts);
/**
 * Start a recording into an open descriptor (a file or a pipe; not closed by
 * the writer). Writing to a pipe whose reader went away gives FELIX_EPIPE,
 * never a SIGPIPE.
 */
int felix_rec_writer_open_fd(felix_rec_writer **out, int fd, const felix_rec_header *hdr,
                             const felix_rec_options *opts);
/**
 * Write a sample: the snapshot's threads, its memory regions when it has
 * them, the segment's Head/Size when changed, anomalies when any. info
 * (may be NULL) gives thread names (stored when first seen or changed) and
 * CPU times. Thread started/exited events are written from the change of the
 * thread set; when the snapshot's image differs from the previous sample's
 * (an exec), an FELIX_EV_EXEC event is written, every thread of the old
 * image is reported exited and every thread of the new one started, and the
 * sample starts a new chunk (it may have another slot layout).
 * A call writes the whole sample or none of it. Errors that write nothing
 * (the call can be made again): FELIX_ENOMEM, FELIX_EINVAL (time going
 * backwards), FELIX_ERANGE (more than 32,768 threads or 4 MiB of thread
 * slots: more than a recording holds, docs/recording-format.md "Limits").
 * Errors after the first byte (FELIX_ENOSPC, FELIX_EPIPE, FELIX_EIO, or
 * FELIX_ENOMEM inside zstd) leave the writer failed for good: every later
 * call returns the same error, and the file holds every sample written
 * before, each one whole.
 */
int felix_rec_write_sample(felix_rec_writer *w, const felix_snapshot *snap,
                           const felix_rec_thread_info *info, size_t ninfo);
/** Write an event (kinds 3-6; 1 and 2 are written by felix_rec_write_sample). */
int felix_rec_write_event(felix_rec_writer *w, const felix_rec_event *ev);
/** Samples written so far. */
uint64_t felix_rec_writer_samples(const felix_rec_writer *w);
/** Bytes written to the file so far. */
uint64_t felix_rec_writer_bytes(const felix_rec_writer *w);
/**
 * Finish: the end item (with reason, may be NULL), the last frame and the
 * index; then free the writer (also on error). Closes the file when the
 * writer opened it.
 */
int felix_rec_writer_close(felix_rec_writer *w, const char *reason);

/* ---- reader ---- */

typedef struct felix_rec_reader felix_rec_reader;

/** What felix_rec_next() read. */
enum felix_rec_item {
    FELIX_REC_SAMPLE = 1, /**< a snapshot was filled */
    FELIX_REC_EVENT = 2,  /**< an event was filled */
    FELIX_REC_END = 3     /**< the end item: the recording was closed normally */
};

/** Open a recording by path ("-" reads standard input). Reads the header.
 *  Errors: FELIX_ENOSTATS (missing), FELIX_EACCES, FELIX_ECORRUPT,
 *  FELIX_ETRUNC, FELIX_EVERSION (a newer format version). */
int felix_rec_reader_open_path(felix_rec_reader **out, const char *path);
/** Open from a descriptor (not closed by the reader; may be a pipe). */
int felix_rec_reader_open_fd(felix_rec_reader **out, int fd);
/** Free (NULL is allowed). Closes the file when the reader opened it. */
void felix_rec_reader_close(felix_rec_reader *r);
/** The header. */
const felix_rec_header *felix_rec_reader_header(const felix_rec_reader *r);

/**
 * Read the next item. For a sample, snap is filled (times are CLOCK_MONOTONIC
 * and wall ns as when recorded, slot offsets as recorded: 0 in format 1);
 * for an event, ev. Either may be NULL when the caller does not want that
 * kind (the item is still consumed). A sample's thread starts and exits
 * (a thread restarted in place or a reused TID: an exit and a start) come as
 * events before it, with its time, whether the recording held them as event
 * items or, in format 2, in the sample's thread links.
 * Returns FELIX_EEOF after the end item, at the end of the data. A recording
 * that ends without its end item (never closed: the recorder was killed, the
 * disk filled, or it is still being written) gives FELIX_ETRUNC there. On
 * damage, FELIX_ECORRUPT with felix_error_detail() naming the byte offset.
 * Either way every whole item before was returned, each checked against its
 * CRC when the recording carries them (a recording whose header carries one
 * must carry one in every item); no item is returned unchecked. FELIX_EAGAIN: a non-blocking descriptor has no
 * more data yet (call again later; nothing is lost). FELIX_ENOMEM: nothing
 * was consumed and snap is untouched; call again once memory is back.
 * Memory is bounded whatever the file declares (docs/recording-format.md,
 * "Limits"): items past those limits are FELIX_ECORRUPT.
 */
int felix_rec_next(felix_rec_reader *r, felix_snapshot *snap, felix_rec_event *ev, int *out_item);
/** Read until the next sample (events are skipped). FELIX_EEOF at the end. */
int felix_rec_next_sample(felix_rec_reader *r, felix_snapshot *snap);

/**
 * Damage the reader met and worked around, as one line naming it (a missing
 * or wrong index, rebuilt by scanning), or NULL. Damage it cannot work
 * around is an error of felix_rec_next() instead.
 */
const char *felix_rec_reader_warning(const felix_rec_reader *r);

/** Name recorded for a thread (NULL when none), as of the last item read. */
const char *felix_rec_thread_name(const felix_rec_reader *r, uint32_t tid);
/** Host CPU ns (utime + stime) of a thread as measured at the last sample
 *  read; 0 on success, FELIX_EINVAL when that sample did not measure it (the
 *  recorder measures at its slow interval). */
int felix_rec_thread_cpu_ns(const felix_rec_reader *r, uint32_t tid, uint64_t *out);
/** Number of the last sample read (0-based), or -1 before the first. */
int64_t felix_rec_sample_number(const felix_rec_reader *r);
/** Compressed bytes of input consumed so far. */
uint64_t felix_rec_offset(const felix_rec_reader *r);

/**
 * Total samples and the time of the last chunk start (ns since the origin)
 * from the index, reading or rebuilding it (by scanning) as needed.
 * Errors: FELIX_ENOTSUP (input not seekable), FELIX_ENOMEM (this, the seeks
 * and felix_rec_region_names leave the read position undefined then: seek
 * again; felix_rec_seek_sample(r, 0) needs no memory).
 */
int felix_rec_summary(felix_rec_reader *r, uint64_t *out_samples, int64_t *out_last_chunk_ns);
/**
 * Position so that the next sample read is sample n (0-based); FELIX_ERANGE
 * past the end. Uses the index (rebuilt by scanning when missing).
 * Errors: FELIX_ENOTSUP (input not seekable).
 */
int felix_rec_seek_sample(felix_rec_reader *r, uint64_t n);
/** Position so that the next sample read is the first at or after t ns
 *  since the monotonic origin. FELIX_ERANGE past the end. */
int felix_rec_seek_time(felix_rec_reader *r, int64_t t_ns);
/** Region names present anywhere in the recording (from the index, or a
 *  scan); count in *out_n. Seekable input only (FELIX_ENOTSUP). */
int felix_rec_region_names(felix_rec_reader *r, const char *const **out_names, size_t *out_n);

#ifdef __cplusplus
}
#endif
#endif

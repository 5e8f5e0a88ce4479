/*
 * Sources: one way to get snapshots, from a live FEX process or from a
 * recording, with the same lifecycle events either way.
 *
 * felix_source_next() hands out items in order: a sample (a snapshot), an
 * event, or the end. A sample's thread starts and exits, and an exec, come
 * as events just before it, with its time: for a recording, as the reader
 * gives them; live, computed from the change of the thread set with the
 * same rule the recording writer and felix_delta use (a thread restarted in
 * place or a reused TID is an exit and a start; a new image exits every old
 * thread and starts every new one, after an FELIX_EV_EXEC event). The first
 * sample has no thread events. Live, when the process exits,
 * FELIX_EV_PROCESS_EXITED comes (with the wait status for a child opened
 * with FELIX_SOURCE_CHILD), then FELIX_REC_END; a recording ends with its end
 * item. After the end, FELIX_EEOF.
 *
 * Live, every call takes a sample now (a source never sleeps: the caller
 * keeps the time, and may poll felix_source_fd() to learn of an exit).
 * Memory regions, thread names and CPU times, which cost /proc reads, are
 * read at most every slow_ns; names when a thread is first seen (at most 64
 * new threads a sample) and at every tenth slow sample, and only for TIDs
 * the process really has. Measured CPU times go into the snapshot
 * (felix_snapshot_thread_cpu_ns), where felix_delta finds them.
 *
 * A source is used by one thread at a time.
 */
#ifndef FELIX_SOURCE_H
#define FELIX_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <felix/record.h>
#include <felix/shm.h>
#include <felix/snapshot.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Flags of felix_source_options. */
enum felix_source_flags {
    /** Live: do not read FEX's memory regions (smaps costs milliseconds in a
     *  process with thousands of mappings). */
    FELIX_SOURCE_NO_MEMORY = 1u << 0,
    /** Live: the process is the caller's child: reap it at its exit and give
     *  the wait status in FELIX_EV_PROCESS_EXITED. */
    FELIX_SOURCE_CHILD = 1u << 1,
    /** Live: no thread names or CPU times (no per-thread /proc reads). */
    FELIX_SOURCE_NO_THREAD_INFO = 1u << 2
};

/** Options of a source. Caller-filled: start from FELIX_SOURCE_OPTIONS_INIT;
 *  zero fields mean the default. */
typedef struct felix_source_options {
    unsigned version;    /**< FELIX_SOURCE_OPTIONS_VERSION */
    unsigned flags;      /**< enum felix_source_flags bits */
    int64_t interval_ns; /**< live: the sampling interval the header states (default 1 s) */
    int64_t slow_ns;     /**< live: memory regions, names and CPU times at most this often (default 1 s) */
    unsigned shm_flags;  /**< live: enum felix_shm_flags for attaching */
} felix_source_options;

#define FELIX_SOURCE_OPTIONS_VERSION 1
#define FELIX_SOURCE_OPTIONS_INIT {.version = FELIX_SOURCE_OPTIONS_VERSION}
/** The same as FELIX_SOURCE_OPTIONS_INIT, for languages without designated initializers. */
void felix_source_options_init(felix_source_options *p);

typedef struct felix_source felix_source;

/**
 * Attach to process pid's statistics (opts may be NULL). The header is made
 * now: this host, its counter frequency, the process's name and command
 * line, FEX's version and layout, and the start times.
 * Errors: those of felix_shm_open_pid() (FELIX_ESRCH, FELIX_ENOSTATS,
 * FELIX_ESTALE, FELIX_EACCES, FELIX_EOWNER, FELIX_ETRUNC, FELIX_EVERSION,
 * FELIX_ECORRUPT), FELIX_ENOTSUP (no counter frequency), FELIX_EINVAL (bad
 * options), FELIX_ENOMEM.
 */
int felix_source_open_pid(felix_source **out, pid_t pid, const felix_source_options *opts);
/**
 * Attach to a segment or a saved image by path. When the path names a live
 * process (/dev/shm/fex-<pid>-stats), as felix_source_open_pid(); otherwise
 * there is no process: no names, CPU times, memory or exit, only samples.
 * Errors as felix_source_open_pid(), FELIX_ENOSTATS when the file is missing.
 */
int felix_source_open_path(felix_source **out, const char *path, const felix_source_options *opts);
/**
 * Open a recording by path ("-": standard input) or descriptor (not closed
 * by the source). Errors: those of felix_rec_reader_open_path().
 */
int felix_source_open_recording(felix_source **out, const char *path, const felix_source_options *opts);
int felix_source_open_recording_fd(felix_source **out, int fd, const felix_source_options *opts);
/** Free (NULL is allowed). */
void felix_source_close(felix_source *s);

/** 1 for a live process, 0 for a recording. */
int felix_source_is_live(const felix_source *s);
/** The header: made at attach time (live) or the recording's. Library-owned. */
const felix_rec_header *felix_source_header(const felix_source *s);
/** The recording's reader (seeking, region names, warnings), or NULL live. */
felix_rec_reader *felix_source_reader(felix_source *s);
/** The attached segment (its info: Head, Size, image), or NULL for a recording. */
felix_shm *felix_source_shm(felix_source *s);
/** Live: a descriptor that polls readable when the process exits, or -1
 *  (a recording, no pidfd on this kernel, or no process). */
int felix_source_fd(const felix_source *s);

/**
 * The next item: *out_item is FELIX_REC_SAMPLE (snap filled), FELIX_REC_EVENT
 * (ev filled; start it from FELIX_REC_EVENT_INIT) or FELIX_REC_END. snap or
 * ev may be NULL when the caller does not want that kind (the item is still
 * consumed). Errors: FELIX_EEOF (after the end), FELIX_ERESTART (live: the
 * process is exec'ing or starting, nothing delivered: call again later),
 * FELIX_ENOMEM (nothing consumed), the recording reader's errors
 * (FELIX_ETRUNC, FELIX_ECORRUPT, FELIX_EAGAIN, see felix_rec_next()), and
 * live, felix_shm_snapshot()'s (FELIX_ETRUNC, FELIX_EVERSION,
 * FELIX_ECORRUPT, FELIX_EIO: the numbers stopped; the source stays usable).
 */
int felix_source_next(felix_source *s, felix_snapshot *snap, felix_rec_event *ev, int *out_item);

/**
 * Live: the caller changed its sampling interval; FELIX_EV_INTERVAL_CHANGED
 * comes as the next item (as a recording made with it holds).
 * Errors: FELIX_ENOTSUP (a recording), FELIX_EINVAL (ns <= 0).
 */
int felix_source_set_interval(felix_source *s, int64_t ns);
/** Live: turn reading memory regions on or off (FELIX_SOURCE_NO_MEMORY);
 *  turned on, they are read at the next sample. FELIX_ENOTSUP: a recording. */
int felix_source_set_memory(felix_source *s, int on);

/** A thread's name as known at the last sample delivered, or NULL. */
const char *felix_source_thread_name(const felix_source *s, uint32_t tid);
/**
 * The last sample's per-thread facts, for felix_rec_write_sample(): live,
 * names read at that sample and CPU times measured then; from a recording,
 * every known name and the CPU times measured in that sample. Valid until
 * the next call on the source. Never fails; *out_n may be 0.
 */
void felix_source_thread_info(felix_source *s, const felix_rec_thread_info **out, size_t *out_n);

/**
 * Recordings: position so that the next item is sample n (0-based) or the
 * first sample at or after t_ns since the monotonic origin; total samples.
 * Errors: FELIX_ENOTSUP (live, or input that is not seekable), FELIX_ERANGE
 * (past the end), and felix_rec_seek_sample()'s.
 */
int felix_source_seek_sample(felix_source *s, uint64_t n);
int felix_source_seek_time(felix_source *s, int64_t t_ns);
int felix_source_summary(felix_source *s, uint64_t *out_samples, int64_t *out_last_chunk_ns);

#ifdef __cplusplus
}
#endif
#endif

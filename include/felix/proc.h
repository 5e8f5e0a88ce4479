/*
 * FEX processes: finding them through their statistics segments, their tree,
 * command lines, thread names and CPU times, liveness, PID reuse, and exit.
 * Everything here reads /proc and /dev/shm; nothing is written.
 * Functions that take only a PID are thread safe; a list or a watch is used
 * by one thread at a time.
 */
#ifndef FELIX_PROC_H
#define FELIX_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A segment's state (felix_proc_entry.state). */
enum felix_proc_state {
    FELIX_PROC_LIVE = 0,        /**< its process is alive */
    FELIX_PROC_STALE_DEAD = 1,  /**< no process with that PID */
    FELIX_PROC_STALE_REUSED = 2 /**< the PID now belongs to a newer process */
};

/** A FEX process found through its segment. Owned by the list. */
typedef struct felix_proc_entry {
    pid_t pid;
    pid_t ppid;            /**< parent PID (0 when unknown) */
    int state;             /**< enum felix_proc_state */
    int depth;             /**< depth in the tree of FEX processes (0 = root) */
    uint32_t uid;          /**< the process's user (the segment's when stale) */
    uint64_t start_ticks;  /**< process start time, clock ticks after boot */
    char name[32];         /**< /proc/<pid>/comm */
    char cmdline[512];     /**< arguments joined by spaces, cut to fit */
    char path[64];         /**< the segment's path */
} felix_proc_entry;

typedef struct felix_proc_list felix_proc_list;

/** Create an empty list. */
int felix_proc_list_new(felix_proc_list **out);
/** Free (NULL is allowed). */
void felix_proc_list_free(felix_proc_list *l);
/**
 * Scan dir (NULL = "/dev/shm") for fex-<pid>-stats segments. Entries come
 * in tree order: each FEX process after its nearest FEX ancestor, siblings
 * by PID, stale ones last. Errors: FELIX_EIO, FELIX_ENOMEM.
 */
int felix_proc_list_scan(felix_proc_list *l, const char *dir);
/** Entries found by the last scan (0 for NULL). */
size_t felix_proc_list_count(const felix_proc_list *l);
/** Entry i in tree order, or NULL when out of range; valid until the next
 *  scan or free. */
const felix_proc_entry *felix_proc_list_get(const felix_proc_list *l, size_t i);

/**
 * Process start time in clock ticks after boot (/proc/<pid>/stat field 22),
 * which with the PID identifies a process across PID reuse.
 * Errors: FELIX_ESRCH.
 */
int felix_proc_start_time(pid_t pid, uint64_t *out);
/** Parent PID. Errors: FELIX_ESRCH. */
int felix_proc_ppid(pid_t pid, pid_t *out);
/** Process name (comm) into buf. Errors: FELIX_ESRCH. */
int felix_proc_name(pid_t pid, char *buf, size_t len);
/** Command line, arguments joined by spaces, into buf (cut to fit). */
int felix_proc_cmdline(pid_t pid, char *buf, size_t len);
/** A thread's name (/proc/<pid>/task/<tid>/comm). Errors: FELIX_ESRCH. */
int felix_proc_thread_name(pid_t pid, pid_t tid, char *buf, size_t len);
/** A thread's host CPU time (utime + stime) in ns. Errors: FELIX_ESRCH. */
int felix_proc_thread_cpu_ns(pid_t pid, pid_t tid, uint64_t *out);
/**
 * Whether the process that had start time start_ticks is still alive under
 * pid: 1 alive, 0 gone or its PID reused (start_ticks 0: only pid checked).
 */
int felix_proc_alive(pid_t pid, uint64_t start_ticks);

/**
 * New FEX processes, as they start: a watch remembers the processes whose
 * segments exist when it is opened, by PID and start time (so a PID that is
 * reused later still counts as new), and reports each live process that
 * appears afterwards once.
 */
typedef struct felix_proc_starts felix_proc_starts;

/** Open a watch over dir (NULL: "/dev/shm"). Errors: FELIX_EIO, FELIX_ENOMEM. */
int felix_proc_starts_open(felix_proc_starts **out, const char *dir);
/** Free (NULL is allowed). */
void felix_proc_starts_close(felix_proc_starts *w);
/**
 * Rescan; *out is the next live FEX process not reported or present before
 * (tree order), or NULL when there is none yet. Non-blocking: call it
 * periodically. The entry is valid until the next call or close.
 * Errors: FELIX_EIO, FELIX_ENOMEM (then call again).
 */
int felix_proc_starts_next(felix_proc_starts *w, const felix_proc_entry **out);

/** Exit notification for one process. */
typedef struct felix_proc_watch felix_proc_watch;

enum felix_proc_watch_flags {
    /** The process is the caller's child: reap it and report its status. */
    FELIX_PROC_WATCH_CHILD = 1u << 0
};

/**
 * Watch pid for exit: through a pidfd where the kernel has them (pollable,
 * see felix_proc_watch_fd()), else by polling liveness with the start time.
 * Errors: FELIX_ESRCH (already gone), FELIX_ENOMEM.
 */
int felix_proc_watch_open(felix_proc_watch **out, pid_t pid, unsigned flags);
/** Stop watching (NULL is allowed). */
void felix_proc_watch_close(felix_proc_watch *w);
/** A descriptor that polls readable when the process exits, or -1 when the
 *  kernel has no pidfd (then call felix_proc_watch_check() periodically). */
int felix_proc_watch_fd(const felix_proc_watch *w);
/**
 * Non-blocking check. *out_exited: 1 when the process is gone.
 * *out_status (may be NULL): the wait status for a child watched with
 * FELIX_PROC_WATCH_CHILD, else -1 (unknown).
 */
int felix_proc_watch_check(felix_proc_watch *w, int *out_exited, int *out_status);

#ifdef __cplusplus
}
#endif
#endif

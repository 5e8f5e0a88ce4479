/* The live sampling step felix-rec and felix-top share: a snapshot of the
 * segment, memory regions and thread details at a slower cadence, and the
 * per-thread facts a recording stores (names when first seen, CPU times). */
#ifndef FELIX_TOOLS_LIVE_H
#define FELIX_TOOLS_LIVE_H

#include <felix/felix.h>

typedef struct live {
    pid_t pid;
    felix_shm *shm;
    int64_t slow_ns;         /* memory, names and CPU times at most this often */
    int mem;                 /* sample memory regions */
    int64_t last_slow;
    uint64_t slow_count;     /* slow samples taken */
    felix_snapshot *prev;    /* the last snapshot taken, for "first seen" */
    int have_prev;
    felix_rec_thread_info *info;
    char (*names)[32];
    size_t ninfo, cap;
    uint32_t *tasks;         /* the process's real TIDs (sorted), at the last slow sample */
    size_t ntasks, tasks_cap;
} live;

/* Attach to pid. slow_ns: the slow cadence (memory off when mem is 0). */
int live_open(live *l, pid_t pid, int64_t slow_ns, int mem);
void live_close(live *l);
/* Take a snapshot into snap; fills l->info/l->ninfo for the recording.
 * *slow says whether the slow data was sampled this time. FELIX_ERESTART:
 * the process is starting or exec'ing (no data this time; go on).
 * Per-thread /proc reads are bounded: names of at most 64 newly seen threads
 * a sample, and otherwise only for TIDs the process really has. */
int live_sample(live *l, felix_snapshot *snap, int *slow);

/* A recording header for the attached process, starting now. */
int live_header(live *l, felix_rec_header *h, int64_t interval_ns);

/* CLOCK_MONOTONIC now, in ns. */
int64_t live_now(void);

#endif

/*
 * A recording's summary: duration, samples, mean and peak FEX load, totals,
 * busiest threads, intervals over the frame budget, peak memory, spikes.
 * One accumulator for felix-csv --summary and felix-report, so the two agree
 * exactly. Frames come from felix_delta; baselines are not passed.
 */
#ifndef FELIX_TOOLS_SUMMARY_H
#define FELIX_TOOLS_SUMMARY_H

#include <felix/felix.h>
#include <stddef.h>
#include <stdint.h>

struct sum_thread {
    uint32_t tid;
    char name[32];
    uint64_t jit;    /* JIT ticks */
    uint64_t signal; /* signal ticks */
    uint64_t blocks; /* blocks compiled */
    uint64_t over;   /* intervals over the frame budget */
};

#define SUMMARY_SPIKES 50

typedef struct tool_summary {
    uint64_t frames;
    double first_t, last_t, load_weighted, time_total, peak_load, peak_t;
    uint64_t d[FELIX_NCOUNTERS];
    struct sum_thread *t;
    size_t nt, tcap;
    uint32_t *idx; /* open addressing: tid -> t index + 1 */
    size_t icap;
    uint64_t nspikes, missed;
    uint64_t peak_rss, peak_fex; /* the whole process's, and FEX's at that sample */
    unsigned fps;
    struct {
        double t;
        unsigned flags;
    } spikes[SUMMARY_SPIKES];
} tool_summary;

/* The summary's totals, in the order and under the keys felix-csv --summary
 * prints them (the times in seconds, then the counts); felix-report's header
 * carries the same keys. */
#define SUMMARY_NTIMES 4
#define SUMMARY_NCOUNTS 5
extern const int summary_time_counters[SUMMARY_NTIMES];
extern const char *const summary_time_keys[SUMMARY_NTIMES];
extern const int summary_count_counters[SUMMARY_NCOUNTS];
extern const char *const summary_count_keys[SUMMARY_NCOUNTS];

void summary_init(tool_summary *s, unsigned fps);
void summary_free(tool_summary *s);
/* A frame (not a baseline) ending at t s since the recording's start, whose
 * interval began at prev_t; names (may be NULL) gives thread names. */
void summary_frame(tool_summary *s, const felix_delta *d, double t, double prev_t, const felix_source *names);
/* A memory sample. */
void summary_mem(tool_summary *s, const felix_mem *m);
/* Mean FEX load over the frames, weighted by interval. */
double summary_mean_load(const tool_summary *s);
/* Sort the threads: most JIT time first; most intervals over budget first. */
void summary_sort_by_jit(tool_summary *s);
void summary_sort_by_over(tool_summary *s);
/* " high-JIT high-SMC ..." for a frame's flags. */
void summary_flag_names(unsigned flags, char *buf, size_t len);

#endif

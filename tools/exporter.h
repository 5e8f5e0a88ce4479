/*
 * The exporter's scrape: every FEX process in a directory of statistics
 * objects, sampled now, as Prometheus text or OpenMetrics. No HTTP here:
 * felix-exporter serves it, and the benchmark and --textfile call it alone.
 *
 * A process is known by its PID and start time. Each keeps a felix_source
 * and a felix_delta, so its counters are the cumulative totals of every
 * thread seen since the exporter first saw it, exited threads included
 * (felix_frame.cum); a process that is gone leaves the next scrape.
 * One exporter is used by one thread at a time.
 */
#ifndef FELIX_TOOLS_EXPORTER_H
#define FELIX_TOOLS_EXPORTER_H

#include <stddef.h>

typedef struct exp_options {
    const char *dir;      /* where the objects are (NULL: /dev/shm) */
    int threads;          /* per-thread series too */
    unsigned max_threads; /* per process, the ones with the most JIT + signal time */
    int all;              /* also objects with no live process (saved images, crashed FEX) */
    int memory;           /* memory regions (smaps, of processes we may read) */
} exp_options;

#define EXP_DEFAULT_MAX_THREADS 32
#define EXP_MAX_MAX_THREADS 4096

typedef struct exporter exporter;

/* 0, or -1 (out of memory). */
int exp_new(exporter **out, const exp_options *o);
void exp_free(exporter *e);

/* Sample every process and render. *out (not NUL-terminated) is valid until
 * the next call. Returns 0, or -1 when out of memory (nothing rendered). */
int exp_scrape(exporter *e, int openmetrics, const char **out, size_t *len);

/* Processes reported by the last scrape. */
size_t exp_processes(const exporter *e);

#endif

/* A recording as a Perfetto trace (perfetto.protos.Trace, protobuf), written
 * as it goes with memory bounded by the live threads: field numbers from
 * Perfetto's public .proto definitions (tests/perfetto/felix_trace.proto
 * holds the subset used). Tracks: the process (PID, name) with counter
 * tracks for FEX load, JIT / signal / cache-lock time in ms per second, the
 * per-second rates and memory per region in bytes; a thread track per thread
 * (a TID that comes back is a new track) with its load counter. Instant
 * events: the history flags, exec, exit, thread start and exit, interval
 * changes, missed samples. Timestamps are the recording's CLOCK_MONOTONIC ns,
 * tied to REALTIME (and BOOTTIME when recorded) by a clock snapshot. */
#ifndef FELIX_TOOLS_PERFETTO_H
#define FELIX_TOOLS_PERFETTO_H

#include <felix/felix.h>

/* Where the trace's bytes go (in order). */
typedef void (*pf_put)(const void *bytes, size_t n);

typedef struct pf pf;

/* Start a trace: the clock snapshot, the process track, its counter tracks.
 * Returns NULL out of memory. */
pf *pf_open(pf_put put, const felix_rec_header *h);
void pf_close(pf *p);
/* A frame (not a baseline): counters, thread tracks as threads start, and
 * instants for its flags and thread starts and exits. names may be NULL. */
int pf_frame(pf *p, const felix_delta *d, const felix_snapshot *cur, const felix_source *names);
/* A recording event: exec, process exit, interval change, samples missed
 * (thread events come from the frames). */
void pf_event(pf *p, const felix_rec_event *ev);

#endif

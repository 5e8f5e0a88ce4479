/* Example: the same loop for a live FEX process and for a recording, through
 * felix_source: print its lifecycle events (exec, thread starts and exits,
 * interval changes, exit) and the FEX load of every tenth sample.
 * Build: cc felix-events.c $(pkg-config --cflags --libs libfelix)
 * Usage: felix-events PID [SECONDS]      (live, sampled every 100 ms)
 *        felix-events RECORDING          (a felix-rec file, or - for stdin) */
#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *kind_name(int kind)
{
    switch (kind) {
    case FELIX_EV_THREAD_STARTED: return "thread started";
    case FELIX_EV_THREAD_EXITED: return "thread exited";
    case FELIX_EV_INTERVAL_CHANGED: return "interval changed";
    case FELIX_EV_SAMPLES_MISSED: return "samples missed";
    case FELIX_EV_PROCESS_EXITED: return "process exited";
    case FELIX_EV_STOPPED: return "recording stopped";
    case FELIX_EV_EXEC: return "exec";
    default: return "event";
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PID [SECONDS] | %s RECORDING\n", argv[0], argv[0]);
        return 2;
    }
    char *end;
    long pid = strtol(argv[1], &end, 10);
    int live = *end == '\0' && pid > 0;
    double seconds = argc > 2 ? atof(argv[2]) : -1;
    felix_source_options o = FELIX_SOURCE_OPTIONS_INIT;
    o.interval_ns = 100000000;
    o.flags = FELIX_SOURCE_NO_MEMORY;
    felix_source *src;
    int rc = live ? felix_source_open_pid(&src, (pid_t)pid, &o) : felix_source_open_recording(&src, argv[1], &o);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
        return 1;
    }
    const felix_rec_header *h = felix_source_header(src);
    felix_snapshot *snap[2];
    felix_delta *d;
    if (felix_snapshot_new(&snap[0]) < 0 || felix_snapshot_new(&snap[1]) < 0 ||
        felix_delta_new(&d, h->freq_hz, h->ncpus) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
        return 1;
    }
    printf("%s PID %d (%s), FEX %s\n", live ? "live" : "recording", (int)h->pid, h->name, h->fex_version);
    int cur = 0, have = 0, item;
    unsigned long samples = 0;
    for (;;) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        rc = felix_source_next(src, snap[cur], &ev, &item);
        if (rc == FELIX_EEOF)
            break;
        if (rc < 0 && rc != FELIX_ERESTART) { /* ERESTART: exec'ing, nothing this time */
            fprintf(stderr, "%s: %s\n", argv[0], felix_error_detail());
            break;
        }
        double t = 0;
        if (rc == 0 && item == FELIX_REC_EVENT) {
            t = (double)(ev.mono_ns - h->start_mono_ns) / 1e9;
            printf("%8.3f s  %s", t, kind_name(ev.kind));
            if (ev.tid)
                printf(" %u", ev.tid);
            if (ev.kind == FELIX_EV_PROCESS_EXITED && ev.has_status)
                printf(" (wait status %d)", ev.status);
            printf("\n");
        } else if (rc == 0 && item == FELIX_REC_SAMPLE) {
            const felix_snapshot_info *si = felix_snapshot_get_info(snap[cur]);
            t = (double)(si->mono_ns - h->start_mono_ns) / 1e9;
            if (felix_delta_compute(d, have ? snap[cur ^ 1] : NULL, snap[cur]) == 0 && samples++ % 10 == 0)
                printf("%8.3f s  FEX load %5.1f%%, %u threads\n", t, felix_delta_frame(d)->load_pct, si->nthreads);
            have = 1;
            cur ^= 1;
        }
        if (live && (rc != 0 || item == FELIX_REC_SAMPLE)) {
            if (seconds >= 0 && t >= seconds)
                break;
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL); /* a source never sleeps: the caller keeps the time */
        }
    }
    fflush(stdout);
    felix_delta_free(d);
    felix_snapshot_free(snap[0]);
    felix_snapshot_free(snap[1]);
    felix_source_close(src);
    return rc == FELIX_EEOF || rc == 0 ? 0 : 1;
}

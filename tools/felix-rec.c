/*
 * felix-rec: record a FEX process's statistics to a file or a pipe, headless.
 * Samples at absolute deadlines (no drift), memory and thread details at a
 * slower cadence, and finalizes the recording on every way out it can see.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "felix-rec";
static volatile int stop_watch;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-rec [OPTIONS] PID -o FILE\n"
            "       felix-rec [OPTIONS] --watch [--match REGEX] -o FILE\n"
            "Record a FEX process's statistics (FEX_PROFILESTATS=1) as raw snapshots in the felix\n"
            "recording format (zstd-compressed CBOR; see docs/recording-format.md). Every sample\n"
            "is flushed as it is written, so a killed recorder loses at most one sample.\n\n"
            "  -o, --output FILE      the recording ('-' writes to standard output); an existing\n"
            "                         file is never replaced unless --force is given, and a FEX\n"
            "                         statistics object (/dev/shm/fex-N-stats) never is\n"
            "  -f, --force            replace FILE if it exists\n"
            "  -i, --interval D       sampling interval: 250ms, 1s, 500us; a bare number is ms\n"
            "                         (default 1s, at least 1ms)\n"
            "      --mem-interval D   memory regions, thread names and CPU times at most this\n"
            "                         often (default 1s; 0 turns memory sampling off)\n"
            "  -d, --duration D       stop after D (e.g. 10m)\n"
            "  -w, --watch            wait for the next FEX process to start, then record it\n"
            "  -m, --match REGEX      choose among FEX processes by name or command line\n"
            "      --fsync            sync the file after every sample (power-loss safety)\n"
            "      --chunk D          start a new independent chunk after D (default 60s)\n"
            "  -q, --quiet            no status line (it is shown only when stderr is a terminal)\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n\n"
            "Stops and finalizes the recording when the process exits, at the end of --duration,\n"
            "or on SIGINT, SIGTERM or SIGHUP.\n\n"
            "A process that execs keeps its PID and recording goes on: FEX's new image truncates\n"
            "the statistics object and writes a new header. While it does (\"restarting\"), no\n"
            "sample is taken; the recording marks the exec, and no figure spans the two images.\n"
            "Attaching to a brand-new object waits up to 2 s for FEX to write its header.\n\n"
            "Exit status:\n"
            "  0    recorded until the process exited or the duration ended\n"            "  1    a sample larger than a recording holds (more than 32768 threads; the file is\n"
            "       closed and readable), or any other error (e.g. --help could not be written)\n"
            "  2    usage error, or an output that would destroy data (an existing file without\n"
            "       --force, a FEX statistics object)\n"
            "  3    no such process\n"
            "  4    no statistics: not a FEX process, FEX_PROFILESTATS off, a stale segment, or\n"
            "       something at the path that is not a FEX statistics object (a FIFO, a directory)\n"
            "  5    unsupported statistics version\n"
            "  6    permission denied (or a segment owned by another user)\n"
            "  7    I/O error (disk full, closed pipe): the file is readable up to the last sample\n"
            "  129, 130, 143  stopped by SIGHUP, SIGINT or SIGTERM (the recording is complete)\n");
}

int main(int argc, char **argv)
{
    enum { OPT_MEM = 256, OPT_FSYNC, OPT_CHUNK };
    static const struct option lo[] = {
        {"output", 1, 0, 'o'}, {"interval", 1, 0, 'i'}, {"mem-interval", 1, 0, OPT_MEM}, {"duration", 1, 0, 'd'},
        {"watch", 0, 0, 'w'},  {"match", 1, 0, 'm'},    {"fsync", 0, 0, OPT_FSYNC},      {"chunk", 1, 0, OPT_CHUNK},
        {"quiet", 0, 0, 'q'},  {"help", 0, 0, 'h'},     {"version", 0, 0, 'V'},        {"force", 0, 0, 'f'},
        {0, 0, 0, 0}};
    const char *out = NULL, *match = NULL;
    int64_t interval = 1000000000, mem_interval = 1000000000, duration = 0, chunk = 0;
    int watch = 0, quiet = 0, do_fsync = 0, force = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:i:d:wm:qfhV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'i':
            if (tool_parse_duration(optarg, 1000000, &interval) < 0 || interval < 1000000) {
                return tool_bad_value(prog, c, lo, optarg, "at least 1ms, e.g. 250ms, 1s");
            }
            break;
        case OPT_MEM:
            if (tool_parse_duration(optarg, 1000000, &mem_interval) < 0) {
                return tool_bad_value(prog, c, lo, optarg, "a duration, e.g. 1s; 0 turns memory sampling off");
            }
            break;
        case 'd':
            if (tool_parse_duration(optarg, 1000000000, &duration) < 0 || duration <= 0) {
                return tool_bad_value(prog, c, lo, optarg, "a duration above 0, e.g. 10m");
            }
            break;
        case OPT_CHUNK:
            if (tool_parse_duration(optarg, 1000000000, &chunk) < 0 || chunk <= 0) {
                return tool_bad_value(prog, c, lo, optarg, "a duration above 0, e.g. 10s");
            }
            break;
        case 'w': watch = 1; break;
        case 'm': match = optarg; break;
        case OPT_FSYNC: do_fsync = 1; break;
        case 'q': quiet = 1; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-rec %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
    }
    if (!out) {
        tool_error(prog, "no output: give -o FILE (or -o - for standard output)");
        return EXIT_USAGE;
    }
    pid_t pid = 0;
    if (optind < argc) {
        uint64_t v;
        if (watch || optind + 1 < argc || tool_parse_uint(argv[optind], 1, 0x7fffffff, &v) < 0) {
            tool_error(prog, "expected one PID in decimal digits (or --watch), got '%s'", argv[optind]);
            return EXIT_USAGE;
        }
        pid = (pid_t)v;
    } else if (!watch && !match) {
        tool_error(prog, "no process: give a PID, --watch or --match REGEX");
        return EXIT_USAGE;
    }
    int to_stdout = strcmp(out, "-") == 0;
    if (to_stdout && isatty(1)) {
        tool_error(prog, "refusing to write a binary recording to a terminal; redirect it or use -o FILE");
        return EXIT_USAGE;
    }
    if ((c = tool_check_output(prog, out, NULL, force)) != 0)
        return c;

    /* Signals arrive through a descriptor, so the loop sleeps in one poll. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    if (!pid) {
        pid = tool_pick_process(prog, match, watch, &stop_watch);
        if (pid < 0)
            return -pid;
    }
    /* Attaching may wait (bounded) for a header FEX has not written yet;
     * a signal until then ends us at once, with nothing recorded. */
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.interval_ns = interval;
    so.slow_ns = mem_interval > 0 ? mem_interval : 1000000000;
    so.flags = mem_interval > 0 ? 0 : FELIX_SOURCE_NO_MEMORY;
    felix_source *src;
    int rc = felix_source_open_pid(&src, pid, &so);
    if (rc < 0) {
        tool_error(prog, "%s", felix_error_detail());
        return tool_exit_status(rc);
    }
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a full disk: EFBIG, not death */
    if (interval < 1000000000) /* wake at the deadline, not up to 50 us after it */
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    const felix_rec_header *h = felix_source_header(src);
    uint64_t hz = h->freq_hz;
    int64_t start = h->start_mono_ns;
    felix_rec_options ro = FELIX_REC_OPTIONS_INIT;
    ro.fsync = do_fsync;
    ro.chunk_ns = chunk;
    felix_rec_writer *w;
    /* O_EXCL: a file that appeared since the check is not replaced either. */
    struct stat ost;
    int device = !to_stdout && stat(out, &ost) == 0 && !S_ISREG(ost.st_mode); /* /dev/null, a FIFO */
    int ofd = to_stdout ? 1
              : device  ? open(out, O_WRONLY | O_CLOEXEC)
                        : open(out, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
    if (ofd < 0) {
        int e = errno;
        tool_error(prog, e == EEXIST ? "refusing to replace %s, which exists (use --force to replace it)"
                                     : "cannot create %s: %s", out, strerror(e));
        felix_source_close(src);
        return e == EEXIST ? EXIT_USAGE : e == EACCES || e == EPERM ? EXIT_PERMISSION : EXIT_IO;
    }
    rc = felix_rec_writer_open_fd(&w, ofd, h, &ro);
    if (rc < 0) {
        tool_error(prog, "%s: %s", to_stdout ? "the output" : out, felix_error_detail());
        if (!to_stdout)
            close(ofd);
        felix_source_close(src);
        return tool_exit_status(rc);
    }
    int pfd = felix_source_fd(src); /* readable at the process's exit */

    felix_snapshot *snap;
    felix_delta *delta;
    felix_snapshot *prev;
    felix_snapshot_new(&snap);
    felix_snapshot_new(&prev);
    felix_delta_new(&delta, hz, 0);
    int status_line = !quiet && isatty(2);
    int exit_status = EXIT_OK, have_prev = 0;
    const char *reason = "duration";
    int64_t next = start, last_status = 0;
    double load = 0;
    for (;;) {
        int64_t now = tool_now();
        if (duration && now - start >= duration)
            break;
        /* Events first (thread events the writer derives itself); the
         * process's exit ends the recording. */
        int item = 0, exited = 0;
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        while ((rc = felix_source_next(src, snap, &ev, &item)) == 0 && item == FELIX_REC_EVENT)
            if (ev.kind == FELIX_EV_PROCESS_EXITED) {
                felix_rec_write_event(w, &ev);
                exited = 1;
                break;
            }
        if (exited || (rc == 0 && item == FELIX_REC_END)) {
            reason = "process exited";
            break;
        }
        if (rc < 0 && rc != FELIX_ERESTART) {
            tool_error(prog, "%s", felix_error_detail());
            reason = "segment error";
            exit_status = tool_exit_status(rc);
            break;
        }
        /* Restarting (the process is exec'ing): nothing to record this time;
         * the next image is recorded as it comes (the writer marks the exec). */
        if (rc == 0) {
            const felix_rec_thread_info *info;
            size_t ninfo;
            felix_source_thread_info(src, &info, &ninfo);
            if ((rc = felix_rec_write_sample(w, snap, info, ninfo)) < 0) {
                tool_error(prog, "%s (%s is readable up to the last sample written)", felix_error_detail(),
                           to_stdout ? "the output" : out);
                /* More threads than a recording holds: not an I/O error. */
                reason = rc == FELIX_ERANGE ? "a sample larger than a recording holds" : "I/O error";
                exit_status = rc == FELIX_ERANGE ? EXIT_FAILURE_GENERIC : EXIT_IO;
                break;
            }
            if (status_line && have_prev && felix_delta_compute(delta, prev, snap) == 0)
                load = felix_delta_frame(delta)->load_pct; /* only for the status line */
            felix_snapshot *tmp = prev;
            prev = snap;
            snap = tmp;
            have_prev = 1;
        }
        if (status_line && now - last_status >= 1000000000) {
            last_status = now;
            int64_t el = (now - start) / 1000000000;
            const felix_shm_info *shi = felix_shm_get_info(felix_source_shm(src));
            fprintf(stderr, "\r\033[K%s: PID %d  %02lld:%02lld:%02lld  %llu samples  %.1f KiB  FEX load %.1f%%%s", prog,
                    (int)pid, (long long)(el / 3600), (long long)(el / 60 % 60), (long long)(el % 60),
                    (unsigned long long)felix_rec_writer_samples(w), (double)felix_rec_writer_bytes(w) / 1024.0,
                    load, rc == FELIX_ERESTART ? "  restarting (exec)" : shi->image > 1 ? "  exec'd" : "");
        }
        /* The next deadline; count the ones we overran. */
        next += interval;
        now = tool_now();
        if (now > next) {
            uint64_t missed = (uint64_t)((now - next) / interval) + 1;
            felix_rec_event me = FELIX_REC_EVENT_INIT;
            me.kind = FELIX_EV_SAMPLES_MISSED;
            me.mono_ns = now;
            me.count = missed;
            felix_rec_write_event(w, &me);
            next += (int64_t)missed * interval;
        }
        if (duration && next > start + duration)
            next = start + duration;
        /* Sleep until the deadline, a signal, or the process's exit. */
        int got = 0;
        for (;;) {
            now = tool_now();
            if (now >= next)
                break;
            struct pollfd p[2] = {{sfd, POLLIN, 0}, {pfd, POLLIN, 0}};
            struct timespec left = {(time_t)((next - now) / 1000000000), (long)((next - now) % 1000000000)};
            int n = ppoll(p, pfd >= 0 ? 2 : 1, &left, NULL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0 && (p[0].revents & POLLIN)) {
                struct signalfd_siginfo fi;
                if (read(sfd, &fi, sizeof fi) == sizeof fi) {
                    got = (int)fi.ssi_signo;
                    break;
                }
            }
            if (n > 0 && pfd >= 0 && (p[1].revents & POLLIN)) {
                got = -1;
                break;
            }
        }
        if (got > 0) {
            static char why[32];
            snprintf(why, sizeof why, "signal %s", got == SIGINT ? "SIGINT" : got == SIGTERM ? "SIGTERM" : "SIGHUP");
            reason = why;
            exit_status = 128 + got;
            break;
        }
        /* got < 0: the process exited; the next turn takes the source's
         * exit event (without a pidfd, the source checks at each turn). */
    }
    if (exit_status != EXIT_IO) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        ev.kind = FELIX_EV_STOPPED;
        ev.mono_ns = tool_now();
        snprintf(ev.reason, sizeof ev.reason, "%s", reason);
        felix_rec_write_event(w, &ev);
    }
    uint64_t samples = felix_rec_writer_samples(w);
    rc = felix_rec_writer_close(w, reason);
    if (rc < 0 && exit_status != EXIT_IO) {
        tool_error(prog, "%s", felix_error_detail());
        exit_status = EXIT_IO;
    }
    if (!to_stdout && close(ofd) != 0 && exit_status != EXIT_IO) {
        tool_error(prog, "cannot write %s: %s", out, strerror(errno));
        exit_status = EXIT_IO;
    }
    if (status_line)
        fprintf(stderr, "\r\033[K");
    if (!quiet && isatty(2))
        fprintf(stderr, "%s: %llu samples of PID %d (%s)\n", prog, (unsigned long long)samples, (int)pid, reason);
    felix_snapshot_free(snap);
    felix_snapshot_free(prev);
    felix_delta_free(delta);
    felix_source_close(src);
    return exit_status;
}

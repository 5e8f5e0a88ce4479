/* Benchmark: recordings. Writes a synthetic 24-hour, 32-thread, 1 Hz
 * recording shaped like felix-sim's steady scenario (timing noise on the
 * times, exact counts), then prints: encode throughput, bytes per
 * thread-sample, decode throughput (thread-rows/s), the reader's peak RSS,
 * and the time to open the recording and seek to its middle.
 * Usage: bench_record [FILE] (the recording is kept when FILE is given). */
#include "bench_common.h"

#include <felix/felix.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 32, SAMPLES = 86400 };

static uint64_t rng = 88172645463325252ull;
static double noise(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

int main(int argc, char **argv)
{
    char path[256];
    snprintf(path, sizeof path, "%s", argc > 1 ? argv[1] : "/tmp/felix-bench-24h.felix");
    const uint64_t F = 1000000000; /* ticks per second */
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    snprintf(h.host, sizeof h.host, "bench");
    h.ncpus = 8;
    h.freq_hz = F;
    snprintf(h.freq_source, sizeof h.freq_source, "bench");
    h.page_size = 4096;
    h.pid = 1;
    h.stats_version = 2;
    h.thread_stats_size = 80;
    h.start_mono_ns = 1000000000;
    h.interval_ns = 1000000000;
    felix_rec_writer *w;
    if (felix_rec_writer_open_path(&w, path, &h, NULL) < 0) {
        fprintf(stderr, "bench_record: %s\n", felix_error_detail());
        return 1;
    }
    felix_snapshot *s;
    felix_snapshot_new(&s);
    uint64_t acc[THREADS][9] = {{0}};
    static const double share[4] = {0, 0.02, 0.01, 0.005};
    int64_t t0 = bench_ns();
    for (int i = 0; i < SAMPLES; i++) {
        /* Sampling jitter of ~50 us around each second. */
        int64_t mono = h.start_mono_ns + (int64_t)i * 1000000000 + (int64_t)(noise() * 50000);
        felix_snapshot_begin(s, mono, 1700000000000000000LL + mono, 80);
        for (uint32_t k = 1; k <= THREADS; k++) {
            uint64_t *a = acc[k - 1];
            double jit = (double)(k % 10 + 1) * 0.05;
            /* Times: the share of a second, with 0.1% timing noise. */
            a[FELIX_C_JIT_TIME] += (uint64_t)(jit * (double)F * (1 + 0.001 * noise()));
            a[FELIX_C_SIGNAL_TIME] += (uint64_t)(share[1] * (double)F * (1 + 0.001 * noise()));
            a[FELIX_C_CACHE_RDLOCK] += (uint64_t)(share[2] * (double)F * (1 + 0.001 * noise()));
            a[FELIX_C_CACHE_WRLOCK] += (uint64_t)(share[3] * (double)F * (1 + 0.001 * noise()));
            a[FELIX_C_JIT_COUNT] += 100 * k;
            a[FELIX_C_SMC] += k;
            a[FELIX_C_SIGBUS] += 10 * k;
            a[FELIX_C_SOFTFLOAT] += 1000 * k;
            a[FELIX_C_CACHE_MISS] += 50 * k;
            felix_snapshot_append(s, 1000 + k, 64 + 80 * k, a, 9);
        }
        if (felix_rec_write_sample(w, s, NULL, 0) < 0) {
            fprintf(stderr, "bench_record: %s\n", felix_error_detail());
            return 1;
        }
    }
    uint64_t bytes = felix_rec_writer_bytes(w);
    felix_rec_writer_close(w, "bench");
    double enc_s = (double)(bench_ns() - t0) / 1e9;
    printf("encode: %d samples x %d threads in %.2f s: %.2f M thread-rows/s\n", SAMPLES, THREADS, enc_s,
           (double)SAMPLES * THREADS / enc_s / 1e6);
    printf("size: %.2f MB for 24 h x %d threads x 1 Hz: %.2f bytes per thread-sample\n", (double)bytes / 1e6, THREADS,
           (double)bytes / ((double)SAMPLES * THREADS));

    /* Decode in a child, so its peak RSS is the reader's alone. */
    int pfd[2];
    if (pipe(pfd) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        felix_rec_reader *r;
        felix_snapshot *snap;
        felix_snapshot_new(&snap);
        int64_t a = bench_ns();
        if (felix_rec_reader_open_path(&r, path) < 0)
            _exit(1);
        uint64_t rows = 0;
        while (felix_rec_next_sample(r, snap) == 0)
            rows += felix_snapshot_get_info(snap)->nthreads;
        double dt = (double)(bench_ns() - a) / 1e9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double res[3] = {(double)rows, dt, (double)ru.ru_maxrss};
        if (write(pfd[1], res, sizeof res) != sizeof res)
            _exit(1);
        _exit(0);
    }
    double res[3] = {0};
    close(pfd[1]);
    if (read(pfd[0], res, sizeof res) != sizeof res)
        return 1;
    waitpid(child, NULL, 0);
    printf("decode: %.0f thread-rows in %.2f s: %.2f M thread-rows/s\n", res[0], res[1], res[0] / res[1] / 1e6);
    printf("reader peak RSS (whole process, libc included): %.1f MB\n", res[2] / 1024.0);

    /* Open and seek to the middle, through the index. */
    int64_t best = INT64_MAX;
    for (int k = 0; k < 5; k++) {
        int64_t a = bench_ns();
        felix_rec_reader *r;
        if (felix_rec_reader_open_path(&r, path) < 0 || felix_rec_seek_sample(r, SAMPLES / 2) < 0 ||
            felix_rec_next_sample(r, s) < 0)
            return 1;
        int64_t b = bench_ns() - a;
        if (b < best)
            best = b;
        felix_rec_reader_close(r);
    }
    printf("open + seek to the middle + read a sample: %.2f ms\n", (double)best / 1e6);
    felix_snapshot_free(s);
    if (argc <= 1)
        unlink(path);
    return res[0] == (double)SAMPLES * THREADS ? 0 : 1;
}

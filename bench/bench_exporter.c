/*
 * felix-exporter's scrape: 100 FEX processes x 64 threads (saved images in a
 * directory, as with --dir DIR --all), 10,000 scrapes. Prints the time per
 * scrape, the output size, the allocations per scrape and the heap in use
 * after the warm-up and at the end (its growth must be 0).
 * Usage: bench_exporter [SCRAPES]
 */
#include "alloc_count.h"
#include "bench_common.h"
#include "../tests/helpers.h"
#include "../tools/exporter.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPROC 100
#define NTHREADS 64

static void make_dir(const char *dir)
{
    for (unsigned p = 0; p < NPROC; p++) {
        img im;
        img_init(&im, 8192, 80);
        uint32_t offs[NTHREADS];
        for (unsigned i = 0; i < NTHREADS; i++) {
            uint64_t w[9];
            for (int k = 0; k < 9; k++)
                w[k] = (uint64_t)(p + 1) * 1000003u * (i + 1) + (uint64_t)k * 77;
            offs[i] = img_slot(&im, i, 100000 + p * 100 + i, w, 9);
        }
        img_link(&im, offs, NTHREADS);
        char path[512];
        /* PIDs above any pid_max (2^22): no live process has them. */
        snprintf(path, sizeof path, "%s/fex-%u-stats", dir, 5000000 + p);
        if (img_write(&im, path) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
        img_free(&im);
    }
}

static void run(const char *dir, int threads, int om, long scrapes)
{
    exp_options o = {.dir = dir, .all = 1, .threads = threads, .max_threads = NTHREADS};
    exporter *e;
    if (exp_new(&e, &o) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    int64_t *t = malloc((size_t)scrapes * sizeof *t);
    const char *out;
    size_t len = 0;
    size_t heap_warm = 0;
    unsigned long long allocs_warm = 0;
    long warm = scrapes / 100 > 10 ? scrapes / 100 : 10;
    for (long i = 0; i < scrapes; i++) {
        if (i == warm) {
            heap_warm = mallinfo2().uordblks;
            allocs_warm = bench_allocs;
        }
        int64_t t0 = bench_ns();
        if (exp_scrape(e, om, &out, &len) != 0) {
            fprintf(stderr, "scrape failed\n");
            exit(1);
        }
        t[i] = bench_ns() - t0;
    }
    size_t heap_end = mallinfo2().uordblks;
    unsigned long long allocs = bench_allocs - allocs_warm;
    if (exp_processes(e) != NPROC) {
        fprintf(stderr, "reported %zu processes, not %d\n", exp_processes(e), NPROC);
        exit(1);
    }
    double mean = 0;
    for (long i = 0; i < scrapes; i++)
        mean += (double)t[i];
    mean /= (double)scrapes;
    int64_t med = bench_quantile(t, (size_t)scrapes, 0.5), p99 = bench_quantile(t, (size_t)scrapes, 0.99);
    printf("%-34s %8.3f %8.3f %8.3f %9zu %8.1f %+10lld\n", threads ? (om ? "--threads, OpenMetrics" : "--threads, text")
                                                                     : (om ? "processes, OpenMetrics" : "processes, text"),
           (double)med / 1e6, mean / 1e6, (double)p99 / 1e6, len,
           (double)allocs / (double)(scrapes - warm), (long long)heap_end - (long long)heap_warm);
    free(t);
    exp_free(e);
}

int main(int argc, char **argv)
{
    long scrapes = argc > 1 ? atol(argv[1]) : 10000;
    if (scrapes < 20)
        scrapes = 20;
    char dir[] = "/tmp/felix-bench-exporter-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_dir(dir);
    printf("felix-exporter scrape: %d processes x %d threads (saved images, --dir --all), %ld scrapes each\n", NPROC,
           NTHREADS, scrapes);
    printf("%-34s %8s %8s %8s %9s %8s %10s\n", "", "median", "mean", "p99", "bytes", "allocs", "heap");
    printf("%-34s %8s %8s %8s %9s %8s %10s\n", "", "ms", "ms", "ms", "", "/scrape", "growth B");
    run(dir, 0, 0, scrapes);
    run(dir, 0, 1, scrapes);
    run(dir, 1, 0, scrapes / 10);
    run(dir, 1, 1, scrapes / 10);
    char path[512];
    for (unsigned p = 0; p < NPROC; p++) {
        snprintf(path, sizeof path, "%s/fex-%u-stats", dir, 5000000 + p);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

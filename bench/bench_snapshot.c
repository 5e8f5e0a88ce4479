/* Benchmark: snapshot + delta for 1, 64 and 1024 threads on a real shared
 * memory segment whose counters move between samples; 10 threads in a 4 MiB
 * object (FEX never shrinks one after a burst of threads); and a 16 MiB
 * object full of threads (209,714, felix86's largest). Prints us per
 * snapshot+delta (median, p99) and heap allocations in steady state.
 * Targets: at most 5 us for 64 threads, 10 us for 10 threads in 4 MiB, no
 * allocation. The snapshot copies the object with pread (see shm.h). */
#include "alloc_count.h"
#include "bench_common.h"

#include <felix/felix.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int run(unsigned nthreads, unsigned iters, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/felix-bench-%d", (int)getpid());
    if (!size) /* the smallest object FEX would have for nthreads */
        for (size = 4096; size < 64 + (size_t)(nthreads + 1) * 80;)
            size *= 2;
    if (size < 64 + (size_t)nthreads * 80)
        return 1;
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        return 1;
    unsigned char *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w == MAP_FAILED)
        return 1;
    w[0] = 2;
    w[1] = 1;
    w[2] = 80;
    uint32_t sz = (uint32_t)size, head = 64;
    memcpy(w + 56, &sz, 4);
    memcpy(w + 52, &head, 4);
    for (unsigned i = 0; i < nthreads; i++) {
        uint32_t off = 64 + i * 80, next = i + 1 < nthreads ? off + 80 : 0, tid = 1000 + i;
        memcpy(w + off, &next, 4);
        memcpy(w + off + 4, &tid, 4);
    }
    felix_shm *shm;
    felix_snapshot *s[2];
    felix_delta *d;
    if (felix_shm_open_path(&shm, path, 0) < 0 || felix_snapshot_new(&s[0]) < 0 ||
        felix_snapshot_new(&s[1]) < 0 || felix_delta_new(&d, 1000000000, 8) < 0)
        return 1;
    felix_shm_snapshot(shm, s[0]);
    int64_t *t = malloc(iters * sizeof *t), *ts = malloc(iters * sizeof *ts);
    unsigned long long allocs_before = 0;
    int cur = 1;
    for (unsigned it = 0; it < iters + 100; it++) {
        for (unsigned i = 0; i < nthreads; i++) { /* the writer moves on */
            uint64_t *c = (uint64_t *)(void *)(w + 64 + i * 80 + 8);
            c[0] += 1000 + i;
            c[8] += 1;
        }
        if (it == 100)
            allocs_before = bench_allocs; /* after warm-up */
        int64_t a = bench_ns();
        felix_shm_snapshot(shm, s[cur]);
        int64_t m = bench_ns();
        felix_delta_compute(d, s[cur ^ 1], s[cur]);
        int64_t b = bench_ns();
        if (it >= 100) {
            t[it - 100] = b - a;
            ts[it - 100] = m - a;
        }
        cur ^= 1;
    }
    unsigned long long allocs = bench_allocs - allocs_before;
    if (felix_delta_frame(d)->nthreads != nthreads)
        return 1;
    int64_t med = bench_quantile(t, iters, 0.5), p99 = bench_quantile(t, iters, 0.99);
    int64_t smed = bench_quantile(ts, iters, 0.5);
    printf("snapshot+delta %6u threads in %5zu KiB: median %9.2f us  p99 %9.2f us  (snapshot alone: median %9.2f us)  "
           "allocations in %u steady iterations: %llu\n",
           nthreads, size / 1024, (double)med / 1e3, (double)p99 / 1e3, (double)smed / 1e3, iters, allocs);
    free(t);
    free(ts);
    felix_delta_free(d);
    felix_snapshot_free(s[0]);
    felix_snapshot_free(s[1]);
    felix_shm_close(shm);
    munmap(w, size);
    close(fd);
    unlink(path);
    return allocs == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int rc = 0;
    if (argc == 4) /* one case: threads iterations object-bytes */
        return run((unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]), (size_t)atol(argv[3]));
    rc |= run(1, 20000, 0);
    rc |= run(64, 20000, 0);
    rc |= run(1024, 2000, 0);
    rc |= run(10, 20000, 4u << 20);
    rc |= run(((16u << 20) - 64) / 80, 20, 16u << 20); /* 209,714: every slot */
    return rc;
}

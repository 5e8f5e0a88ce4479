/* Benchmark: one smaps sample of a process with 3,000 mappings. Compares the
 * time the kernel takes to produce /proc/self/smaps (read and discarded) with
 * felix_mem_read_pid() (read and parsed). Target: parsing adds at most 10%. */
#include "bench_common.h"

#include <felix/felix.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAPPINGS 3000
#define RUNS 60

static char buf[16 << 20];

int main(void)
{
    /* 3,000 one-page mappings that cannot merge (alternating protection),
     * every tenth one named like a FEX region. */
    long page = sysconf(_SC_PAGESIZE);
    char *area = mmap(NULL, (size_t)page * MAPPINGS * 2, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return 1;
    for (int i = 0; i < MAPPINGS; i++) {
        char *p = area + (size_t)i * 2 * page;
        if (i % 10 == 0) {
            int fd = memfd_create(i % 20 ? "FEXMem_Lookup" : "FEXMemJIT", 0);
            if (fd < 0 || ftruncate(fd, page) < 0 ||
                mmap(p, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
                return 1;
            close(fd);
        } else {
            mprotect(p, (size_t)page, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE);
        }
        if (i % 2 == 0 || i % 10 == 0)
            p[0] = 1;
    }
    felix_mem *m;
    if (felix_mem_new(&m) < 0)
        return 1;
    int64_t kernel[RUNS], felix[RUNS], parse[RUNS];
    size_t bytes = 0;
    for (int r = 0; r < RUNS; r++) {
        int64_t a = bench_ns();
        int fd = open("/proc/self/smaps", O_RDONLY);
        ssize_t n;
        bytes = 0;
        while ((n = read(fd, buf + bytes, sizeof buf - bytes)) > 0)
            bytes += (size_t)n;
        close(fd);
        int64_t b = bench_ns();
        felix_mem_read_pid(m, getpid());
        int64_t c = bench_ns();
        felix_mem_parse(m, buf, bytes);
        int64_t e = bench_ns();
        kernel[r] = b - a;
        felix[r] = c - b;
        parse[r] = e - c;
    }
    int64_t k = bench_quantile(kernel, RUNS, 0.5), f = bench_quantile(felix, RUNS, 0.5),
            p = bench_quantile(parse, RUNS, 0.5);
    const felix_region *lk = felix_mem_find(m, "FEXMem_Lookup");
    printf("smaps with %d mappings (%zu bytes): kernel read %.0f us, felix read+parse %.0f us, parse alone %.0f us\n",
           MAPPINGS, bytes, (double)k / 1e3, (double)f / 1e3, (double)p / 1e3);
    printf("parsing adds %.1f%% to the kernel's time (parse alone / kernel read); read+parse vs read: %+.1f%%\n",
           100.0 * (double)p / (double)k, 100.0 * ((double)f / (double)k - 1));
    printf("regions: %zu, FEXMem_Lookup mappings %u\n", felix_mem_count(m), lk ? lk->mappings : 0);
    felix_mem_free(m);
    return lk && lk->mappings == MAPPINGS / 20 ? 0 : 1;
}

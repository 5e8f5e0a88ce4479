/* smaps parsing: both naming forms, unknown names and lines, a live process. */
#include "helpers.h"
#include "t.h"

#include <felix/felix.h>
#include <fcntl.h>
#include <unistd.h>

static const char sample[] =
    "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
    "Size:                328 kB\n"
    "Rss:                 300 kB\n"
    "7f0000000000-7f0000400000 rw-p 00000000 00:00 0    [anon:FEXMemJIT]\n"
    "Size:               4096 kB\n"
    "KernelPageSize:        4 kB\n"
    "Rss:                1024 kB\n"
    "Pss:                1024 kB\n"
    "VmFlags: rd wr mr mw me ac\n"
    "7f0000400000-7f0000500000 rw-s 00000000 00:01 1025  /memfd:FEXAllocator (deleted)\n"
    "Rss:                 512 kB\n"
    "7f0000500000-7f0000600000 rw-p 00000000 00:00 0    [anon:FEXAllocator]\n"
    "Rss:                 768 kB\n"
    "7f0000600000-7f0000610000 rw-p 00000000 00:00 0    [anon:FEXMem_Shiny]\n"
    "Rss:                  64 kB\n"
    "Weird line with no meaning\n"
    "Rss:                  99 parsecs\n"
    "7f0000610000-7f0000620000 rw-p 00000000 00:00 0    [anon:JEMalloc]\r\n"
    "Rss:                   8 kB\r\n"
    "7f0000620000-7f0000630000 rw-p 00000000 00:00 0    [anon:NotFEX]\n"
    "Rss:                  32 kB\n"
    "7f0000630000-7f0000640000 rw-p 00000000 00:00 0    [anon:FEXMemJIT]\n"
    "Rss:                  16 kB"; /* no final newline */

static void parses_both_forms(void)
{
    felix_mem *m;
    REQUIRE(felix_mem_new(&m) == 0);
    CHECK_EQ(felix_mem_parse(m, sample, sizeof sample - 1), 0);
    const felix_region *jit = felix_mem_find(m, "FEXMemJIT");
    REQUIRE(jit);
    CHECK_EQ(jit->rss, (1024 + 16) * 1024);
    CHECK_EQ(jit->mappings, 2);
    CHECK_EQ(jit->size, 0x400000 + 0x10000);
    CHECK_EQ(jit->largest_rss, 1024 * 1024);
    const felix_region *al = felix_mem_find(m, "FEXAllocator");
    REQUIRE(al);
    CHECK_EQ(al->rss, (512 + 768) * 1024);
    CHECK_EQ(al->mappings, 2);
    CHECK_EQ(felix_mem_largest_allocator(m), 768 * 1024);
    /* An unknown FEX name is reported under its own name. */
    const felix_region *shiny = felix_mem_find(m, "FEXMem_Shiny");
    REQUIRE(shiny);
    CHECK_EQ(shiny->rss, 64 * 1024);
    CHECK(felix_mem_find(m, "JEMalloc") && felix_mem_find(m, "JEMalloc")->rss == 8 * 1024);
    CHECK(felix_mem_find(m, "NotFEX") == NULL);
    CHECK_EQ(felix_mem_count(m), 4);
    CHECK_EQ(felix_mem_total(m), (1024 + 16 + 512 + 768 + 64 + 8) * 1024);
    /* The whole process: every mapping, FEX's or not (the bad unit skipped). */
    CHECK_EQ(felix_mem_process_rss(m), (300 + 1024 + 512 + 768 + 64 + 8 + 32 + 16) * 1024);
    CHECK_EQ(felix_mem_process_mappings(m), 8);
    /* Clearing and parsing again gives the same, without new regions. */
    CHECK_EQ(felix_mem_parse(m, sample, sizeof sample - 1), 0);
    CHECK_EQ(felix_mem_count(m), 4);
    CHECK_EQ(felix_mem_total(m), (1024 + 16 + 512 + 768 + 64 + 8) * 1024);
    CHECK_EQ(felix_mem_process_mappings(m), 8);
    felix_mem_free(m);
}

static void streaming_matches_whole(void)
{
    /* Read through a pipe-like file in the streaming reader: same result. */
    char path[128];
    snprintf(path, sizeof path, "%s/smaps", t_tmpdir());
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int i = 0; i < 5000; i++) /* past the 64 KiB buffer several times */
        fprintf(f, "7f%08x000-7f%08x000 rw-p 00000000 00:00 0 [anon:FEXMem_Lookup]\nRss: %d kB\n", i,
                i + 1, i % 7);
    fclose(f);
    int fd = open(path, O_RDONLY);
    felix_mem *m;
    felix_mem_new(&m);
    CHECK_EQ(felix_mem_read_fd(m, fd), 0);
    close(fd);
    uint64_t want = 0;
    for (int i = 0; i < 5000; i++)
        want += (uint64_t)(i % 7) * 1024;
    CHECK_EQ(felix_mem_total(m), want);
    CHECK_EQ(felix_mem_find(m, "FEXMem_Lookup")->mappings, 5000);
    felix_mem_free(m);
}

static void many_names_and_long_lines(void)
{
    static char text[200000];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "1000-2000 rw-p 0 0:0 0 [anon:FEXMem_N%d]\nRss: 4 kB\n", i);
    memset(text + n, 'x', 100000); /* a very long line */
    n += 100000;
    text[n++] = '\n';
    felix_mem *m;
    felix_mem_new(&m);
    CHECK_EQ(felix_mem_parse(m, text, n), 0);
    CHECK_EQ(felix_mem_count(m), FELIX_MEM_MAX_REGIONS);
    const felix_region *o = felix_mem_find(m, "FEXMem_other");
    REQUIRE(o);
    CHECK_EQ(o->mappings, 100 - (FELIX_MEM_MAX_REGIONS - 1));
    CHECK_EQ(felix_mem_total(m), 100 * 4096);
    felix_mem_free(m);
}

/* felix-sim names its regions as FEX does; the kernel's smaps shows them. */
static void live_simulator_regions(void)
{
    static const char *args[] = {"-t", "1", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_mem *m;
    felix_mem_new(&m);
    CHECK_EQ(felix_mem_read_pid(m, pid), 0);
    const felix_region *r = felix_mem_find(m, "FEXMemJIT");
    CHECK(r && r->rss == 2048 * 1024);
    r = felix_mem_find(m, "FEXAllocator");
    CHECK(r && r->rss == 3072 * 1024 && r->mappings == 2);
    CHECK_EQ(felix_mem_largest_allocator(m), 2048 * 1024);
    r = felix_mem_find(m, "FEXMem_CallRetStacks");
    CHECK(r && r->rss == 128 * 1024);
    CHECK_EQ(felix_mem_total(m), 6976 * 1024); /* the documented sizes, all resident */
    sim_stop(pid);
    CHECK_EQ(felix_mem_read_pid(m, pid), FELIX_ESRCH);
    felix_mem_free(m);
}

T_MAIN(T(parses_both_forms), T(streaming_matches_whole), T(many_names_and_long_lines),
       T(live_simulator_regions))

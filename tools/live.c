#include "live.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int64_t live_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int live_open(live *l, pid_t pid, int64_t slow_ns, int mem)
{
    memset(l, 0, sizeof *l);
    l->pid = pid;
    l->slow_ns = slow_ns > 0 ? slow_ns : 1000000000;
    l->mem = mem;
    l->last_slow = INT64_MIN / 2;
    int rc = felix_shm_open_pid(&l->shm, pid, 0);
    if (rc == 0)
        rc = felix_snapshot_new(&l->prev);
    return rc;
}

void live_close(live *l)
{
    felix_shm_close(l->shm);
    felix_snapshot_free(l->prev);
    free(l->info);
    free(l->names);
    free(l->tasks);
    memset(l, 0, sizeof *l);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The process's real threads, from /proc/<pid>/task. */
static void read_tasks(live *l)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/task", (int)l->pid);
    DIR *d = opendir(path);
    l->ntasks = 0;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        unsigned long tid = strtoul(e->d_name, &end, 10);
        if (*end || !tid || tool_grow((void **)&l->tasks, &l->tasks_cap, l->ntasks + 1, sizeof *l->tasks) < 0)
            continue;
        l->tasks[l->ntasks++] = (uint32_t)tid;
    }
    closedir(d);
    if (l->ntasks)
        qsort(l->tasks, l->ntasks, sizeof *l->tasks, cmp_u32);
}

static int is_task(const live *l, uint32_t tid)
{
    return l->ntasks && bsearch(&tid, l->tasks, l->ntasks, sizeof tid, cmp_u32) != NULL;
}

int live_sample(live *l, felix_snapshot *snap, int *slow_out)
{
    int rc = felix_shm_snapshot(l->shm, snap);
    if (rc < 0)
        return rc;
    int64_t now = live_now();
    /* Due with a sixteenth of slack: a sample at the very deadline of the
     * slow interval (-i 1s with the default 1 s) measures a hair under it. */
    int slow = now - l->last_slow >= l->slow_ns - l->slow_ns / 16;
    if (slow) {
        l->last_slow = now;
        if (l->mem && felix_mem_read_pid(felix_snapshot_mem_mut(snap), l->pid) == 0)
            felix_snapshot_set_has_mem(snap, 1);
    }
    const felix_snapshot_info *si = felix_snapshot_get_info(snap);
    if (si->nthreads > l->cap) {
        size_t cap = si->nthreads * 2;
        felix_rec_thread_info *info = realloc(l->info, cap * sizeof *info);
        if (info)
            l->info = info;
        char(*names)[32] = realloc(l->names, cap * sizeof *names);
        if (names)
            l->names = names;
        if (!info || !names)
            return FELIX_ENOMEM;
        l->cap = cap;
    }
    /* Names when a thread is first seen, and again every tenth slow sample
     * (threads rarely rename); CPU times at every slow sample. */
    int renames = slow && l->slow_count++ % 10 == 0;
    if (slow)
        read_tasks(l);
    l->ninfo = 0;
    unsigned fresh_reads = 0; /* names of new threads read without the task list */
    for (uint32_t i = 0; i < si->nthreads; i++) {
        uint32_t tid = felix_snapshot_thread(snap, i)->tid;
        int first = !l->have_prev || !felix_snapshot_find(l->prev, tid);
        if (!first && !slow)
            continue;
        /* A TID the process does not have (a stale or forged slot) costs
         * nothing; a new thread not yet in the list may be read, 64 a sample. */
        int real = is_task(l, tid);
        if (!real && !(first && fresh_reads < 64))
            continue;
        fresh_reads += !real;
        felix_rec_thread_info *x = &l->info[l->ninfo];
        x->tid = tid;
        x->name = (first || renames) &&
                          felix_proc_thread_name(l->pid, (pid_t)tid, l->names[l->ninfo], sizeof l->names[0]) == 0
                      ? l->names[l->ninfo]
                      : NULL;
        x->has_cpu = slow && felix_proc_thread_cpu_ns(l->pid, (pid_t)tid, &x->cpu_ns) == 0;
        if (x->name || x->has_cpu)
            l->ninfo++;
    }
    if ((rc = felix_snapshot_copy(l->prev, snap)) < 0)
        return rc;
    l->have_prev = 1;
    if (slow_out)
        *slow_out = slow;
    return 0;
}

int live_header(live *l, felix_rec_header *h, int64_t interval_ns)
{
    uint64_t hz;
    int src;
    int rc = felix_clock_frequency(&hz, &src);
    if (rc < 0)
        return rc;
    const felix_shm_info *si = felix_shm_get_info(l->shm);
    memset(h, 0, sizeof *h);
    gethostname(h->host, sizeof h->host - 1);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN), page = sysconf(_SC_PAGESIZE);
    h->ncpus = ncpu > 0 ? (uint32_t)ncpu : 1;
    h->freq_hz = hz;
    snprintf(h->freq_source, sizeof h->freq_source, "%s", felix_clock_source_name(src));
    h->page_size = page > 0 ? (uint32_t)page : 4096;
    h->pid = l->pid;
    felix_proc_cmdline(l->pid, h->cmdline, sizeof h->cmdline);
    felix_proc_name(l->pid, h->name, sizeof h->name);
    snprintf(h->fex_version, sizeof h->fex_version, "%s", si->fex_version);
    h->app_type = si->app_type;
    h->stats_version = si->version;
    h->thread_stats_size = si->thread_stats_size;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->start_wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    h->start_mono_ns = live_now();
    h->interval_ns = interval_ns;
    return 0;
}

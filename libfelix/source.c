/*
 * Sources: snapshots from a live process or a recording, with the same
 * lifecycle events (see source.h).
 *
 * Live invariants:
 *  - prev holds the last sample taken (have_prev), and names[] its threads'
 *    known names by index; the next sample's thread events are the change
 *    from prev, by fx_thread_restarted (the writer's and the delta's rule).
 *  - evq[evpos..nev) are events still to deliver; with pending, prev is a
 *    sample to deliver after them.
 *  - info[0..ninfo) are the per-thread facts read at the last sample, their
 *    names pointing into names[] (aligned with prev).
 */
#include "felix/felix.h"
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NAME_LEN 32

struct felix_source {
    int live;
    felix_rec_header hdr;
    felix_rec_reader *r; /* recording */
    felix_snapshot *prev, *scratch;
    int have_prev, pending, ended, exited;
    felix_rec_event *evq;
    size_t nev, evpos, evcap;
    /* per-thread facts of the last sample */
    felix_rec_thread_info *info;
    size_t ninfo, info_cap;
    char (*names)[NAME_LEN], (*names_next)[NAME_LEN];
    size_t names_cap, names_next_cap;
    /* live */
    pid_t pid; /* 0: no process (an image by path) */
    unsigned flags;
    felix_shm *shm;
    felix_proc_watch *pw;
    int64_t slow_ns, last_slow;
    uint64_t slow_count;
    uint32_t *tasks; /* the process's real TIDs (sorted), at the last slow sample */
    size_t ntasks, tasks_cap;
};

void felix_source_options_init(felix_source_options *p)
{
    if (p) {
        memset(p, 0, sizeof *p);
        p->version = FELIX_SOURCE_OPTIONS_VERSION;
    }
}

static int64_t now_mono(void) { return fx_now_ns(CLOCK_MONOTONIC); }


static int check_opts(const felix_source_options *o)
{
    if (o && !FX_VERSION_OK(o, FELIX_SOURCE_OPTIONS_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_source: options version %u (start from FELIX_SOURCE_OPTIONS_INIT)",
                       o->version);
    if (o && (o->interval_ns < 0 || o->slow_ns < 0))
        return fx_fail(FELIX_EINVAL, "felix_source: a negative interval");
    return 0;
}

/* A new source for an open call: arguments checked, memory allocated. */
static int source_new(felix_source **s_out, felix_source **out, const felix_source_options *o)
{
    if (!out)
        return fx_fail(FELIX_EINVAL, "felix_source_open: out is NULL");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    felix_source *s = fx_calloc(1, sizeof *s);
    if (s && felix_snapshot_new(&s->prev) < 0) {
        fx_free(s);
        s = NULL;
    }
    if (!s)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a source");
    *s_out = s;
    return 0;
}

void felix_source_close(felix_source *s)
{
    if (!s)
        return;
    felix_rec_reader_close(s->r);
    felix_shm_close(s->shm);
    felix_proc_watch_close(s->pw);
    felix_snapshot_free(s->prev);
    felix_snapshot_free(s->scratch);
    fx_free(s->evq);
    fx_free(s->info);
    fx_free(s->names);
    fx_free(s->names_next);
    fx_free(s->tasks);
    fx_free(s);
}

/* The header of a live source: this host, the process, FEX, the clocks now. */
static int live_header(felix_source *s, int64_t interval_ns)
{
    uint64_t hz;
    int src;
    int rc = felix_clock_frequency(&hz, &src);
    if (rc < 0)
        return rc;
    const felix_shm_info *si = felix_shm_get_info(s->shm);
    felix_rec_header *h = &s->hdr;
    felix_rec_header_init(h);
    gethostname(h->host, sizeof h->host - 1);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN), page = sysconf(_SC_PAGESIZE);
    h->ncpus = ncpu > 0 ? (uint32_t)ncpu : 1;
    h->freq_hz = hz;
    snprintf(h->freq_source, sizeof h->freq_source, "%s", felix_clock_source_name(src));
    h->page_size = page > 0 ? (uint32_t)page : 4096;
    h->pid = s->pid;
    if (s->pid > 0) {
        felix_proc_cmdline(s->pid, h->cmdline, sizeof h->cmdline);
        felix_proc_name(s->pid, h->name, sizeof h->name);
    }
    snprintf(h->fex_version, sizeof h->fex_version, "%s", si->fex_version);
    h->app_type = si->app_type;
    h->stats_version = si->version;
    h->thread_stats_size = si->thread_stats_size;
    h->start_wall_ns = fx_now_ns(CLOCK_REALTIME);
    h->start_mono_ns = now_mono();
    h->start_boot_ns = fx_now_ns(CLOCK_BOOTTIME); /* next to the monotonic origin */
    h->interval_ns = interval_ns > 0 ? interval_ns : 1000000000;
    return 0;
}

static int live_open(felix_source **out, pid_t pid, const char *path, const felix_source_options *o)
{
    felix_source *s;
    int rc = source_new(&s, out, o);
    if (rc < 0)
        return rc;
    s->live = 1;
    s->flags = o ? o->flags : 0;
    s->slow_ns = o && o->slow_ns > 0 ? o->slow_ns : 1000000000;
    s->last_slow = INT64_MIN / 2;
    unsigned shm_flags = o ? o->shm_flags : 0;
    rc = path ? felix_shm_open_path(&s->shm, path, shm_flags) : felix_shm_open_pid(&s->shm, pid, shm_flags);
    if (rc == 0) {
        int p = felix_shm_get_info(s->shm)->pid;
        s->pid = path ? (p > 0 && felix_proc_alive(p, 0) ? p : 0) : pid;
        rc = live_header(s, o ? o->interval_ns : 0);
    }
    if (rc == 0 && s->pid > 0)
        felix_proc_watch_open(&s->pw, s->pid, s->flags & FELIX_SOURCE_CHILD ? FELIX_PROC_WATCH_CHILD : 0);
    if (rc < 0) {
        felix_source_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int felix_source_open_pid(felix_source **out, pid_t pid, const felix_source_options *opts)
{
    if (pid <= 0)
        return fx_fail(FELIX_EINVAL, "felix_source_open_pid: PID %d", (int)pid);
    return live_open(out, pid, NULL, opts);
}

int felix_source_open_path(felix_source **out, const char *path, const felix_source_options *opts)
{
    if (!path)
        return fx_fail(FELIX_EINVAL, "felix_source_open_path: NULL path");
    return live_open(out, 0, path, opts);
}

static int recording_open(felix_source **out, const char *path, int fd, const felix_source_options *o)
{
    felix_source *s;
    int rc = source_new(&s, out, o);
    if (rc < 0)
        return rc;
    rc = path ? felix_rec_reader_open_path(&s->r, path) : felix_rec_reader_open_fd(&s->r, fd);
    if (rc < 0) {
        felix_source_close(s);
        return rc;
    }
    s->hdr = *felix_rec_reader_header(s->r);
    *out = s;
    return 0;
}

int felix_source_open_recording(felix_source **out, const char *path, const felix_source_options *opts)
{
    if (!path)
        return fx_fail(FELIX_EINVAL, "felix_source_open_recording: NULL path");
    return recording_open(out, path, -1, opts);
}

int felix_source_open_recording_fd(felix_source **out, int fd, const felix_source_options *opts)
{
    if (fd < 0)
        return fx_fail(FELIX_EINVAL, "felix_source_open_recording_fd: descriptor %d", fd);
    return recording_open(out, NULL, fd, opts);
}

int felix_source_is_live(const felix_source *s) { return s && s->live; }
const felix_rec_header *felix_source_header(const felix_source *s) { return s ? &s->hdr : NULL; }
felix_rec_reader *felix_source_reader(felix_source *s) { return s ? s->r : NULL; }
felix_shm *felix_source_shm(felix_source *s) { return s ? s->shm : NULL; }
int felix_source_fd(const felix_source *s) { return s ? felix_proc_watch_fd(s->pw) : -1; }

int felix_source_set_interval(felix_source *s, int64_t ns)
{
    if (!s || ns <= 0)
        return fx_fail(FELIX_EINVAL, "felix_source_set_interval: interval %lld ns", (long long)ns);
    if (!s->live)
        return fx_fail(FELIX_ENOTSUP, "a recording's interval cannot be changed");
    int rc = fx_grow((void **)&s->evq, &s->evcap, s->nev + 1, sizeof *s->evq);
    if (rc < 0)
        return rc;
    felix_rec_event *e = &s->evq[s->nev++];
    felix_rec_event_init(e);
    e->kind = FELIX_EV_INTERVAL_CHANGED;
    e->mono_ns = now_mono();
    e->interval_ns = ns;
    return 0;
}

int felix_source_set_memory(felix_source *s, int on)
{
    if (!s)
        return fx_fail(FELIX_EINVAL, "felix_source_set_memory: NULL source");
    if (!s->live)
        return fx_fail(FELIX_ENOTSUP, "a recording's memory regions are as recorded");
    int was = !(s->flags & FELIX_SOURCE_NO_MEMORY);
    s->flags = on ? s->flags & ~(unsigned)FELIX_SOURCE_NO_MEMORY : s->flags | FELIX_SOURCE_NO_MEMORY;
    if (on && !was)
        s->last_slow = INT64_MIN / 2; /* just turned on: read at the next sample */
    return 0;
}

/* ---- live sampling ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The process's real threads, from /proc/<pid>/task. */
static void read_tasks(felix_source *s)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/task", (int)s->pid);
    DIR *d = opendir(path);
    s->ntasks = 0;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        unsigned long tid = strtoul(e->d_name, &end, 10);
        if (*end || !tid || tid > UINT32_MAX ||
            fx_grow((void **)&s->tasks, &s->tasks_cap, s->ntasks + 1, sizeof *s->tasks) < 0)
            continue;
        s->tasks[s->ntasks++] = (uint32_t)tid;
    }
    closedir(d);
    if (s->ntasks)
        qsort(s->tasks, s->ntasks, sizeof *s->tasks, cmp_u32);
}

static int is_task(const felix_source *s, uint32_t tid)
{
    return s->ntasks && bsearch(&tid, s->tasks, s->ntasks, sizeof tid, cmp_u32) != NULL;
}

/* prev's index of cur's thread i when it is the same thread, else -1:
 * the same TID, not restarted, and no exec between. */
static long same_as_prev(const felix_source *s, const felix_snapshot *cur, size_t i, int exec)
{
    if (!s->have_prev || exec)
        return -1;
    const felix_thread *c = felix_snapshot_thread(cur, i);
    long j = fx_snapshot_index_at(s->prev, i, c->tid);
    return j >= 0 && !fx_thread_restarted(felix_snapshot_thread(s->prev, (size_t)j), c) ? j : -1;
}

static void queue(felix_source *s, int kind, int64_t mono, uint32_t tid, uint64_t count)
{
    felix_rec_event *e = &s->evq[s->nev++];
    felix_rec_event_init(e);
    e->kind = kind;
    e->mono_ns = mono;
    e->tid = tid;
    e->count = count;
}

/* Take a sample into snap; queue its thread events; fill names and info.
 * Everything that can fail for want of memory comes first. */
static int live_sample(felix_source *s, felix_snapshot *snap)
{
    int rc = felix_shm_snapshot(s->shm, snap);
    if (rc < 0)
        return rc;
    const felix_snapshot_info *si = felix_snapshot_get_info(snap);
    size_t n = si->nthreads, nprev = s->have_prev ? felix_snapshot_get_info(s->prev)->nthreads : 0;
    if ((rc = fx_grow((void **)&s->info, &s->info_cap, n, sizeof *s->info)) < 0 ||
        (rc = fx_grow((void **)&s->names_next, &s->names_next_cap, n, sizeof *s->names_next)) < 0 ||
        (rc = fx_grow((void **)&s->evq, &s->evcap, s->nev + n + nprev + 1, sizeof *s->evq)) < 0)
        return rc;
    int64_t now = now_mono();
    int exec = s->have_prev && felix_snapshot_get_info(s->prev)->image != si->image;
    /* Due with a sixteenth of slack: a sample at the very deadline of the
     * slow interval (an interval of 1 s with the default 1 s) measures a
     * hair under it. */
    int slow = s->pid > 0 && now - s->last_slow >= s->slow_ns - s->slow_ns / 16;
    int details = s->pid > 0 && !(s->flags & FELIX_SOURCE_NO_THREAD_INFO);
    if (slow) {
        if (!(s->flags & FELIX_SOURCE_NO_MEMORY) && felix_mem_read_pid(felix_snapshot_mem_mut(snap), s->pid) == 0)
            felix_snapshot_set_has_mem(snap, 1);
        if (details)
            read_tasks(s);
    }
    /* Names when a thread is first seen, and again every tenth slow sample
     * (threads rarely rename); CPU times at every slow sample. */
    int renames = slow && s->slow_count % 10 == 0;
    unsigned fresh_reads = 0; /* names of new threads read without the task list */
    s->ninfo = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t tid = felix_snapshot_thread(snap, i)->tid;
        long j = same_as_prev(s, snap, i, exec);
        char *name = s->names_next[i];
        if (j >= 0)
            memcpy(name, s->names[j], NAME_LEN);
        else
            name[0] = '\0';
        int first = j < 0;
        if (!details || (!first && !slow))
            continue;
        /* A TID the process does not have (a stale or forged slot) costs
         * nothing; a new thread not yet in the list may be read, 64 a sample. */
        int real = is_task(s, tid);
        if (!real && !(first && fresh_reads < 64))
            continue;
        fresh_reads += !real;
        felix_rec_thread_info *x = &s->info[s->ninfo];
        felix_rec_thread_info_init(x);
        x->tid = tid;
        x->name = (first || renames) && felix_proc_thread_name(s->pid, (pid_t)tid, name, NAME_LEN) == 0 ? name : NULL;
        x->has_cpu = slow && felix_proc_thread_cpu_ns(s->pid, (pid_t)tid, &x->cpu_ns) == 0;
        if (x->has_cpu && (rc = felix_snapshot_set_thread_cpu_ns(snap, i, x->cpu_ns)) < 0)
            return rc;
        if (x->name || x->has_cpu)
            s->ninfo++;
    }
    /* Thread events: exec, exits in prev's order, starts in this sample's. */
    size_t nev0 = s->nev;
    if (s->have_prev) {
        if (exec)
            queue(s, FELIX_EV_EXEC, si->mono_ns, 0, si->image);
        for (size_t j = 0; j < nprev; j++) {
            const felix_thread *p = felix_snapshot_thread(s->prev, j);
            long i = exec ? -1 : felix_snapshot_index(snap, p->tid);
            if (i < 0 || fx_thread_restarted(p, felix_snapshot_thread(snap, (size_t)i)))
                queue(s, FELIX_EV_THREAD_EXITED, si->mono_ns, p->tid, 0);
        }
        for (size_t i = 0; i < n; i++)
            if (same_as_prev(s, snap, i, exec) < 0)
                queue(s, FELIX_EV_THREAD_STARTED, si->mono_ns, felix_snapshot_thread(snap, i)->tid, 0);
    }
    if ((rc = felix_snapshot_copy(s->prev, snap)) < 0) {
        s->nev = nev0;
        return rc;
    }
    if (slow) { /* counted only once the sample is whole: a retried one reads the same */
        s->last_slow = now;
        s->slow_count++;
    }
    char(*t)[NAME_LEN] = s->names;
    s->names = s->names_next;
    s->names_next = t;
    size_t tc = s->names_cap;
    s->names_cap = s->names_next_cap;
    s->names_next_cap = tc;
    s->have_prev = 1;
    return 0;
}

/* Deliver the next queued event. */
static int deliver_event(felix_source *s, felix_rec_event *ev, int *out_item)
{
    if (ev)
        *ev = s->evq[s->evpos];
    if (++s->evpos == s->nev)
        s->nev = s->evpos = 0;
    *out_item = FELIX_REC_EVENT;
    return 0;
}

static int live_next(felix_source *s, felix_snapshot *snap, felix_rec_event *ev, int *out_item)
{
    int rc;
    if (s->evpos < s->nev)
        return deliver_event(s, ev, out_item);
    if (s->pending) { /* the sample whose events went first */
        if (snap && (rc = felix_snapshot_copy(snap, s->prev)) < 0)
            return rc;
        s->pending = 0;
        *out_item = FELIX_REC_SAMPLE;
        return 0;
    }
    if (s->ended)
        return fx_fail(FELIX_EEOF, "PID %d: the process exited", (int)s->pid);
    if (s->exited) {
        s->ended = 1;
        *out_item = FELIX_REC_END;
        return 0;
    }
    /* Room for the exit's event first: a child is reaped by the check, and
     * its status must not be lost to a failed allocation after it. */
    if ((rc = fx_grow((void **)&s->evq, &s->evcap, 1, sizeof *s->evq)) < 0)
        return rc;
    int exited = 0, status = -1;
    if (s->pw)
        felix_proc_watch_check(s->pw, &exited, &status);
    else if (s->pid > 0)
        exited = !felix_proc_alive(s->pid, 0);
    if (exited) {
        queue(s, FELIX_EV_PROCESS_EXITED, now_mono(), 0, 0);
        s->evq[0].has_status = status != -1;
        s->evq[0].status = status;
        s->exited = 1;
        return deliver_event(s, ev, out_item);
    }
    felix_snapshot *into = snap;
    if (!into && !s->scratch && (rc = felix_snapshot_new(&s->scratch)) < 0)
        return rc;
    if (!into)
        into = s->scratch;
    size_t nev0 = s->nev;
    if ((rc = live_sample(s, into)) < 0)
        return rc;
    if (s->nev > nev0) {
        s->pending = 1;
        return deliver_event(s, ev, out_item);
    }
    *out_item = FELIX_REC_SAMPLE;
    return 0;
}

/* ---- either kind ---- */

int felix_source_next(felix_source *s, felix_snapshot *snap, felix_rec_event *ev, int *out_item)
{
    if (!s)
        return fx_fail(FELIX_EINVAL, "felix_source_next: NULL source");
    if (ev && !FX_VERSION_OK(ev, FELIX_REC_EVENT_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_source_next: event version %u (start from FELIX_REC_EVENT_INIT)",
                       ev->version);
    int item = 0;
    int rc = s->live ? live_next(s, snap, ev, &item) : felix_rec_next(s->r, snap, ev, &item);
    if (rc == 0 && out_item)
        *out_item = item;
    return rc;
}

const char *felix_source_thread_name(const felix_source *s, uint32_t tid)
{
    if (!s)
        return NULL;
    if (!s->live)
        return felix_rec_thread_name(s->r, tid);
    long i = s->have_prev ? felix_snapshot_index(s->prev, tid) : -1;
    return i >= 0 && s->names[i][0] ? s->names[i] : NULL;
}

void felix_source_thread_info(felix_source *s, const felix_rec_thread_info **out, size_t *out_n)
{
    if (out)
        *out = NULL;
    if (out_n)
        *out_n = 0;
    if (!s || !out || !out_n)
        return;
    if (!s->live) { /* from the reader: every known name, the CPU times measured in the last sample */
        const felix_snapshot *last = fx_rec_reader_last(s->r);
        size_t n = last ? felix_snapshot_get_info(last)->nthreads : 0;
        if (fx_grow((void **)&s->info, &s->info_cap, n, sizeof *s->info) < 0)
            return; /* out of memory: no facts this time */
        s->ninfo = 0;
        for (size_t i = 0; i < n; i++) {
            felix_rec_thread_info *x = &s->info[s->ninfo];
            felix_rec_thread_info_init(x);
            x->tid = felix_snapshot_thread(last, i)->tid;
            x->name = felix_rec_thread_name(s->r, x->tid);
            x->has_cpu = felix_snapshot_thread_cpu_ns(last, i, &x->cpu_ns) == 0;
            s->ninfo += x->name || x->has_cpu;
        }
    }
    *out = s->info;
    *out_n = s->ninfo;
}

int felix_source_seek_sample(felix_source *s, uint64_t n)
{
    if (!s || !s->r)
        return fx_fail(s ? FELIX_ENOTSUP : FELIX_EINVAL, "a live source cannot seek");
    return felix_rec_seek_sample(s->r, n);
}

int felix_source_seek_time(felix_source *s, int64_t t_ns)
{
    if (!s || !s->r)
        return fx_fail(s ? FELIX_ENOTSUP : FELIX_EINVAL, "a live source cannot seek");
    return felix_rec_seek_time(s->r, t_ns);
}

int felix_source_summary(felix_source *s, uint64_t *out_samples, int64_t *out_last_chunk_ns)
{
    if (!s || !s->r)
        return fx_fail(s ? FELIX_ENOTSUP : FELIX_EINVAL, "a live source has no summary");
    return felix_rec_summary(s->r, out_samples, out_last_chunk_ns);
}

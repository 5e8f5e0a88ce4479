/*
 * The exporter's scrape (see exporter.h). Output rules:
 *  - names follow Prometheus' conventions: base units (seconds, bytes),
 *    counters end in _total; OpenMetrics names the family without _total,
 *    gives # UNIT where there is one and ends with # EOF;
 *  - label values are valid UTF-8 for any input: text.h's terminal escaping
 *    makes controls and invalid bytes visible as \xNN, then backslash and
 *    quote are escaped as the exposition formats require;
 *  - every family is contiguous, each with # HELP and # TYPE, no blank lines.
 */
#include "exporter.h"
#include "common.h"
#include "text.h"

#include <felix/felix.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static char *room(struct buf *b, size_t n)
{
    if (b->oom || tool_grow((void **)&b->p, &b->cap, b->len + n, 1) < 0) {
        b->oom = 1;
        return NULL;
    }
    return b->p + b->len;
}

static void put(struct buf *b, const char *s, size_t n)
{
    char *d = room(b, n);
    if (d) {
        memcpy(d, s, n);
        b->len += n;
    }
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_u64(struct buf *b, uint64_t v)
{
    char *d = room(b, 24);
    if (d)
        b->len += (size_t)(tool_fmt_u64(d, v) - d);
}

static void put_fixed(struct buf *b, double v, int decimals)
{
    char *d = room(b, 48);
    if (d)
        b->len += (size_t)(tool_fmt_fixed(d, v, decimals) - d);
}

/* name="value", the value escaped (see top). */
static void put_label(struct buf *b, const char *name, const char *value, size_t n)
{
    puts_(b, name);
    put(b, "=\"", 2);
    char tmp[TEXT_MAX(256)];
    if (n > 256)
        n = 256;
    char *end = text_term(tmp, value, n, 0);
    char *d = room(b, 2 * (size_t)(end - tmp) + 1);
    if (!d)
        return;
    for (const char *s = tmp; s < end; s++) {
        if (*s == '\\' || *s == '"')
            *d++ = '\\';
        *d++ = *s;
    }
    *d++ = '"';
    b->len = (size_t)(d - b->p);
}

/* Families of the cumulative counters, by felix counter. */
static const struct counter_family {
    int c;
    const char *family; /* without _total */
    const char *unit;   /* OpenMetrics # UNIT, or NULL */
    const char *help;
} counters[] = {
    {FELIX_C_JIT_TIME, "jit_seconds", "seconds", "Time spent compiling x86 code (JIT)"},
    {FELIX_C_SIGNAL_TIME, "signal_seconds", "seconds", "Time spent handling signals"},
    {FELIX_C_CACHE_RDLOCK, "cache_read_lock_seconds", "seconds", "Time spent waiting for the code cache's read lock"},
    {FELIX_C_CACHE_WRLOCK, "cache_write_lock_seconds", "seconds",
     "Time spent waiting for the code cache's write lock"},
    {FELIX_C_JIT_COUNT, "jit_blocks", NULL, "Blocks of x86 code compiled"},
    {FELIX_C_SMC, "smc", NULL, "Self-modifying-code invalidations"},
    {FELIX_C_SIGBUS, "sigbus", NULL, "SIGBUS events (unaligned atomic accesses handled)"},
    {FELIX_C_SOFTFLOAT, "softfloat", NULL, "x87 soft-float fallbacks"},
    {FELIX_C_CACHE_MISS, "cache_misses", NULL, "Misses of the JIT's lookup cache"},
};
#define NFAM (sizeof counters / sizeof counters[0])

struct proc {
    int pid;
    uint64_t start;
    unsigned gen; /* the scrape that last listed it */
    felix_source *src;
    felix_delta *d;
    felix_snapshot *snap[2];
    int cur;  /* snap[cur] is the last good sample */
    int have; /* a sample was delivered */
    felix_mem *mem;
    int have_mem;
    int relabel; /* an exec: labels from the new image at the next sample */
    uint64_t freq;
    unsigned nknown;
    struct buf labels; /* pid="..",process="..",app_type="..",fex_version=".." */
    const felix_thread_delta **sel; /* --threads: the threads reported */
    size_t nsel, selcap;
};

struct exporter {
    exp_options o;
    felix_proc_list *list;
    struct proc **procs;
    size_t nprocs, cap;
    unsigned gen;
    size_t reported;
    struct buf out;
};

int exp_new(exporter **out, const exp_options *o)
{
    exporter *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->o = *o;
    if (!e->o.max_threads)
        e->o.max_threads = EXP_DEFAULT_MAX_THREADS;
    if (felix_proc_list_new(&e->list) < 0) {
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

static void proc_free(struct proc *p)
{
    if (!p)
        return;
    felix_source_close(p->src);
    felix_delta_free(p->d);
    felix_snapshot_free(p->snap[0]);
    felix_snapshot_free(p->snap[1]);
    felix_mem_free(p->mem);
    free(p->labels.p);
    free(p->sel);
    free(p);
}

void exp_free(exporter *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nprocs; i++)
        proc_free(e->procs[i]);
    free(e->procs);
    felix_proc_list_free(e->list);
    free(e->out.p);
    free(e);
}

size_t exp_processes(const exporter *e)
{
    return e ? e->reported : 0;
}

static void make_labels(struct proc *p, const char *name)
{
    felix_shm *shm = felix_source_shm(p->src);
    const felix_shm_info *si = shm ? felix_shm_get_info(shm) : NULL;
    const felix_rec_header *h = felix_source_header(p->src);
    p->labels.len = 0;
    p->labels.oom = 0;
    char pid[16];
    int n = snprintf(pid, sizeof pid, "%d", p->pid);
    put_label(&p->labels, "pid", pid, (size_t)n);
    put(&p->labels, ",", 1);
    put_label(&p->labels, "process", name, strnlen(name, 32));
    put(&p->labels, ",", 1);
    const char *app = si ? si->app_type_name : "";
    char abuf[32];
    if (!si)
        app = felix_app_type_name(h->app_type, abuf, sizeof abuf);
    put_label(&p->labels, "app_type", app, strlen(app));
    put(&p->labels, ",", 1);
    const char *v = si ? si->fex_version : h->fex_version;
    put_label(&p->labels, "fex_version", v, strlen(v));
}

static struct proc *proc_open(exporter *e, const felix_proc_entry *en)
{
    struct proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pid = en->pid;
    p->start = en->start_ticks;
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.shm_flags = FELIX_SHM_NO_WAIT; /* a brand-new object is taken at the next scrape */
    so.slow_ns = 1;                   /* names and memory at every scrape */
    if (!e->o.memory)
        so.flags |= FELIX_SOURCE_NO_MEMORY;
    if (!e->o.threads)
        so.flags |= FELIX_SOURCE_NO_THREAD_INFO;
    if (felix_source_open_path(&p->src, en->path, &so) < 0) {
        free(p);
        return NULL;
    }
    const felix_rec_header *h = felix_source_header(p->src);
    p->freq = h->freq_hz ? h->freq_hz : 1;
    if (felix_delta_new(&p->d, p->freq, h->ncpus) < 0 || felix_snapshot_new(&p->snap[0]) < 0 ||
        felix_snapshot_new(&p->snap[1]) < 0 || felix_mem_new(&p->mem) < 0) {
        proc_free(p);
        return NULL;
    }
    make_labels(p, h->name[0] ? h->name : en->name);
    if (p->labels.oom) {
        proc_free(p);
        return NULL;
    }
    return p;
}

/* Take this scrape's sample; 0, or -1 when the process is gone. */
static int proc_sample(struct proc *p)
{
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    felix_snapshot *next = p->snap[p->cur ^ 1];
    /* The events before a sample: one per thread started or exited. */
    for (unsigned k = 0; k < (1u << 20); k++) {
        int item = 0;
        int rc = felix_source_next(p->src, next, &ev, &item);
        if (rc == FELIX_EEOF)
            return -1;
        if (rc < 0) /* exec'ing, or the numbers stopped: the last ones stand */
            return 0;
        if (item == FELIX_REC_END || (item == FELIX_REC_EVENT && ev.kind == FELIX_EV_PROCESS_EXITED))
            return -1;
        if (item == FELIX_REC_EVENT) {
            if (ev.kind == FELIX_EV_EXEC)
                p->relabel = 1;
            continue;
        }
        if (felix_delta_compute(p->d, p->have ? p->snap[p->cur] : NULL, next) < 0)
            return 0;
        p->cur ^= 1;
        p->have = 1;
        p->nknown = felix_snapshot_get_info(next)->nknown;
        const felix_mem *m = felix_snapshot_mem(next);
        if (m && felix_mem_copy(p->mem, m) == 0)
            p->have_mem = 1;
        if (p->relabel) {
            char name[32] = "";
            if (felix_proc_name(p->pid, name, sizeof name) < 0)
                snprintf(name, sizeof name, "%s", felix_source_header(p->src)->name);
            make_labels(p, name);
            p->relabel = 0;
        }
        return 0;
    }
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const felix_thread_delta *x = *(const felix_thread_delta *const *)a, *y = *(const felix_thread_delta *const *)b;
    uint64_t tx = x->abs[FELIX_C_JIT_TIME] + x->abs[FELIX_C_SIGNAL_TIME];
    uint64_t ty = y->abs[FELIX_C_JIT_TIME] + y->abs[FELIX_C_SIGNAL_TIME];
    if (tx != ty)
        return tx > ty ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* --threads: the threads reported, the most JIT + signal time first. */
static void select_threads(struct proc *p, unsigned max)
{
    const felix_frame *f = felix_delta_frame(p->d);
    p->nsel = 0;
    if (tool_grow((void **)&p->sel, &p->selcap, f->nthreads ? f->nthreads : 1, sizeof *p->sel) < 0)
        return;
    for (size_t i = 0; i < f->nthreads; i++)
        p->sel[p->nsel++] = felix_delta_thread(p->d, i);
    if (p->nsel > max) {
        qsort(p->sel, p->nsel, sizeof *p->sel, by_time);
        p->nsel = max;
    }
}

static void family_head(struct buf *b, int om, const char *family, const char *type, const char *unit,
                        const char *help)
{
    /* Prometheus' text format names a counter family with its _total;
     * OpenMetrics without. */
    int total = strcmp(type, "counter") == 0 && !om;
    static const char *const kw[2] = {"# HELP fex_", "# TYPE fex_"};
    for (int k = 0; k < 2; k++) {
        puts_(b, kw[k]);
        puts_(b, family);
        if (total)
            puts_(b, "_total");
        put(b, " ", 1);
        puts_(b, k ? type : help);
        put(b, "\n", 1);
    }
    if (om && unit) {
        put(b, "# UNIT fex_", 11);
        puts_(b, family);
        put(b, " ", 1);
        puts_(b, unit);
        put(b, "\n", 1);
    }
}

static void counter_value(struct buf *b, const struct counter_family *cf, uint64_t raw, uint64_t freq)
{
    if (cf->unit)
        put_fixed(b, (double)raw / (double)freq, 9);
    else
        put_u64(b, raw);
}

static void render(exporter *e, int om)
{
    struct buf *b = &e->out;
    b->len = 0;
    b->oom = 0;
    family_head(b, om, "processes", "gauge", NULL, "FEX processes reported");
    put(b, "fex_processes ", 14);
    put_u64(b, e->reported);
    put(b, "\n", 1);
    for (size_t k = 0; k < NFAM; k++) {
        const struct counter_family *cf = &counters[k];
        char help[160];
        snprintf(help, sizeof help, "%s, all threads of the process (exited ones included)", cf->help);
        family_head(b, om, cf->family, "counter", cf->unit, help);
        for (size_t i = 0; i < e->nprocs; i++) {
            struct proc *p = e->procs[i];
            if (!p->have || (unsigned)cf->c >= p->nknown)
                continue;
            put(b, "fex_", 4);
            puts_(b, cf->family);
            put(b, "_total{", 7);
            put(b, p->labels.p, p->labels.len);
            put(b, "} ", 2);
            counter_value(b, cf, felix_delta_frame(p->d)->cum[cf->c], p->freq);
            put(b, "\n", 1);
        }
    }
    family_head(b, om, "threads", "gauge", NULL, "Live threads of the process");
    for (size_t i = 0; i < e->nprocs; i++) {
        struct proc *p = e->procs[i];
        if (!p->have)
            continue;
        put(b, "fex_threads{", 12);
        put(b, p->labels.p, p->labels.len);
        put(b, "} ", 2);
        put_u64(b, felix_delta_frame(p->d)->nthreads);
        put(b, "\n", 1);
    }
    if (e->o.memory) {
        family_head(b, om, "memory_bytes", "gauge", "bytes", "Resident bytes of FEX's memory regions");
        for (size_t i = 0; i < e->nprocs; i++) {
            struct proc *p = e->procs[i];
            if (!p->have || !p->have_mem)
                continue;
            for (size_t r = 0; r < felix_mem_count(p->mem); r++) {
                const felix_region *rg = felix_mem_region(p->mem, r);
                put(b, "fex_memory_bytes{", 17);
                put(b, p->labels.p, p->labels.len);
                put(b, ",", 1);
                put_label(b, "region", rg->name, strnlen(rg->name, sizeof rg->name));
                put(b, "} ", 2);
                put_u64(b, rg->rss);
                put(b, "\n", 1);
            }
        }
    }
    if (e->o.threads) {
        for (size_t k = 0; k < NFAM; k++) {
            const struct counter_family *cf = &counters[k];
            char fam[64], help[160];
            snprintf(fam, sizeof fam, "thread_%s", cf->family);
            snprintf(help, sizeof help, "%s, per thread (live threads, at most %u a process)", cf->help,
                     e->o.max_threads);
            family_head(b, om, fam, "counter", cf->unit, help);
            for (size_t i = 0; i < e->nprocs; i++) {
                struct proc *p = e->procs[i];
                if (!p->have || (unsigned)cf->c >= p->nknown)
                    continue;
                for (size_t t = 0; t < p->nsel; t++) {
                    const felix_thread_delta *td = p->sel[t];
                    put(b, "fex_", 4);
                    puts_(b, fam);
                    put(b, "_total{", 7);
                    put(b, p->labels.p, p->labels.len);
                    char tid[16];
                    int n = snprintf(tid, sizeof tid, "%u", (unsigned)td->tid);
                    put(b, ",", 1);
                    put_label(b, "tid", tid, (size_t)n);
                    const char *nm = felix_source_thread_name(p->src, td->tid);
                    put(b, ",", 1);
                    put_label(b, "thread", nm ? nm : "", nm ? strlen(nm) : 0);
                    put(b, "} ", 2);
                    counter_value(b, cf, td->abs[cf->c], p->freq);
                    put(b, "\n", 1);
                }
            }
        }
    }
    if (om)
        put(b, "# EOF\n", 6);
}

static struct proc *find(exporter *e, const felix_proc_entry *en)
{
    for (size_t i = 0; i < e->nprocs; i++)
        if (e->procs[i]->pid == en->pid && e->procs[i]->start == en->start_ticks)
            return e->procs[i];
    return NULL;
}

int exp_scrape(exporter *e, int openmetrics, const char **out, size_t *len)
{
    e->gen++;
    if (felix_proc_list_scan(e->list, e->o.dir) == 0) {
        size_t n = felix_proc_list_count(e->list);
        for (size_t i = 0; i < n; i++) {
            const felix_proc_entry *en = felix_proc_list_get(e->list, i);
            if (en->state != FELIX_PROC_LIVE && !e->o.all)
                continue;
            struct proc *p = find(e, en);
            if (!p) {
                if (tool_grow((void **)&e->procs, &e->cap, e->nprocs + 1, sizeof *e->procs) < 0)
                    continue;
                if (!(p = proc_open(e, en))) /* unreadable, or not ready: not reported */
                    continue;
                e->procs[e->nprocs++] = p;
            }
            p->gen = e->gen;
        }
    }
    /* Sample the listed ones; those gone (unlisted, exited) leave. */
    size_t keep = 0;
    e->reported = 0;
    for (size_t i = 0; i < e->nprocs; i++) {
        struct proc *p = e->procs[i];
        if (p->gen != e->gen || proc_sample(p) < 0) {
            proc_free(p);
            continue;
        }
        if (e->o.threads && p->have)
            select_threads(p, e->o.max_threads);
        e->reported += p->have;
        e->procs[keep++] = p;
    }
    e->nprocs = keep;
    render(e, openmetrics);
    if (e->out.oom)
        return -1;
    *out = e->out.p;
    *len = e->out.len;
    return 0;
}

/* The summary accumulator (see summary.h). */
#include "summary.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int summary_time_counters[SUMMARY_NTIMES] = {FELIX_C_JIT_TIME, FELIX_C_SIGNAL_TIME, FELIX_C_CACHE_RDLOCK,
                                                    FELIX_C_CACHE_WRLOCK};
const char *const summary_time_keys[SUMMARY_NTIMES] = {"jit_s", "signal_s", "cache_rdlock_s", "cache_wrlock_s"};
const int summary_count_counters[SUMMARY_NCOUNTS] = {FELIX_C_JIT_COUNT, FELIX_C_SIGBUS, FELIX_C_SMC, FELIX_C_SOFTFLOAT,
                                                      FELIX_C_CACHE_MISS};
const char *const summary_count_keys[SUMMARY_NCOUNTS] = {"jit_count", "sigbus", "smc", "softfloat", "cache_miss"};

void summary_init(tool_summary *s, unsigned fps)
{
    memset(s, 0, sizeof *s);
    s->first_t = -1;
    s->fps = fps;
}

void summary_free(tool_summary *s)
{
    free(s->t);
    free(s->idx);
    s->t = NULL;
    s->idx = NULL;
    s->nt = s->tcap = s->icap = 0;
}

static struct sum_thread *thread_of(tool_summary *s, uint32_t tid)
{
    if (s->nt * 2 >= s->icap) {
        size_t cap = s->icap ? s->icap * 2 : 256;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return NULL;
        for (size_t i = 0; i < s->nt; i++) {
            size_t h = (s->t[i].tid * 2654435761u) & (cap - 1);
            while (idx[h])
                h = (h + 1) & (cap - 1);
            idx[h] = (uint32_t)i + 1;
        }
        free(s->idx);
        s->idx = idx;
        s->icap = cap;
    }
    size_t h = (tid * 2654435761u) & (s->icap - 1);
    while (s->idx[h]) {
        if (s->t[s->idx[h] - 1].tid == tid)
            return &s->t[s->idx[h] - 1];
        h = (h + 1) & (s->icap - 1);
    }
    if (tool_grow((void **)&s->t, &s->tcap, s->nt + 1, sizeof *s->t) < 0)
        return NULL;
    struct sum_thread *x = &s->t[s->nt];
    memset(x, 0, sizeof *x);
    x->tid = tid;
    s->idx[h] = (uint32_t)++s->nt;
    return x;
}

void summary_frame(tool_summary *s, const felix_delta *d, double t, double prev_t, const felix_source *names)
{
    const felix_frame *fr = felix_delta_frame(d);
    if (s->first_t < 0)
        s->first_t = prev_t;
    s->last_t = t;
    s->frames++;
    s->time_total += fr->interval_s;
    s->load_weighted += fr->load_pct * fr->interval_s;
    if (fr->load_pct > s->peak_load || s->frames == 1) {
        s->peak_load = fr->load_pct;
        s->peak_t = t;
    }
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        s->d[k] += fr->d[k];
    if (fr->flags) {
        if (s->nspikes < SUMMARY_SPIKES) {
            s->spikes[s->nspikes].t = t;
            s->spikes[s->nspikes].flags = fr->flags;
        }
        s->nspikes++;
    }
    for (size_t i = 0; i < fr->nthreads; i++) {
        const felix_thread_delta *td = felix_delta_thread(d, i);
        struct sum_thread *x = thread_of(s, td->tid);
        if (!x)
            continue;
        x->jit += td->d[FELIX_C_JIT_TIME];
        x->signal += td->d[FELIX_C_SIGNAL_TIME];
        x->blocks += td->d[FELIX_C_JIT_COUNT];
        x->over += (td->state & FELIX_TD_OVER_BUDGET) != 0;
        const char *nm = names ? felix_source_thread_name(names, td->tid) : NULL;
        if (nm)
            snprintf(x->name, sizeof x->name, "%s", nm);
    }
}

void summary_mem(tool_summary *s, const felix_mem *m)
{
    uint64_t rss = felix_mem_process_rss(m); /* 0: not recorded */
    if (rss > s->peak_rss) {
        s->peak_rss = rss;
        s->peak_fex = felix_mem_total(m);
    }
}

double summary_mean_load(const tool_summary *s)
{
    return s->time_total > 0 ? s->load_weighted / s->time_total : 0;
}

static int by_jit(const void *a, const void *b)
{
    const struct sum_thread *x = a, *y = b;
    if (x->jit != y->jit)
        return x->jit < y->jit ? 1 : -1;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int by_over(const void *a, const void *b)
{
    const struct sum_thread *x = a, *y = b;
    int c = (x->over < y->over) - (x->over > y->over);
    return c ? c : by_jit(a, b);
}

void summary_sort_by_jit(tool_summary *s)
{
    if (s->nt)
        qsort(s->t, s->nt, sizeof *s->t, by_jit);
}

void summary_sort_by_over(tool_summary *s)
{
    if (s->nt)
        qsort(s->t, s->nt, sizeof *s->t, by_over);
}

void summary_flag_names(unsigned flags, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s", flags & FELIX_FLAG_HIGH_JIT ? " high-JIT" : "",
             flags & FELIX_FLAG_HIGH_SMC ? " high-SMC" : "", flags & FELIX_FLAG_HIGH_SIGBUS ? " high-SIGBUS" : "",
             flags & FELIX_FLAG_HIGH_SOFTFLOAT ? " high-softfloat" : "",
             flags & FELIX_FLAG_OVER_BUDGET ? " over-budget" : "");
}
